"""The signup form takes the stage fields (a select, two date inputs; no script needed) and
answers 400 with the reason when one is wrong (``sender/joining.py`` decides)."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import at

NOW = at("2026-03-02T18:00Z")


@pytest.fixture
def form(start_server):
    server = start_server()
    server.clock.now = NOW
    return server


def test_the_form_offers_the_fields_with_labels_and_no_script_needed(form):
    page = requests.get(f"{form.url}/", timeout=10).text
    for name, kind in (("due_date", "date"), ("birth_date", "date")):
        assert f'name="{name}"' in page and f'type="{kind}"' in page
        assert f'<label for="drip-{name.replace("_", "-")}">' in page
        assert f'aria-describedby="drip-{name.replace("_", "-")}-hint"' in page
    assert '<select id="drip-stage" name="stage">' in page


def test_the_form_answers_400_with_the_reason_and_stores_nothing(form):
    drip = form.drip()
    answer = requests.post(f"{form.url}/subscribe", timeout=10, headers={"Accept": "application/json"},
                           data={"email": "pia@example.com", "consent": "yes",
                                 "stage": "pregnant", "due_date": "2027-06-01"})
    assert answer.status_code == 400
    assert "due date" in answer.json()["message"]
    assert drip.store.get_subscriber(email="pia@example.com") is None
    page = requests.post(f"{form.url}/subscribe", timeout=10,
                         data={"email": "pia@example.com", "consent": "yes", "stage": "soon"})
    assert page.status_code == 400 and "pregnant or postpartum" in page.text
    ok = requests.post(f"{form.url}/subscribe", timeout=10, headers={"Accept": "application/json"},
                       data={"email": "pia@example.com", "consent": "yes", "stage": "pregnant",
                             "due_date": "2026-08-01", "birth_date": ""})
    assert ok.status_code == 200, ok.text
    drip = form.drip()
    assert drip.store.get_subscriber(email="pia@example.com").fields == {
        "stage": "pregnant", "due_date": "2026-08-01"}


def test_the_json_form_is_checked_the_same(form):
    answer = requests.post(f"{form.url}/subscribe", timeout=10,
                           json={"email": "pia@example.com", "consent": True,
                                 "birth_date": "2026-03-20"})
    assert answer.status_code == 400 and "birth date" in answer.json()["message"]
