"""One set of rules for who may join and with what details (``sender/joining.py``).

The signup form, `drip subscribers add` and a CSV import refuse the same values, keep the
same values, and a signup looks its address up once. The CLI and the import say exactly
what was wrong with which value; the form says it in words for the person filling it in,
and never repeats what she typed.
"""

from __future__ import annotations

import html

import pytest
import requests

from sender import subscribers
from sender.lists import import_csv
from tests.conftest import at

NOW = "2026-03-09T18:00Z"      # the web fixture's START: a Monday, inside the send window

# (id, what the form posts, what `drip subscribers add` is given, the CSV columns and row,
#  what the form says)
REFUSED = [
    ("address", {"email": "not-an-address"}, ["not-an-address"],
     ("email", "not-an-address"), "Please enter a valid email address."),
    ("long-name", {"name": "x" * 201}, ["--name", "x" * 201], ("email,name", "x" * 201),
     "Please shorten your name to one line of up to 200 characters."),
    ("name-with-a-line-break", {"name": "Ana\r\nBcc: x@evil.example"},
     ["--name", "Ana\r\nBcc: x@evil.example"], ("email,name", '"Ana\r\nBcc: x@evil.example"'),
     "Your name contains a line break, which could inject headers; please remove it."),
    ("name-with-an-encoded-word", {"name": "=?utf-8?q?x?="}, ["--name", "=?utf-8?q?x?="],
     ("email,name", "=?utf-8?q?x?="),
     "Your name contains '=?', which mail software reads as the start of an encoded word; "
     "please remove it."),
    ("unknown-time-zone", {"timezone": "Mars/Olympus_Mons"}, ["--timezone", "Mars/Olympus_Mons"],
     ("email,timezone", "Mars/Olympus_Mons"),
     "We do not know that time zone. Please choose yours from the list, or 'Not sure'."),
    ("field-with-a-control-character", {"city": "Oslo\x0b"}, ["--field", "city=Oslo\x0b"],
     ("email,city", "Oslo\x0b"),
     "The field 'city' contains a line break, which could inject headers; please remove it."),
    ("field-too-long", {"notes": "x" * 1001}, ["--field", "notes=" + "x" * 1001],
     ("email,notes", "x" * 1001), "The field 'notes' is too long (one line, up to 1000 characters)."),
    ("field-name-not-allowed", {"bad name<b>": "x"}, ["--field", "bad name<b>=x"], None,
     "The form sent a field whose name is not allowed: field names are a letter, then letters, "
     "digits, _ or - (at most 40 characters)."),
]
# What the CLI's and the import's message names: the value, or the field it is in.
NAMED = {"address": "'not-an-address'", "long-name": "name is longer than 200",
         "name-with-a-line-break": repr("Ana\r\nBcc: x@evil.example"),
         "name-with-an-encoded-word": "'=?utf-8?q?x?='", "unknown-time-zone": "'Mars/Olympus_Mons'",
         "field-with-a-control-character": "field 'city'", "field-too-long": "field 'notes'",
         "field-name-not-allowed": "field name 'bad name<b>'"}
REFUSED_IDS = [case[0] for case in REFUSED]


def form_answer(server, email, extra):
    body = {"email": email, "consent": True, **extra}
    return requests.post(f"{server.url}/subscribe", json=body, timeout=10)


def cli_message(result):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output.strip().removeprefix("Error: ")


@pytest.mark.parametrize("case_id,form,argv,row,worded", REFUSED, ids=REFUSED_IDS)
def test_the_cli_and_the_import_refuse_what_the_form_refuses(
        start_server, run, project, case_id, form, argv, row, worded):
    server = start_server()
    answer = form_answer(server, "web@example.com", form)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"ok": False, "message": worded}
    page = requests.post(f"{server.url}/subscribe", timeout=10, allow_redirects=False,
                         data={"email": "page@example.com", "consent": "on", **form})
    assert page.status_code == 400 and worded in html.unescape(page.text)
    # What she typed is not said back to her, in the message or anywhere on the page.
    # (A field's name is the coach's, from her form: said back when it is a proper one.)
    typed = [*form.values(), *(k for k in form if not k.isidentifier())]
    for text in (t for t in typed if len(t) > 3):
        for shown in (answer.text, page.text, html.unescape(page.text)):
            assert text not in shown and repr(text)[1:-1] not in shown, (text, shown[-400:])

    # The CLI and the import name the value and say exactly what is wrong with it.
    args = argv if case_id == "address" else ["cli@example.com", *argv]
    message = cli_message(run("subscribers", "add", *args, "--confirmed", "--now", NOW))
    assert message != worded and NAMED[case_id] in message, message

    if row is not None:
        header, cell = row
        line = cell if case_id == "address" else f"csv@example.com,{cell}"
        path = project / "people.csv"
        path.write_text(f"{header}\n{line}\nfine@example.com{',' * header.count(',')}\n",
                        newline="")
        report = import_csv(server.drip(), path, consent="old list", now=at(NOW))
        assert [(p.line, p.reason) for p in report.errors] == [(2, message)]
        assert report.imported == 1

    drip = server.drip()
    assert [p.email for p in drip.store.list_subscribers()] in ([], ["fine@example.com"])
    assert server.emails() == []


def test_a_long_field_is_kept_up_to_the_same_limit_everywhere(start_server, run, project):
    """1,000 characters is the limit for a field wherever it comes from: the form took only
    500 before, the CLI and the import 1,000."""
    server = start_server()
    value = "x" * 1000
    assert form_answer(server, "web@example.com", {"notes": value}).status_code == 200
    result = run("subscribers", "add", "cli@example.com", "--field", f"notes={value}",
                 "--confirmed", "--now", NOW)
    assert result.exit_code == 0, result.output
    path = project / "people.csv"
    path.write_text(f"email,notes\ncsv@example.com,{value}\n")
    assert import_csv(server.drip(), path, consent="old list", now=at(NOW)).imported == 1
    drip = server.drip()
    for address in ("web@example.com", "cli@example.com", "csv@example.com"):
        assert drip.store.get_subscriber(email=address).fields == {"notes": value}, address


def test_the_form_and_the_cli_store_the_same_cleaned_details(start_server, run):
    server = start_server()
    details = {"name": "  Ana   Lima ", "timezone": "Europe/Madrid", "stage": " postpartum "}
    assert form_answer(server, "Web@Example.com", details).status_code == 200
    result = run("subscribers", "add", "CLI@Example.com", "--name", details["name"],
                 "--timezone", details["timezone"], "--field", f"stage={details['stage']}",
                 "--now", NOW)
    assert result.exit_code == 0, result.output
    drip = server.drip()
    web, cli = (drip.store.get_subscriber(email=a) for a in ("web@example.com", "cli@example.com"))
    assert (web.name, web.timezone, web.fields) == (cli.name, cli.timezone, cli.fields) == \
        ("Ana Lima", "Europe/Madrid", {"stage": "postpartum"})
    assert web.status == cli.status == "pending"


def test_a_signup_looks_its_address_up_once(start_server, engine, monkeypatch):
    """Whatever the address's state (new, pending, unsubscribed, active), one signup reads
    the subscriber by address once: the store's own method, counted, on the real database
    (SQLite and PostgreSQL)."""
    server = start_server(**engine)
    drip = server.drip()
    now = server.clock.now
    subscribers.add_subscriber(drip, "pending@example.com", now=now)
    subscribers.add_subscriber(drip, "active@example.com", now=now, confirmed=True,
                               consent_source="import")
    gone = subscribers.add_subscriber(drip, "gone@example.com", now=now, confirmed=True,
                                      consent_source="import").subscriber
    subscribers.unsubscribe(drip, gone, now=now)

    lookups = []
    store_class = type(drip.store)
    original = store_class.get_subscriber

    def counted(self, *args, **kwargs):
        if kwargs.get("email"):
            lookups.append(kwargs["email"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(store_class, "get_subscriber", counted)
    for address in ("new@example.com", "pending@example.com", "gone@example.com",
                    "active@example.com"):
        lookups.clear()
        answer = form_answer(server, address.upper(), {})
        assert answer.status_code == 200, answer.text
        server.drain()
        assert lookups == [address], address
    monkeypatch.undo()

    drip = server.drip()
    states = {p.email: p.status for p in drip.store.list_subscribers()}
    assert states == {"new@example.com": "pending", "pending@example.com": "pending",
                      "gone@example.com": "pending", "active@example.com": "active"}
    confirmations = {m["To"].addresses[0].addr_spec for m in server.emails()
                     if m["Subject"] == "Please confirm"}
    assert confirmations == {"new@example.com", "gone@example.com"}   # pending: within the hour
