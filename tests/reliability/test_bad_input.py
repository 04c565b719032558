"""A corpus of bad input, each with its clear error and exit code, and nothing lost.

Web-side cases (forged, replayed and expired tokens; unsigned or tampered provider events;
oversized bodies) are driven over HTTP in tests/web/.
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest

HEADER_BREAKS = ["\r\n", "\n", "\r", "\u2028"]


def write_csv(project, name, text):
    path = project / name
    path.write_text(text, encoding="utf-8")
    return str(path)


CASES = [
    # (id, argv, exit code, message)
    ("address-no-at", ["subscribers", "add", "ana.example.com"], 1, "exactly one @"),
    ("address-two-at", ["subscribers", "add", "a@b@example.com"], 1, "exactly one @"),
    ("address-space", ["subscribers", "add", "ana @example.com"], 1, "spaces"),
    ("address-unicode-local", ["subscribers", "add", "zoë@example.com"], 1, "non-ASCII before the @"),
    ("address-no-tld", ["subscribers", "add", "ana@localhost"], 1, "not an email address"),
    ("address-too-long", ["subscribers", "add", "a" * 65 + "@example.com"], 1, "too long"),
    ("timezone", ["subscribers", "add", "a@example.com", "--timezone", "Europe/Atlantis"], 1, "IANA"),
    ("field", ["subscribers", "add", "a@example.com", "--field", "=x"], 1, "key=value"),
    ("tag", ["subscribers", "add", "a@example.com", "--tag", "two words"], 1, "one word"),
    ("now", ["send", "--now", "2026-13-45"], 1, "ISO 8601"),
    ("usage-unknown-option", ["send", "--loudly"], 2, "No such option"),
    ("usage-missing-argument", ["subscribers", "add"], 2, "Missing argument"),
    ("usage-bad-choice", ["resolve", "1", "--as", "maybe"], 2, "Invalid value"),
] + [
    (f"name-header-injection-{i}",
     ["subscribers", "add", "a@example.com", "--name", f"Ana{brk}Bcc: x@evil.test"], 1, "line break")
    for i, brk in enumerate(HEADER_BREAKS)
] + [
    (f"field-header-injection-{i}",
     ["subscribers", "add", "a@example.com", "--field", f"city=Oslo{brk}X: y"], 1, "line break")
    for i, brk in enumerate(HEADER_BREAKS)
]


@pytest.mark.parametrize("case_id,argv,code,message", CASES, ids=[c[0] for c in CASES])
def test_cli_bad_input(run, drip, case_id, argv, code, message):
    result = run(*argv)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(drip.store.list_subscribers()) == []


@pytest.mark.parametrize("name,value,message", [
    ("DRIP_FROM", "Coach <coach@example.com>\r\nBcc: x@evil.test", "one line"),
    ("DRIP_REPLY_TO", "coach@example.com\nBcc: x@evil.test", "one line"),
    ("DRIP_POSTAL_ADDRESS", "1 Main St\nBcc: x@evil.test", "one line"),
])
def test_header_injection_through_settings(run, name, value, message):
    result = run("status", extra_env={name: value})
    assert result.exit_code == 1 and name in result.output and message in result.output


def test_header_injection_through_a_campaign_subject(run, project):
    path = project / "campaigns" / "course.toml"
    hostile = 'subject = "Lesson\\r\\nBcc: x@evil.test"'
    path.write_text(path.read_text().replace('subject = "Lesson one"', hostile))
    result = run("send")
    assert result.exit_code == 1 and "steps[1].subject: must be on one line" in result.output


def test_template_syntax_in_names_is_shown_not_run(run, project):
    hostile = "{{ 7*7 }} <b>{% raw %}</b> <script>alert(1)</script>"
    assert run("subscribers", "add", "ana@example.com", "--name", hostile, "--confirmed",
               "--now", "2026-03-02T18:00Z").exit_code == 0
    assert run("send", "--now", "2026-03-02T18:00Z").exit_code == 0
    assert run("send", "--now", "2026-03-05T19:00Z").exit_code == 0
    assert len(list((project / "outbox").glob("*.eml"))) == 2
    for eml in (project / "outbox").glob("*.eml"):
        msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        assert "49" not in html and "49" not in text
        assert "<script>" not in html
    welcome = next((project / "outbox").glob("welcome.*.eml"))
    msg = message_from_bytes(welcome.read_bytes(), policy=policy.default)
    assert msg["Subject"] == "Welcome, {{"      # the first word of the name, literally


def test_broken_template_names_the_file_and_line(run, project):
    (project / "templates" / "emails" / "course" / "one.html").write_text(
        "<h2>Lesson</h2>\n<p>ok</p>\n<p>{% if subscriber.name %}unclosed</p>\n")
    run("subscribers", "add", "ana@example.com", "--confirmed", "--now", "2026-03-02T18:00Z")
    assert run("send", "--now", "2026-03-02T18:00Z").exit_code == 0     # the welcome
    result = run("send", "--now", "2026-03-05T19:00Z")                  # course/one
    assert result.exit_code == 1
    assert "emails/course/one.html" in result.output and "line" in result.output
    assert "Traceback" not in result.output


def test_broken_campaign_file_reports_every_problem(run, project):
    (project / "campaigns" / "course.toml").write_text(
        'window = "Mon-Fri 9-5"\n[entry]\non = "whenever"\n[[steps]]\nid = "x"\ndelay = "soon"\n')
    result = run("campaigns")
    assert result.exit_code == 1
    for key in ("window", "entry.on", "steps[1].template", "steps[1].subject", "steps[1].delay"):
        assert f"course.toml: {key}" in result.output


def test_malformed_and_huge_csv_reports_lines_and_imports_the_rest(run, project, drip):
    path = write_csv(project, "people.csv", "\ufeffemail;name;notes\n"
                     f"a@example.com;A;{'x' * 200_000}\n"
                     "b@example.com;B;ok\n"
                     "not-an-address;C;ok\n"
                     "b@example.com;B again;dup\n"
                     "c@example.com;C;ok\n")
    result = run("subscribers", "import", path, "--consent", "moved from the old tool")
    assert result.exit_code == 1
    assert "line 2" in result.output and "field larger than field limit" in result.output
    assert "line 4" in result.output and "not-an-address" in result.output
    assert "line 5" in result.output
    assert sorted(p.email for p in drip.store.list_subscribers()) == ["b@example.com", "c@example.com"]


def test_binary_file_as_csv(run, project, drip):
    path = project / "people.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    result = run("subscribers", "import", str(path), "--consent", "x")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert list(drip.store.list_subscribers()) == []


def test_json_output_stays_json_on_odd_input(run):
    run("subscribers", "add", "ana@example.com", "--name", "Zoë \"Z\" O'Neil, 🙂", "--confirmed")
    data = json.loads(run("subscribers", "list", "--json").output)
    assert data[0]["name"] == "Zoë \"Z\" O'Neil, 🙂"
