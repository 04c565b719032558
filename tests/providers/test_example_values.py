"""The example values `drip init` writes never reach a real subscriber: with a real provider
`drip send`, `drip worker` and `drip serve` refuse to start while any remain (naming each
setting), `drip check` fails on them, and the outbox keeps working with them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sender import subscribers
from sender.config import Settings, env_file_text
from tests.conftest import REPO, base_env

from .conftest import KEYS, NOW, free_port

# What a coach's .env looks like once filled in (no example name, street or domain left).
REAL = {"DRIP_FROM": "Jo Rivera <jo@jorivera-coaching.com>",
        "DRIP_REPLY_TO": "hello@jorivera-coaching.com",
        "DRIP_POSTAL_ADDRESS": "PO Box 2207, Redmond, WA 98073, USA",
        "DRIP_BASE_URL": "https://mail.jorivera-coaching.com"}
# What base_env sets: the example values themselves (the test setup's opt-in turned off).
EXAMPLE_SETTINGS = ("DRIP_FROM", "DRIP_POSTAL_ADDRESS", "DRIP_BASE_URL")


def postmark(url, **extra):
    return {"DRIP_PROVIDER": "postmark", "POSTMARK_SERVER_TOKEN": KEYS["postmark"],
            "POSTMARK_API_URL": url, "DRIP_ALLOW_EXAMPLE_VALUES": "", **extra}


def test_send_with_example_values_and_a_real_provider_exits_1_and_sends_nothing(
        fake_api, run, drip):
    api = fake_api("postmark")
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=postmark(api.url))
    assert result.exit_code == 1, result.output
    for name in EXAMPLE_SETTINGS:
        assert name in result.output
    assert "drip init" in result.output and "outbox" in result.output
    assert api.requests == []
    assert {d.state for d in drip.store.deliveries()} == {"scheduled"}


def test_send_with_real_looking_values_goes_out(fake_api, run, drip):
    api = fake_api("postmark")
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=postmark(api.url, **REAL))
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output
    [request] = api.requests
    assert b"jo@jorivera-coaching.com" in request.body and b"Coach Example" not in request.body
    assert {d.state for d in drip.store.deliveries(campaign="welcome")} == {"sent"}


def test_one_example_value_left_is_named_alone(fake_api, run, drip):
    api = fake_api("postmark")
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    left = {**REAL, "DRIP_BOOKING_URL": "https://coach.example.com/book"}
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=postmark(api.url, **left))
    assert result.exit_code == 1
    assert "DRIP_BOOKING_URL" in result.output and "coach.example.com" in result.output
    assert "DRIP_FROM" not in result.output and api.requests == []


def test_dry_run_and_the_outbox_keep_working_with_example_values(fake_api, run, drip, project):
    api = fake_api("postmark")
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    result = run("send", "--dry-run", "--now", "2026-03-09T17:01Z", extra_env=postmark(api.url))
    assert result.exit_code == 0, result.output
    assert "1 due" in result.output and api.requests == []
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env={"DRIP_ALLOW_EXAMPLE_VALUES": ""})
    assert result.exit_code == 0, result.output
    [eml] = (project / "outbox").rglob("*.eml")
    assert b"coach@example.com" in eml.read_bytes()


def test_check_fails_on_example_values_naming_each_setting(run):
    result = run("check", extra_env={"DRIP_ALLOW_EXAMPLE_VALUES": ""})
    assert result.exit_code == 1
    for name in EXAMPLE_SETTINGS:
        assert f".env: {name} " in result.output
    assert "set your own" in result.output
    assert run("check", extra_env={"DRIP_ALLOW_EXAMPLE_VALUES": "", **REAL}).exit_code == 0


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_worker_and_serve_refuse_to_start(command, env, fake_api):
    """Real processes: they stop at once with exit code 1 and the settings named."""
    api = fake_api("postmark")
    environ = {**env, **postmark(api.url), "PATH": "/usr/bin:/bin"}
    options = ["--interval", "0.2"] if command == "worker" else ["--port", str(free_port())]
    proc = subprocess.run([sys.executable, "-m", "sender", command,
                           *options], env=environ, cwd=REPO, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1, proc.stderr
    for name in EXAMPLE_SETTINGS:
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr and api.requests == []


def test_placeholders_finds_every_example_drip_init_writes():
    written = dict(line.split("=", 1) for line in env_file_text(secret="s" * 40).splitlines()
                   if line and not line.startswith("#"))
    settings = Settings.from_env(written)
    found = {p.name for p in settings.placeholders()}
    assert {"DRIP_FROM", "DRIP_REPLY_TO", "DRIP_POSTAL_ADDRESS", "DRIP_BASE_URL", "DRIP_COACH_NAME",
            "DRIP_WEBSITE_URL", "DRIP_BLOG_URL", "DRIP_INSTAGRAM_URL", "DRIP_CONTACT_URL",
            "DRIP_BOOKING_URL"} == found
    # True facts the example happens to share (city, credentials) are not placeholders.
    assert "DRIP_COACH_CITY" not in found and "DRIP_COACH_CREDENTIALS" not in found


@pytest.mark.parametrize("name, value", [
    ("DRIP_FROM", "Coach Example <jo@jorivera-coaching.com>"),   # the example name kept
    ("DRIP_FROM", "Jo <jo@news.example.org>"),                    # an example domain
    ("DRIP_REPLY_TO", "jo@EXAMPLE.net"),
    ("DRIP_POSTAL_ADDRESS", "123 Example St, Seattle, WA 98101, USA"),
    ("DRIP_BASE_URL", "https://example.com"),
    ("DRIP_INSTAGRAM_URL", "https://www.instagram.com/example"),
    ("DRIP_GUIDE_URL", "https://coach.example.com/guide"),
])
def test_placeholders_match_example_pieces_and_domains(name, value, project):
    settings = Settings.from_env(base_env(project, **{**REAL, name: value}))
    assert [p.name for p in settings.placeholders()] == [name]


def test_real_values_are_not_placeholders(project):
    settings = Settings.from_env(base_env(project, **REAL,
                                          DRIP_INSTAGRAM_URL="https://www.instagram.com/examplecoach",
                                          DRIP_WEBSITE_URL="https://counterexample.com"))
    assert settings.placeholders() == []
