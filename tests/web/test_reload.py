"""The running web app picks up edited campaign and template files without a restart: the
next signup's confirmation email has the new subject and text; a broken edit is refused
(logged with file and line) and signups carry on with the last good version."""

from __future__ import annotations

import logging
from datetime import timedelta

import requests

# The app looks at the files at most once a second of its clock; the tests move that clock.
LATER = timedelta(seconds=2)


def sign_up(server, address):
    response = requests.post(f"{server.url}/subscribe", data={"email": address, "consent": "yes"},
                             timeout=10)
    assert response.status_code == 200, response.text
    [message] = server.emails_to(address)
    return message


def test_an_edited_confirmation_goes_out_with_the_next_signup(server, project, reload_log):
    campaign = project / "campaigns" / "confirmation.toml"
    body = project / "templates" / "emails" / "system" / "confirm.html"
    assert sign_up(server, "ana@example.com")["Subject"] == "Please confirm"
    campaign.write_text(campaign.read_text().replace('subject = "Please confirm"',
                                                     'subject = "One click to confirm, please"'))
    body.write_text(body.read_text() + "<p>The link works for a week.</p>\n")
    server.clock.now += LATER
    message = sign_up(server, "bo@example.com")
    assert message["Subject"] == "One click to confirm, please"
    assert "The link works for a week." in message.get_body(("plain",)).get_content()
    messages = [r.getMessage() for r in reload_log]
    assert any("campaign edited: confirmation" in m and "templates changed" in m for m in messages)


def test_a_broken_edit_is_refused_and_signups_carry_on(server, project, reload_log):
    campaign = project / "campaigns" / "confirmation.toml"
    good = campaign.read_text()
    campaign.write_text(good.replace('subject = "Please confirm"', 'subject = "Please confirm?"'))
    server.clock.now += LATER
    assert sign_up(server, "ana@example.com")["Subject"] == "Please confirm?"
    campaign.write_text(good.replace('[[steps]]', '[[steps]\n'))
    line = campaign.read_text().splitlines().index("[[steps]") + 1
    server.clock.now += LATER
    message = sign_up(server, "bo@example.com")
    assert message["Subject"] == "Please confirm?"          # the last good version
    [refused] = [r.getMessage() for r in reload_log if r.levelno == logging.ERROR]
    assert str(campaign) in refused and f"line {line}" in refused
    # Fixed, it goes live at the next look.
    campaign.write_text(good)
    server.clock.now += LATER
    assert sign_up(server, "cy@example.com")["Subject"] == "Please confirm"
