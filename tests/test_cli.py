"""The command line: output, --json, exit codes 0/1/2, help with examples."""

from __future__ import annotations

import json

import click
import pytest

from sender.backup import migrate_database
from sender.cli import cli
from tests.conftest import at


def commands(group=cli, prefix=()):
    """Every command's path; the top group loads each command's module when asked for it."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", sorted(commands()))
def test_every_command_has_help_with_an_example(run, path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"drip {' '.join(path)} --help has no example"


def test_main_job_through_the_cli(run, project):
    assert run("subscribers", "add", "ana@example.com", "--name", "Ana", "--timezone", "Europe/Madrid",
               "--field", "stage=postpartum", "--tag", "vip", "--consent", "in person", "--confirmed",
               "--now", "2026-03-02T10:00Z").exit_code == 0
    assert run("subscribers", "add", "bob@example.com", "--now", "2026-03-02T10:00Z").exit_code == 0
    listed = json.loads(run("subscribers", "list", "--json").output)
    assert [(p["email"], p["status"]) for p in listed] == [("ana@example.com", "active"),
                                                           ("bob@example.com", "pending")]
    plan = json.loads(run("plan", "--days", "30", "--now", "2026-03-02T10:00Z", "--json").output)
    assert [(r["email"], r["campaign"], r["step"]) for r in plan["upcoming"]] == [
        ("ana@example.com", "welcome", "hello"), ("bob@example.com", "confirmation", "confirm"),
        ("ana@example.com", "course", "one"), ("ana@example.com", "course", "two")]
    assert plan["upcoming"][0]["subject"] == "Welcome, Ana"
    assert plan["upcoming"][2]["local_time"].startswith("2026-03-05T11:00:00+01:00")
    dry = run("send", "--dry-run", "--now", "2026-03-02T10:00Z")
    assert "2 due" in dry.output and not (project / "outbox").exists()
    sent = json.loads(run("send", "--now", "2026-03-02T10:00Z", "--json").output)
    assert sent["sent"] == 2
    for day in ("2026-03-05T12:00Z", "2026-03-12T12:00Z"):
        run("send", "--now", day)
    shown = json.loads(run("subscribers", "show", "ana@example.com", "--json").output)
    assert [(d["step"], d["state"]) for d in shown["deliveries"]] == [
        ("hello", "sent"), ("one", "sent"), ("two", "sent")]
    assert shown["consent"]["source"] == "in person"
    status = json.loads(run("status", "--now", "2026-03-13T00:00Z", "--json").output)
    assert status["deliveries"] == {"sent": 4} and status["subscribers"] == {"active": 1, "pending": 1}
    assert len(list((project / "outbox").glob("*.eml"))) == 4
    text = run("subscribers", "show", "ana@example.com").output
    assert "Thu 2026-03-05 11:00 CET" in text and "2026-03-05 10:00 UTC" in text


def test_simulate(run):
    result = run("simulate", "--signup", "2026-03-07 23:30", "--timezone", "America/New_York", "--json")
    rows = json.loads(result.output)
    assert [(r["campaign"], r["due_at"]) for r in rows] == [
        ("confirmation", "2026-03-08T04:30:00Z"), ("welcome", "2026-03-08T04:30:00Z"),
        ("course", "2026-03-11T13:00:00Z"), ("course", "2026-03-18T13:00:00Z")]


def test_unsubscribe_pause_resume_commands(run, drip):
    run("subscribers", "add", "ana@example.com", "--confirmed", "--now", "2026-03-02T10:00Z")
    assert run("subscribers", "pause", "ana@example.com", "--now", "2026-03-02T11:00Z").exit_code == 0
    again = run("subscribers", "pause", "ana@example.com", "--now", "2026-03-02T11:00Z")
    assert again.exit_code == 1 and "is paused; nothing to pause" in again.output
    assert run("subscribers", "resume", "ana@example.com", "--now", "2026-03-03T11:00Z").exit_code == 0
    result = run("subscribers", "unsubscribe", "ana@example.com", "--now", "2026-03-04T11:00Z")
    assert result.exit_code == 0 and "3 pending emails cancelled" in result.output
    assert drip.store.get_subscriber(email="ana@example.com").status == "unsubscribed"


@pytest.mark.parametrize("args,code,message", [
    (("subscribers", "add", "not-an-address"), 1, "exactly one @"),
    (("subscribers", "add", "a@example.com", "--timezone", "Nope/Nope"), 1, "IANA"),
    (("subscribers", "add", "a@example.com", "--field", "stage"), 1, "key=value"),
    (("subscribers", "add", "a@example.com", "--name", "A\nBcc: b@example.com"), 1, "line break"),
    (("subscribers", "show", "nobody@example.com"), 1, "no subscriber"),
    (("send", "--now", "yesterday"), 1, "ISO 8601"),
    (("send", "--limit", "0"), 2, "Invalid value"),
    (("plan", "--days", "x"), 2, "Invalid value"),
    (("frobnicate",), 2, "No such command"),
    (("resolve", "99", "--as", "sent"), 1, "no delivery 99"),
])
def test_bad_input_exit_codes(run, drip, args, code, message):
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert list(drip.store.list_subscribers()) == []


def test_missing_setting_exit_1_names_it(run):
    result = run("status", extra_env={"DRIP_FROM": ""})
    assert result.exit_code == 1 and "DRIP_FROM is not set" in result.output


def test_broken_campaign_exit_1(run, project):
    (project / "campaigns" / "course.toml").write_text("[[steps]]\nid = 3\n")
    result = run("send", "--now", "2026-03-02T10:00Z")
    assert result.exit_code == 1
    assert "course.toml: steps[1].id" in result.output


def test_init_writes_env_and_refuses_to_overwrite(run, project):
    result = run("init", "--path", str(project / "new.env"))
    assert result.exit_code == 0
    text = (project / "new.env").read_text()
    assert "DRIP_SECRET_KEY=" in text and "DRIP_FROM=" in text
    assert run("init", "--path", str(project / "new.env")).exit_code == 1


def test_env_file_is_loaded_but_environment_wins(tmp_path, project, monkeypatch, env):
    from click.testing import CliRunner
    env_file = tmp_path / "custom.env"
    env_file.write_text(f"DRIP_OUTBOX_DIR={tmp_path / 'from-file'}\nDRIP_SEND_WINDOW=always\n")
    monkeypatch.chdir(project)
    migrate_database(env["DRIP_DATABASE"])     # as `drip init` does: no command makes one
    environ = {k: v for k, v in env.items() if k not in ("DRIP_OUTBOX_DIR", "DRIP_SEND_WINDOW")}
    environ["DRIP_SEND_WINDOW"] = "Mon-Fri 10:00-11:00"
    for key in ("DRIP_OUTBOX_DIR", "DRIP_SEND_WINDOW"):
        # load_dotenv writes to os.environ: make sure whatever it sets is undone afterwards.
        monkeypatch.setenv(key, "placeholder")
        monkeypatch.delenv(key)
    result = CliRunner().invoke(cli, ["--env-file", str(env_file), "campaigns", "--json"], env=environ)
    assert result.exit_code == 0, result.output
    windows = {c["id"]: c["window"] for c in json.loads(result.output)}
    assert windows["course"] == "Mon-Fri 09:00-17:00"   # the campaign's own window
    result = CliRunner().invoke(cli, ["--env-file", str(env_file), "subscribers", "add", "a@example.com",
                                      "--confirmed", "--now", "2026-03-02T10:00Z"], env=environ)
    CliRunner().invoke(cli, ["--env-file", str(env_file), "send", "--now", "2026-03-02T10:00Z"], env=environ)
    assert list((tmp_path / "from-file").glob("*.eml"))


def test_secrets_never_printed(run):
    result = run("--debug", "status", "--json", extra_env={"RESEND_API_KEY": "re_supersecret_123"})
    assert result.exit_code == 0
    assert "re_supersecret_123" not in result.output


def test_now_option_uses_the_given_time(run, drip):
    run("subscribers", "add", "ana@example.com", "--confirmed", "--now", "2026-03-02T10:00Z")
    person = drip.store.get_subscriber(email="ana@example.com")
    assert person.created_at == at("2026-03-02T10:00Z")
