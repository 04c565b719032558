"""The "yes, keep them" link of the sunset email (issue 13) on `drip serve`: a GET shows a
page with a button and changes nothing (mail scanners fetch links); the POST of that button,
which needs no JavaScript, re-engages her once; forged, altered, expired and replayed links
change nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests

from sender import dispatch, ledger, subscribers
from sender.events import CLICKED
from sender.sunset_email import CAMPAIGN as ASK_CAMPAIGN
from tests.test_sunset import SIGNUP, sunset_project, week


@pytest.fixture
def asked(start_server, project, engine):
    """A server, and Ana just asked "still want these?" (two weekly emails unclicked)."""
    sunset_project(project)
    server = start_server(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d", **engine)
    drip = server.drip()
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP,
                                     confirmed=True).subscriber
    for n in (0, 1, 2, 3):
        dispatch.send_due(drip, now=week(n))
    [message] = [m for m in server.emails_to("ana@example.com") if "Week" not in m["Subject"]
                 and "Welcome" not in m["Subject"]]
    server.clock.now = week(3) + timedelta(days=2)
    return server, ana, server.link(message, "keep")


def state(server, ana):
    drip = server.drip()
    [ask] = list(drip.store.deliveries(subscriber_id=ana.id, campaign=ASK_CAMPAIGN))
    w3 = next(d for d in drip.store.deliveries(subscriber_id=ana.id, campaign="weekly")
              if d.step == "w3")
    return (drip.store.get_subscriber(id=ana.id).status,
            len(drip.store.events(delivery_id=ask.id, type=CLICKED)), w3.reason)


def test_a_get_shows_a_button_that_posts_and_changes_nothing(asked):
    server, ana, link = asked
    page = requests.get(link, timeout=10, allow_redirects=False)
    assert page.status_code == 200
    form = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert form and link.endswith(form.group(1))
    assert "<script" not in page.text.lower()
    assert requests.head(link, timeout=10).status_code == 200
    assert state(server, ana) == ("active", 0, ledger.SUNSET_WAIT)
    # The button: a plain form POST, as a browser without JavaScript sends it.
    done = requests.post(link, timeout=10)
    assert done.status_code == 200
    assert state(server, ana) == ("active", 1, None)
    # Pressed again, or the request replayed: the same answer, nothing recorded twice.
    again = requests.post(link, timeout=10)
    assert again.status_code == 200
    assert state(server, ana) == ("active", 1, None)
    drip = server.drip()
    report = dispatch.send_due(drip, now=server.clock.now)
    assert report.sent == 1
    assert server.emails_to("ana@example.com")[-1]["Subject"] == "Week 3"


def test_forged_altered_and_other_purpose_links_change_nothing(asked):
    server, ana, link = asked
    token = link.rsplit("/", 1)[1]
    altered = f"{server.url}/keep/{token[:-2]}{'AB' if token[-2:] != 'AB' else 'CD'}"
    forged = f"{server.url}/keep/WyJhYmMiLDE3NzI0NzUyMDBd.c2lnbmF0dXJlc2lnbmF0dXJl"
    [first] = [m for m in server.emails_to("ana@example.com") if "Week" in m["Subject"]][:1]
    unsubscribe_token = server.link(first, "unsubscribe").rsplit("/", 1)[1]
    for url in (altered, forged, f"{server.url}/keep/{unsubscribe_token}"):
        assert requests.get(url, timeout=10).status_code == 400
        response = requests.post(url, timeout=10)
        assert response.status_code == 400
        assert "not valid" in response.text
    assert state(server, ana) == ("active", 0, ledger.SUNSET_WAIT)


def test_after_the_wait_the_link_has_expired_and_she_stays_stopped(asked):
    server, ana, link = asked
    server.clock.now = week(5) + timedelta(minutes=1)
    response = requests.post(link, timeout=10)
    assert response.status_code == 400
    assert "sign up again" in response.text
    assert state(server, ana)[:2] == ("active", 0)
    dispatch.send_due(server.drip(), now=server.clock.now)
    assert state(server, ana)[:2] == ("sunset", 0)
    assert requests.post(link, timeout=10).status_code == 400
    assert state(server, ana)[:2] == ("sunset", 0)


def test_the_link_of_an_earlier_question_does_not_answer_a_later_one(asked):
    server, ana, link = asked
    assert requests.post(link, timeout=10).status_code == 200
    drip = server.drip()
    for now in (server.clock.now, week(4), week(5)):   # w3, w4 unclicked: asked again at w5
        dispatch.send_due(drip, now=now)
    asks = list(drip.store.deliveries(subscriber_id=ana.id, campaign=ASK_CAMPAIGN))
    assert [a.step for a in asks] == ["ask-1", "ask-2"]
    server.clock.now = week(5) + timedelta(days=1)
    response = requests.post(link, timeout=10)
    assert response.status_code == 400
    assert len(drip.store.events(delivery_id=asks[1].id, type=CLICKED)) == 0


def test_keep_tokens_are_masked_in_the_request_log():
    from sender.web.app import mask_path

    line = mask_path('"POST /keep/WyJhYmMiLDE3NzI0NzUyMDBd.c2lnbmF0dXJl HTTP/1.1" 200')
    assert "WyJhYmMi" not in line and "/keep/" in line
