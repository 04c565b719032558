"""Exports from Kit, Mailchimp, MailerLite and Substack import without --map: the sample
files in tests/fixtures/imports have each platform's usual headers, and every test checks
what was stored (email, name, tags, time zone, signup time, status, fields)."""

from __future__ import annotations

import json
import shutil

import pytest

from sender import lists
from tests.conftest import FIXTURES, at
from tests.lists.conftest import errors, stored

SAMPLES = FIXTURES / "imports"
REJECTED = "only active subscribers are imported"


def person(drip, email):
    found = drip.store.get_subscriber(email=email)
    assert found is not None, f"{email} was not imported"
    return (found.name, found.tags, found.timezone, found.created_at, found.status)


def test_kit_export(drip, do_import):
    report = do_import(SAMPLES / "kit.csv")
    assert report.columns == {
        "first_name": "first_name", "email_address": "email", "state": "state",
        "created_at": "signed_up", "tags": "tags", "goal": "field:goal", "timezone": "timezone"}
    assert person(drip, "ines.moreau@example.com") == (
        "Inés", ["postpartum", "Core-Rehab"], "Europe/Paris", at("2025-11-03T08:15:22Z"), "active")
    assert drip.store.get_subscriber(email="ines.moreau@example.com").fields == {
        "goal": "Sleep, then strength"}
    # Kit's "cold" people are still subscribed (they just have not opened in a while).
    assert person(drip, "wren@example.net") == ("Wren", [], None, at("2025-12-24T19:45Z"), "active")
    # Cancelled (Kit's word for unsubscribed) and bounced people are never imported.
    assert [(line, reason.split(":")[0]) for line, reason in errors(report)] == [
        (3, "status is 'cancelled'"), (5, "status is 'bounced'")]
    assert all(REJECTED in reason for _, reason in errors(report))
    assert sorted(stored(drip)) == ["ines.moreau@example.com", "wren@example.net"]


def test_mailchimp_subscribed_export(drip, do_import):
    report = do_import(SAMPLES / "mailchimp_subscribed.csv")
    assert (report.imported, report.rejected) == (3, 0)
    columns = report.columns
    assert (columns["Email Address"], columns["First Name"], columns["Last Name"],
            columns["TIMEZONE"], columns["TAGS"], columns["OPTIN_TIME"],
            columns["CONFIRM_TIME"]) == ("email", "first_name", "last_name", "timezone", "tags",
                                         "signed_up", "signed_up_fallback")
    assert (columns["MEMBER_RATING"], columns["LEID"], columns["NOTES"]) == (
        "field:member_rating", "field:leid", "field:notes")
    assert person(drip, "zoe.odegaard@example.com") == (
        "Zoë Ødegaard", ["Postnatal-Pilates", "newsletter"], "Europe/Oslo",
        at("2024-03-09T10:11:12Z"), "active")
    zoe = drip.store.get_subscriber(email="zoe.odegaard@example.com").fields
    assert (zoe["address"], zoe["birthday"], zoe["member_rating"], zoe["leid"]) == (
        "12 Harbour Road, Bergen", "03/14", "4", "111111")
    # No OPTIN_TIME (she was added by hand in Mailchimp): the confirmation time is her signup.
    assert person(drip, "mai.tran@example.org") == (
        "Mai", [], "America/New_York", at("2023-07-01T08:00Z"), "active")
    assert person(drip, "lou@example.net") == (
        "Lou Bianchi", ["strength"], None, at("2025-01-20T18:30Z"), "active")
    assert drip.store.get_subscriber(email="lou@example.net").fields["notes"] == (
        "met at the March workshop, wants evening classes")


@pytest.mark.parametrize("sample, column, status", [
    ("mailchimp_unsubscribed.csv", "UNSUB_TIME", "unsubscribed"),
    ("mailchimp_cleaned.csv", "CLEAN_TIME", "cleaned"),
])
def test_mailchimp_unsubscribed_and_cleaned_exports_import_nobody(drip, do_import, sample, column,
                                                                  status):
    report = do_import(SAMPLES / sample)
    assert report.columns[column] == status
    assert report.imported == 0 and report.rows == report.rejected > 0
    assert all(reason.startswith(f"status is '{status}'") and REJECTED in reason
               for _, reason in errors(report))
    assert stored(drip) == {}


def test_mailerlite_export(drip, do_import):
    report = do_import(SAMPLES / "mailerlite.csv")
    assert (report.imported, report.rejected) == (2, 0)
    assert report.columns == {
        "Email": "email", "Name": "name", "Last name": "last_name", "Company": "field:company",
        "Country": "field:country", "City": "field:city", "State": "state", "Zip": "field:zip",
        "Subscribed at": "signed_up", "Groups": "tags", "Time zone": "timezone"}
    assert person(drip, "anika.schroeder@example.com") == (
        "Anika Schröder", ["Newsletter", "Yoga-Mums"], "Europe/Berlin", at("2024-09-12T07:05Z"),
        "active")
    # "State" is a region here, not a subscription status: it stays a field.
    assert drip.store.get_subscriber(email="anika.schroeder@example.com").fields == {
        "company": "Schröder & Partner, Physio", "country": "Germany", "city": "Munich",
        "state": "Bavaria", "zip": "80331"}
    assert person(drip, "sam.okafor@example.org") == (
        "Sam Okafor", ["Newsletter"], "America/Los_Angeles", at("2025-02-02T21:40:10Z"), "active")
    assert drip.store.get_subscriber(email="sam.okafor@example.org").fields["state"] == "California"


def test_substack_export(drip, do_import):
    report = do_import(SAMPLES / "substack.csv")
    assert report.columns == {
        "email": "email", "active_subscription": "field:active_subscription",
        "expiry": "field:expiry", "email_disabled": "email_disabled", "created_at": "signed_up"}
    assert person(drip, "noor.haddad@example.com") == (
        "", [], None, at("2024-02-11T09:30:15Z"), "active")
    assert drip.store.get_subscriber(email="noor.haddad@example.com").fields == {
        "active_subscription": "true", "expiry": "2026-09-01T00:00:00.000Z"}
    assert person(drip, "eli@example.org") == ("", [], None, at("2025-05-05T17:00Z"), "active")
    # email_disabled=true: they turned Substack's emails off, so they are not imported.
    assert errors(report) == [(4, "status is 'unsubscribed': only active subscribers are "
                                  "imported (an unsubscribed, bounced or complained person "
                                  "must not be mailed)")]
    assert sorted(stored(drip)) == ["eli@example.org", "noor.haddad@example.com"]


def test_explicit_map_still_wins(drip, do_import):
    report = do_import(SAMPLES / "mailerlite.csv",
                       mapping=lists.parse_map(["Groups=field:groups", "State=skip",
                                                "Subscribed at=field:joined"]))
    assert (report.columns["Groups"], report.columns["State"],
            report.columns["Subscribed at"]) == ("field:groups", "skip", "field:joined")
    anika = drip.store.get_subscriber(email="anika.schroeder@example.com")
    assert anika.tags == [] and anika.created_at == at("2026-03-02T10:00Z")
    assert (anika.fields["groups"], anika.fields["joined"]) == (
        "Newsletter, Yoga Mums", "2024-09-12 07:05:00")
    assert "state" not in anika.fields


def test_explicit_map_picks_another_signup_column(drip, do_import):
    report = do_import(SAMPLES / "mailchimp_subscribed.csv",
                       mapping=lists.parse_map(["LAST_CHANGED=signed_up"]))
    assert (report.columns["LAST_CHANGED"], report.columns["OPTIN_TIME"]) == (
        "signed_up", "signed_up_fallback")
    assert drip.store.get_subscriber(email="zoe.odegaard@example.com").created_at == at(
        "2024-05-01T09:00Z")


@pytest.mark.parametrize("row, status", [
    ("a@example.com,Active,", "active"), ("b@example.com,yes,", "active"),
    ("c@example.com,no,", None), ("d@example.com,2024-01-05,", "active"),
    ("e@example.com,whenever,", "active"),
])
def test_a_subscribed_column_is_read_by_what_it_holds(drip, csv_file, do_import, row, status):
    """'Subscribed' is a date in some exports and yes/no in others; neither may hurt."""
    report = do_import(csv_file("email,Subscribed,State\n" + row + "\n"))
    email = row.split(",")[0]
    found = drip.store.get_subscriber(email=email)
    assert (found.status if found else None) == status, errors(report)
    if email == "d@example.com":
        assert found.created_at == at("2024-01-05T00:00Z")
    if email == "e@example.com":
        assert found.fields == {"subscribed": "whenever"}


def test_a_tag_list_keeps_multi_word_tags_together(drip, csv_file, do_import):
    do_import(csv_file('email,tags\n'
                       'a@example.com,"Free Course, yoga"\n'
                       'b@example.com,"""Free Course"",""yoga"""\n'
                       'c@example.com,free yoga\n'))
    tags = {email: p["tags"] for email, p in stored(drip).items()}
    assert tags == {"a@example.com": ["Free-Course", "yoga"],
                    "b@example.com": ["Free-Course", "yoga"],
                    # drip's own export separates tags with spaces
                    "c@example.com": ["free", "yoga"]}


def test_first_and_last_name_columns(drip, csv_file, do_import):
    do_import(csv_file("email,First Name,Last Name\n"
                       "a@example.com,Ana,López\nb@example.com,,Ng\nc@example.com,Cy,\n"))
    names = {email: p["name"] for email, p in stored(drip).items()}
    assert names == {"a@example.com": "Ana López", "b@example.com": "Ng", "c@example.com": "Cy"}


def test_a_full_name_column_wins_over_a_first_name(drip, csv_file, do_import):
    report = do_import(csv_file("email,Name,First Name,Last Name\n"
                                "a@example.com,Ana López,Ana,López\n"))
    assert report.columns["First Name"] == "field:first_name"
    found = drip.store.get_subscriber(email="a@example.com")
    assert (found.name, found.fields) == ("Ana López", {"first_name": "Ana"})


def test_exported_fields_named_like_platform_columns_come_back_as_fields(drip, csv_file,
                                                                         do_import, tmp_path):
    do_import(csv_file("email,field:state,field:groups,field:first_name\n"
                       "a@example.com,active,x y,Ana\n"))
    out = tmp_path / "out.csv"
    with open(out, "w", encoding="utf-8", newline="") as handle:
        lists.export_csv(drip, handle)
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith("field:first_name,field:groups,field:state")


def test_cli_dry_run_prints_the_mapping_and_stores_nothing(run, drip, project):
    shutil.copy(SAMPLES / "mailchimp_subscribed.csv", project / "mc.csv")
    result = run("subscribers", "import", "mc.csv", "--consent", "old Mailchimp form",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("Columns:")
    mapping = [line.strip() for line in lines[start + 1:start + 24]]
    assert mapping[0].split() == ["Email", "Address", "->", "email"]
    assert "First Name    -> name (first part)" in mapping
    assert "Last Name     -> name (last part)" in mapping
    assert "OPTIN_TIME    -> signup time" in mapping
    assert "CONFIRM_TIME  -> signup time when OPTIN_TIME is empty" in mapping
    assert "TIMEZONE      -> time zone" in mapping
    assert "TAGS          -> tags" in mapping
    assert "MEMBER_RATING -> field member_rating" in mapping
    assert lines[-1] == "3 rows: 3 would import, 0 already on the list, 0 rejected"
    assert lines.index("Columns:") < len(lines) - 1
    assert drip.store.subscriber_counts() == {}


def test_cli_dry_run_mapping_in_json(run, drip, project):
    shutil.copy(SAMPLES / "substack.csv", project / "substack.csv")
    result = run("subscribers", "import", "substack.csv", "--consent", "Substack", "--dry-run",
                 "--json")
    assert result.exit_code == 1   # one row (email_disabled) is rejected
    data = json.loads(result.output)
    assert data["dry_run"] is True and data["imported"] == 2
    assert data["columns"]["email_disabled"] == "email_disabled"
    assert {m["column"]: m["becomes"] for m in data["mapping"]} == {
        "email": "email", "active_subscription": "field active_subscription",
        "expiry": "field expiry", "email_disabled": "status unsubscribed where it is true",
        "created_at": "signup time"}
    assert drip.store.subscriber_counts() == {}


def test_cli_mailchimp_unsubscribed_file_says_nobody_is_imported(run, drip, project):
    shutil.copy(SAMPLES / "mailchimp_unsubscribed.csv", project / "unsub.csv")
    result = run("subscribers", "import", "unsub.csv", "--consent", "x", "--dry-run")
    assert result.exit_code == 1
    assert ("UNSUB_TIME" in result.output
            and "status unsubscribed: a list of people who unsubscribed" in result.output)
    assert "2 rows: 0 would import, 0 already on the list, 2 rejected" in result.output
    assert drip.store.subscriber_counts() == {}
