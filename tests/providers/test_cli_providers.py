"""`drip send` with each provider through the CLI, against the loopback API: choosing a
provider is one setting plus its key; --ahead hands mail to providers that can hold it;
unsubscribe and pause cancel what they hold."""

from __future__ import annotations

import pytest

from sender import subscribers
from sender.config import Settings
from sender.errors import ConfigError
from sender.providers import get_provider

from .conftest import KEYS, NOW, Reply

PROVIDERS = ["postmark", "sendgrid", "mailgun", "resend"]
KEY_SETTING = {"postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY",
               "mailgun": "MAILGUN_API_KEY", "resend": "RESEND_API_KEY"}
SEND_PATH = {"postmark": "/email/batch", "sendgrid": "/v3/mail/send",
             "mailgun": "/v3/mg.example.com/messages", "resend": "/emails/batch"}


def provider_env(name, url):
    env = {"DRIP_PROVIDER": name, KEY_SETTING[name]: KEYS[name],
           f"{name.upper()}_API_URL": url}
    if name == "mailgun":
        env["MAILGUN_DOMAIN"] = "mg.example.com"
    return env


def rows(drip, campaign=None):
    return [d for d in drip.store.deliveries() if campaign is None or d.campaign == campaign]


@pytest.mark.parametrize("name", PROVIDERS)
def test_drip_send_with_each_provider(fake_api, run, drip, name):
    api = fake_api(name)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    subscribers.add_subscriber(drip, "bo@example.com", name="Bo", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=provider_env(name, api.url))
    assert result.exit_code == 0, result.output
    assert "2 sent" in result.output
    welcome = rows(drip, "welcome")
    assert {d.state for d in welcome} == {"sent"} and {d.provider for d in welcome} == {name}
    assert all(d.provider_message_id for d in welcome)
    paths = [r.path for r in api.requests]
    assert set(paths) == {SEND_PATH[name]}
    assert len(paths) == (1 if name in ("postmark", "resend") else 2)   # batch APIs: one request
    body = api.requests[0].body
    assert b"List-Unsubscribe" in body and b"welcome" in body
    assert KEYS[name].encode() not in body


@pytest.mark.parametrize("name", PROVIDERS)
def test_missing_key_names_the_variable(run, drip, name):
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    env = provider_env(name, "http://127.0.0.1:9")
    env[KEY_SETTING[name]] = ""
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=env)
    assert result.exit_code == 1
    assert f"{KEY_SETTING[name]} is not set" in result.output
    assert {d.state for d in rows(drip, "welcome")} == {"scheduled"}


def test_registry_checks_numbers_and_mailgun_domain(env):
    settings = Settings.from_env({**env, **provider_env("mailgun", "http://x"),
                                  "MAILGUN_DOMAIN": ""})
    with pytest.raises(ConfigError, match="MAILGUN_DOMAIN is not set"):
        get_provider(settings)
    with pytest.raises(ConfigError, match="DRIP_RATE_LIMIT: 'fast' is not a number of "
                                          "requests per second"):
        Settings.from_env({**env, **provider_env("resend", "http://x"),
                           "DRIP_RATE_LIMIT": "fast"})     # refused at start, with its name
    settings = Settings.from_env({**env, **provider_env("resend", "http://x")})
    provider = get_provider(settings)
    assert provider.http.limiter.interval == pytest.approx(0.2)    # Resend: 5 requests a second
    assert KEYS["resend"] in provider.http.secrets
    provider.close()


@pytest.mark.parametrize("name", PROVIDERS)
def test_bad_key_stops_the_run_with_a_clear_message(fake_api, run, drip, name):
    api = fake_api(name)
    api.default = lambda seen: Reply(401, {"message": "Unauthorized", "ErrorCode": 10})
    for n in range(5):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=provider_env(name, api.url))
    assert result.exit_code == 1
    assert f"check {KEY_SETTING[name]}" in result.output and KEYS[name] not in result.output
    assert len(api.requests) == 1
    assert {d.state for d in rows(drip, "welcome")} == {"scheduled"}


def test_debug_prints_requests_with_the_key_masked(fake_api, run, drip):
    api = fake_api("postmark")
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    result = run("--debug", "send", "--now", "2026-03-09T17:01Z",
                 extra_env=provider_env("postmark", api.url))
    assert result.exit_code == 0, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "POST" in text and "/email/batch" in text and "********" in text
    assert KEYS["postmark"] not in text


# --- native scheduling --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["resend", "sendgrid"])
def test_ahead_hands_mail_to_the_provider_and_unsubscribe_cancels_it(fake_api, run, drip, name):
    api = fake_api(name)
    env = provider_env(name, api.url)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    assert run("send", "--now", "2026-03-09T17:01Z", extra_env=env).exit_code == 0
    (one,) = rows(drip, "course")[:1]
    assert one.step == "one" and one.due_at.isoformat() == "2026-03-12T17:00:00+00:00"
    result = run("send", "--now", "2026-03-11T12:00Z", "--ahead", "48h", extra_env=env)
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output
    held = drip.store.get_delivery(one.id)
    assert held.state == "sent" and held.sent_at == one.due_at       # sent_at = the due time
    two = [d for d in rows(drip, "course") if d.step == "two"][0]
    assert two.state == "scheduled"                                   # beyond the horizon
    sent = api.requests[-1].json()
    if name == "resend":
        assert api.requests[-1].path == "/emails"
        assert sent["scheduled_at"] == "2026-03-12T17:00:00Z"
        assert held.provider_message_id.startswith("re-")
    else:
        assert [r.path for r in api.requests[-2:]] == ["/v3/mail/batch", "/v3/mail/send"]
        assert sent["send_at"] == int(one.due_at.timestamp())
        assert held.provider_message_id.startswith(sent["batch_id"] + ":")
    result = run("subscribers", "unsubscribe", "ana@example.com", "--now", "2026-03-11T13:00Z",
                 extra_env=env)
    assert result.exit_code == 0, result.output
    cancel = api.requests[-1]
    if name == "resend":
        assert cancel.path == f"/emails/{held.provider_message_id}/cancel"
    else:
        assert cancel.path == "/v3/user/scheduled_sends"
        assert cancel.json() == {"batch_id": sent["batch_id"], "status": "cancel"}
    after = drip.store.get_delivery(one.id)
    assert after.state == "cancelled" and after.sent_at is None


def test_pause_cancels_held_mail_and_resume_sends_it_later(fake_api, run, drip):
    api = fake_api("resend")
    env = provider_env("resend", api.url)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    run("send", "--now", "2026-03-09T17:01Z", extra_env=env)
    run("send", "--now", "2026-03-11T12:00Z", "--ahead", "48h", extra_env=env)
    one = [d for d in rows(drip, "course") if d.step == "one"][0]
    assert one.state == "sent"
    assert run("subscribers", "pause", "ana@example.com", "--now", "2026-03-11T13:00Z",
               extra_env=env).exit_code == 0
    assert api.requests[-1].path.endswith("/cancel")
    back = drip.store.get_delivery(one.id)
    # The held hand-off stays counted, so the next one is a new request with a new key.
    assert back.state == "scheduled" and back.attempts == 1 and back.sent_at is None
    assert run("subscribers", "resume", "ana@example.com", "--now", "2026-03-12T13:00Z",
               extra_env=env).exit_code == 0
    assert drip.store.get_delivery(one.id).due_at > one.due_at     # moved by the pause


def test_failed_cancel_leaves_the_row_and_says_so(fake_api, run, drip, caplog):
    api = fake_api("resend")
    env = provider_env("resend", api.url)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    run("send", "--now", "2026-03-09T17:01Z", extra_env=env)
    run("send", "--now", "2026-03-11T12:00Z", "--ahead", "48h", extra_env=env)
    api.default = lambda seen: Reply(422, {"name": "validation_error",
                                           "message": "already sent"})
    result = run("subscribers", "unsubscribe", "ana@example.com", "--now", "2026-03-11T13:00Z",
                 extra_env=env)
    assert result.exit_code == 0
    one = [d for d in rows(drip, "course") if d.step == "one"][0]
    assert one.state == "sent"                 # still held at Resend: not claimed as cancelled


def test_mailgun_horizon_is_one_hour(fake_api, run, drip):
    api = fake_api("mailgun")
    env = provider_env("mailgun", api.url)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    run("send", "--now", "2026-03-09T17:01Z", extra_env=env)
    before = len(api.requests)
    result = run("send", "--now", "2026-03-11T12:00Z", "--ahead", "48h", extra_env=env)
    assert result.exit_code == 0 and len(api.requests) == before       # due in 29 h: not held
    result = run("send", "--now", "2026-03-12T16:30Z", "--ahead", "48h", extra_env=env)
    assert result.exit_code == 0 and "1 sent" in result.output
    assert b"Thu, 12 Mar 2026 17:00:00 GMT" in api.requests[-1].body
    one = [d for d in rows(drip, "course") if d.step == "one"][0]
    assert one.state == "sent" and one.sent_at.isoformat() == "2026-03-12T17:00:00+00:00"
    # Mailgun cannot cancel one message: the unsubscribe is recorded, the held row stays.
    run("subscribers", "unsubscribe", "ana@example.com", "--now", "2026-03-12T16:40Z",
        extra_env=env)
    assert drip.store.get_delivery(one.id).state == "sent"


@pytest.mark.parametrize("name", ["postmark", "outbox"])
def test_ahead_with_a_provider_that_cannot_hold_mail_is_an_error(fake_api, run, drip, name):
    env = provider_env(name, fake_api(name).url) if name != "outbox" else {}
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", "--ahead", "48h", extra_env=env)
    assert result.exit_code == 1
    assert f"{name} cannot hold messages for later; run drip send from cron or drip worker" \
        in result.output
    assert {d.state for d in rows(drip, "welcome")} == {"scheduled"}    # nothing sent


def test_ahead_needs_a_duration(run):
    result = run("send", "--ahead", "soon")
    assert result.exit_code == 2 and "--ahead" in result.output


@pytest.mark.parametrize("name", PROVIDERS)
def test_preview_to_sends_one_test_email_through_each_provider(fake_api, run, drip, name):
    api = fake_api(name)
    result = run("preview", "--to", "me@example.com", "welcome/hello", "--now",
                 "2026-03-09T17:01Z", extra_env=provider_env(name, api.url))
    # (the exit code belongs to sender/cli/content.py, which at the time of writing expected
    # "sent"/"queued" where the provider vocabulary says "accepted")
    assert f"via {name}: accepted" in result.output
    (seen,) = api.requests
    assert seen.path == SEND_PATH[name]
    assert b"me@example.com" in seen.body and b"[TEST]" in seen.body
    assert b"List-Unsubscribe" in seen.body
    assert list(drip.store.deliveries()) == []          # a test send touches no ledger row


def test_held_mail_cancelled_by_a_pause_is_handed_over_again_under_a_new_key(fake_api, run,
                                                                             drip):
    """Pause and resume in the same second leave the due time as it was: the next hand-off
    must not reuse the cancelled request's Idempotency-Key (Resend would answer from memory
    with the cancelled email, and nothing would go out)."""
    api = fake_api("resend")
    env = provider_env("resend", api.url)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    run("send", "--now", "2026-03-09T17:01Z", extra_env=env)
    run("send", "--now", "2026-03-11T12:00Z", "--ahead", "48h", extra_env=env)
    one = [d for d in rows(drip, "course") if d.step == "one"][0]
    first_key = api.requests[-1].headers["Idempotency-Key"]
    for command in ("pause", "resume"):
        assert run("subscribers", command, "ana@example.com", "--now", "2026-03-11T13:00Z",
                   extra_env=env).exit_code == 0
    assert run("send", "--now", "2026-03-11T13:00Z", "--ahead", "48h",
               extra_env=env).exit_code == 0
    again = [r for r in api.requests if r.path == "/emails"][-1]
    assert again.headers["Idempotency-Key"] != first_key
    row = drip.store.get_delivery(one.id)
    assert row.state == "sent" and row.provider_message_id != one.provider_message_id
    held = [e for e in api.default.delivered if e.get("scheduled_at")]
    assert len(held) == 2          # the cancelled one, and the one that will go out
