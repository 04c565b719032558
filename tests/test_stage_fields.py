"""The stage fields (``stage``, ``due_date``, ``birth_date``): one set of rules in
``sender/joining.py`` for the signup form, `drip subscribers add`, the dashboard's form and an
import. A bad value is a clear error naming the field; nothing bad is stored, so nothing can
crash at send time."""

from __future__ import annotations

import pytest

from sender import joining, lists, subscribers
from sender.errors import InvalidInput
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")


# --- the rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key,value,expected", [
    ("stage", "pregnant", "pregnant"),
    ("stage", " Postpartum ", "postpartum"),
    ("due_date", "2026-09-30", "2026-09-30"),
    ("due_date", "2025-12-01", "2025-12-01"),        # three months ago: she may not have said
    ("birth_date", "2026-03-02", "2026-03-02"),       # today
    ("birth_date", "2020-05-17", "2020-05-17"),
    ("birth_date", "", ""),                           # blank: not given
    ("weeks", "anything", "anything"),                # other fields keep their plain rules
])
def test_good_values_pass_cleaned(key, value, expected):
    assert joining.check_field(key, value, now=NOW) == expected


@pytest.mark.parametrize("key,value,words", [
    ("stage", "expecting", "pregnant or postpartum"),
    ("due_date", "06/01/2026", "YYYY-MM-DD"),
    ("due_date", "2026-02-30", "YYYY-MM-DD"),
    ("due_date", "20260601", "YYYY-MM-DD"),
    ("due_date", "2027-03-01", "more than 10 months ahead"),
    ("due_date", "2024-06-01", "more than a year ago"),
    ("birth_date", "2026-03-05", "in the future"),
    ("birth_date", "1996-03-01", "more than 20 years ago"),
])
def test_bad_values_are_refused_naming_the_field(key, value, words):
    with pytest.raises(InvalidInput) as caught:
        joining.check_field(key, value, now=NOW)
    assert f"field {key!r}" in str(caught.value) and words in str(caught.value)


def test_the_form_words_it_for_the_person_without_repeating_the_value():
    with pytest.raises(InvalidInput) as caught:
        joining.read_signup({"email": "a@example.com", "consent": "on",
                             "due_date": "2031-01-01"}, now=NOW)
    message = str(caught.value)
    assert "due date" in message and "2031" not in message


def test_a_birth_date_of_today_passes_anywhere_on_earth():
    # 23:30 on 2 March in Honolulu is already 3 March in UTC, and 3 March in Kiribati.
    assert joining.check_field("birth_date", "2026-03-03", now=at("2026-03-03T09:30Z")) == "2026-03-03"
    assert joining.check_field("birth_date", "2026-03-03", now=at("2026-03-02T11:00Z")) == "2026-03-03"
    with pytest.raises(InvalidInput):
        joining.check_field("birth_date", "2026-03-04", now=at("2026-03-02T11:00Z"))


# --- the ways in -------------------------------------------------------------------------------
def test_add_exits_1_naming_the_field_and_stores_nothing(run, drip):
    result = run("subscribers", "add", "ana@example.com", "--field", "due_date=2026-13-01",
                 "--confirmed", "--now", "2026-03-02T18:00Z")
    assert result.exit_code == 1, result.output
    assert "due_date" in result.output and "YYYY-MM-DD" in result.output
    assert "Traceback" not in result.output
    assert list(drip.store.list_subscribers()) == []
    good = run("subscribers", "add", "ana@example.com", "--field", "stage=Pregnant",
               "--field", "due_date=2026-08-01", "--confirmed", "--now", "2026-03-02T18:00Z",
               "--json")
    assert good.exit_code == 0, good.output
    assert drip.store.get_subscriber(email="ana@example.com").fields == {
        "stage": "pregnant", "due_date": "2026-08-01"}


def test_add_refuses_a_bad_date_for_someone_on_the_list_and_changes_nothing(drip):
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True,
                               fields={"stage": "pregnant"})
    with pytest.raises(InvalidInput, match="birth_date"):
        subscribers.add_subscriber(drip, "ana@example.com", now=NOW,
                                   fields={"birth_date": "2027-01-01"})
    assert drip.store.get_subscriber(email="ana@example.com").fields == {"stage": "pregnant"}


def test_the_import_reports_each_bad_row_with_its_line_and_imports_the_others(drip, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("email,stage,due_date,birth_date\n"
                    "ok1@example.com,pregnant,2026-07-01,\n"
                    "bad1@example.com,expecting,,\n"
                    "bad2@example.com,pregnant,01/07/2026,\n"
                    "ok2@example.com,postpartum,,2026-01-10\n"
                    "bad3@example.com,postpartum,,2026-04-01\n"
                    "ok3@example.com,,,\n", encoding="utf-8")
    report = lists.import_csv(drip, path, consent="old list", now=NOW)
    assert report.imported == 3
    errors = {e["line"]: e["reason"] for e in report.to_dict()["errors"]}
    assert sorted(errors) == [3, 4, 6]
    assert "'stage'" in errors[3] and "pregnant or postpartum" in errors[3]
    assert "'due_date'" in errors[4] and "YYYY-MM-DD" in errors[4]
    assert "'birth_date'" in errors[6] and "future" in errors[6]
    stored = {p.email: p.fields for p in drip.store.list_subscribers()}
    assert stored == {"ok1@example.com": {"stage": "pregnant", "due_date": "2026-07-01"},
                      "ok2@example.com": {"stage": "postpartum", "birth_date": "2026-01-10"},
                      "ok3@example.com": {}}


def test_the_import_normalises_the_stage_on_the_quick_path_too(drip, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("email,stage\nok@example.com,Pregnant\n", encoding="utf-8")
    lists.import_csv(drip, path, consent="old list", now=NOW)
    assert drip.store.get_subscriber(email="ok@example.com").fields == {"stage": "pregnant"}
