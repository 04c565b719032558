"""The command line never looks like data loss and never shows a traceback.

A command run in the wrong folder says which database it looked for instead of making an
empty one; a missing --env-file is bad usage; a port in use is a message; every command, on
every kind of bad input, ends in a message and exit code 1 or 2; --json where scripts and CI
read the answer; and a backup restores to a database that sends on where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from sender import subscribers
from sender.cli import cli
from sender.cli.content import preview_command
from sender.cli.web import serve
from sender.store.migrations import MIGRATIONS, migrate
from tests.conftest import FIXTURES, at, base_env
from tests.content.test_guide import TINY_GUIDE
from tests.test_cli import commands

NOW = "2026-03-02T18:00Z"      # a Monday, 10:00 in Los Angeles: inside the send window
LATEST = [m.__name__ for m in MIGRATIONS]


@pytest.fixture
def restore_environ():
    """A .env loaded by the CLI writes to os.environ; put it back as it was afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def invoke(args, env, **kwargs):
    return CliRunner().invoke(cli, args, env=env, **kwargs)


def schema(path):
    conn = sqlite3.connect(path)
    try:
        return [name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]
    finally:
        conn.close()


def outbox(project):
    """(file name, Message-ID) of every .eml file in the outbox."""
    return [(path.name, message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"])
            for path in sorted((project / "outbox").glob("*.eml"))]


# --- 1. the wrong folder ------------------------------------------------------------------
@pytest.mark.parametrize("args", [["subscribers", "list"], ["send"], ["status"],
                                  ["worker", "--exit-when-idle"], ["serve", "--port", "{busy}"],
                                  ["subscribers", "add", "ana@example.com", "--confirmed"]])
def test_a_command_in_the_wrong_folder_says_where_it_looked_and_creates_nothing(
        args, tmp_path, project, monkeypatch, busy_port):
    args = [a.replace("{busy}", str(busy_port)) for a in args]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {**base_env(project), "DRIP_DATABASE": None}     # the default: drip.db, here
    result = invoke(args, env)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = " ".join(result.output.split())
    assert f"no database at {elsewhere / 'drip.db'}" in text
    assert f"looked for from the folder {elsewhere}" in text
    assert f"no settings file {elsewhere / '.env'} was found" in text
    assert "--env-file" in text and "DRIP_DATABASE" in text and "drip migrate" in text
    assert list(elsewhere.iterdir()) == [], "nothing may be created"


def test_the_message_names_the_env_file_that_was_loaded(tmp_path, project, monkeypatch,
                                                         restore_environ):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / ".env").write_text("DRIP_DATABASE=data/missing.db\n")
    (folder / "data").mkdir()
    monkeypatch.chdir(folder)
    result = invoke(["subscribers", "list"], {**base_env(project), "DRIP_DATABASE": None})
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"no database at {folder / 'data' / 'missing.db'}" in text
    assert f"settings loaded from {folder / '.env'}" in text
    assert sorted(p.name for p in (folder / "data").iterdir()) == []


def test_init_creates_the_database_and_the_commands_then_use_it(tmp_path, project, monkeypatch,
                                                                 restore_environ):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    env = {**base_env(project), "DRIP_DATABASE": None}
    result = invoke(["init"], env)
    assert result.exit_code == 0, result.output
    assert (fresh / ".env").is_file() and schema(fresh / "drip.db") == LATEST
    assert str(fresh / "drip.db") in result.output
    added = invoke(["subscribers", "add", "ana@example.com", "--confirmed", "--now", NOW], env)
    assert added.exit_code == 0, added.output
    conn = sqlite3.connect(fresh / "drip.db")
    assert conn.execute("SELECT email, status FROM subscribers").fetchall() == [
        ("ana@example.com", "active")]
    conn.close()


def test_migrate_creates_a_missing_database_and_says_which_migrations_ran(tmp_path, project,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**base_env(project), "DRIP_DATABASE": str(tmp_path / "new.db")}
    result = invoke(["migrate"], env)
    assert result.exit_code == 0, result.output
    for name in LATEST:
        assert name in result.output
    assert schema(tmp_path / "new.db") == LATEST
    again = invoke(["migrate", "--json"], env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output) == {"database": str(tmp_path / "new.db"), "created": False,
                                        "applied": [], "version": len(LATEST)}


def test_migrate_applies_only_what_an_older_database_lacks(tmp_path, project, monkeypatch):
    """A database from an older drip (the first three migrations) keeps its rows and gets
    the rest; `drip migrate` names exactly those."""
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    migrate(conn, upto=3)
    conn.execute("INSERT INTO subscribers (uid, email, status, created_at, updated_at) "
                 "VALUES ('u1', 'ana@example.com', 'active', '2026-01-01T00:00:00Z', "
                 "'2026-01-01T00:00:00Z')")
    conn.close()
    monkeypatch.chdir(tmp_path)
    result = invoke(["migrate", "--json"], {**base_env(project), "DRIP_DATABASE": str(old)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["applied"] == LATEST[3:]
    assert schema(old) == LATEST
    conn = sqlite3.connect(old)
    assert conn.execute("SELECT email FROM subscribers").fetchall() == [("ana@example.com",)]
    conn.close()


def test_memory_database_is_unaffected(project, monkeypatch):
    monkeypatch.chdir(project)
    result = invoke(["subscribers", "list"], {**base_env(project), "DRIP_DATABASE": ":memory:"})
    assert result.exit_code == 0, result.output
    assert "No subscribers yet" in result.output
    assert not (project / ":memory:").exists()


# --- 2. a missing --env-file --------------------------------------------------------------
def test_a_missing_env_file_is_bad_usage_naming_it(tmp_path, project, monkeypatch):
    monkeypatch.chdir(project)
    missing = tmp_path / "nowhere" / "prod.env"
    result = invoke(["--env-file", str(missing), "subscribers", "list"], base_env(project))
    assert result.exit_code == 2, result.output
    assert str(missing) in result.output and "--env-file" in result.output
    assert not (project / "drip.db").exists()


def test_without_env_file_and_without_dot_env_the_environment_is_enough(run):
    result = run("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert "No subscribers yet" in result.output


# --- 3. a port in use ---------------------------------------------------------------------
def test_preview_and_serve_listen_on_different_ports_by_default():
    ports = {command.name: next(p.default for p in command.params if p.name == "port")
             for command in (serve, preview_command)}
    assert ports["serve"] != ports["preview"] and ports["preview"] == 8026
    assert "8026" in invoke(["preview", "--help"], {}).output


@pytest.mark.parametrize("command", [["serve"], ["preview", "--serve"]])
def test_a_port_in_use_is_a_message_not_a_traceback(command, project, tmp_path):
    from sender.backup import migrate_database
    env = {**os.environ, **base_env(project)}
    migrate_database(env["DRIP_DATABASE"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sender", *command, "--port", str(port)],
            cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (f"port {port} on 127.0.0.1 is in use (is another drip serve running?): choose "
            "another with --port") in done.stderr
    assert not (project / "build").exists(), "nothing is built before the port is known free"


# --- 4. every command, every kind of bad input --------------------------------------------
# Arguments that make each command do its real work. {who} is the subscriber the scenario
# names, {delivery} a delivery id, {out} the folder written to; serve is given a port in use
# so that it stops.
ARGS = {
    ("init",): ["--path", "{out}/new.env"],
    ("subscribers", "add"): ["new@example.com", "--confirmed", "--now", NOW],
    ("subscribers", "list"): [],
    ("subscribers", "show"): ["{who}"],
    ("subscribers", "unsubscribe"): ["{who}", "--now", NOW],
    ("subscribers", "pause"): ["{who}", "--now", NOW],
    ("subscribers", "resume"): ["{who}", "--now", NOW],
    ("subscribers", "confirm"): ["{who}", "--now", NOW],
    ("subscribers", "import"): ["{tmp}/people.csv", "--consent", "test import", "--now", NOW],
    ("subscribers", "export"): ["-o", "{out}/export.csv"],
    ("subscribers", "delete"): ["{who}", "--yes", "--now", NOW],
    ("plan",): ["--days", "30", "--now", NOW],
    ("simulate",): ["--signup", "2026-03-07 23:30", "--timezone", "America/New_York"],
    ("send",): ["--now", NOW],
    ("worker",): ["--exit-when-idle", "--interval", "0.1"],
    ("status",): ["--now", NOW],
    ("resolve",): ["{delivery}", "--as", "resend"],
    ("campaigns",): [],
    ("campaigns", "resume"): ["course", "--now", NOW],
    ("serve",): ["--port", "{busy_port}"],
    ("report",): ["--html", "{out}/report.html"],
    ("events", "sync"): ["--now", NOW],
    ("preview",): ["--output", "{out}/preview", "--now", NOW],
    ("check",): [],
    ("templates",): [],
    ("guide", "build"): ["--output", "{out}/guide"],
    ("backup",): ["{out}/backup.db"],
    ("migrate",): [],
    ("enroll",): ["course", "--segment", "status:active", "--now", NOW],
    ("doctor",): ["--dns-server", "127.0.0.1:9", "--no-web", "--no-provider", "--timeout", "0.2"],
    ("assets", "publish"): ["{out}/assets"],
    ("admin", "set-password"): ["--password-stdin"],
    ("broadcast", "new"): ["Walk test", "--now", NOW],
    ("broadcast", "list"): [],
    ("broadcast", "preview"): ["2026-03-09-walk", "--output", "{out}/preview", "--now", NOW],
    ("broadcast", "test"): ["2026-03-09-walk", "--to", "me@example.com", "--now", NOW],
    ("broadcast", "schedule"): ["2026-03-09-walk", "Tue 09:00 local", "--yes", "--now", NOW],
    ("broadcast", "send"): ["2026-03-09-walk", "--yes", "--now", NOW],
    ("broadcast", "cancel"): ["2026-03-09-walk", "--now", NOW],
    ("broadcast", "status"): ["2026-03-09-walk"],
    ("why",): ["{who}", "--now", NOW],
}
STORE = {path for path in ARGS if path[0] == "subscribers"} | {
    ("plan",), ("send",), ("worker",), ("status",), ("resolve",), ("serve",), ("report",),
    ("backup",), ("enroll",), ("why",)}
WRITES = {("subscribers", n) for n in ("add", "unsubscribe", "pause", "import", "delete")} | {
    ("send",), ("worker",)}
SETTINGS = set(ARGS) - {("init",), ("backup",), ("migrate",), ("templates",)}   # templates: names only
CAMPAIGNS = {("subscribers", "add"), ("plan",), ("enroll",), ("simulate",), ("send",), ("worker",),
             ("campaigns",), ("campaigns", "resume"), ("preview",), ("check",)}


# Python's own wording, which says nothing to the person running drip.
PYTHON_INTERNALS = ("invalid literal for int()", "could not convert string to float",
                    "object has no attribute", "NoneType")


def test_every_command_is_walked():
    # and `drip campaigns` itself, a group that lists when given no command
    assert set(commands()) | {("campaigns",)} == set(ARGS)


def _missing_database(project):
    (project / "drip.db").unlink()
    return {}


def _corrupt_database(project):
    (project / "drip.db").write_bytes(b"this is not a database, just some text\n" * 200)
    for extra in ("drip.db-wal", "drip.db-shm"):
        (project / extra).unlink(missing_ok=True)
    return {}


def _read_only_database(project):
    # Root writes through file modes, so as root the file is made immutable instead.
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(project / "drip.db")], capture_output=True)
        if made.returncode:
            pytest.skip(f"cannot make a read-only file as root here: {made.stderr!r}")
    else:
        (project / "drip.db").chmod(0o444)
    return {}


def _bad_env_value(project):
    (project / "bad.env").write_text("DRIP_MAX_ATTEMPTS=lots\nDRIP_HTTP_TIMEOUT=soon\n")
    return {"DRIP_MAX_ATTEMPTS": None, "DRIP_HTTP_TIMEOUT": None,
            "--env-file": str(project / "bad.env")}


def _no_campaigns_folder(project):
    return {"DRIP_CAMPAIGNS_DIR": str(project / "no-such-folder")}


def _template_syntax_error(project):
    (project / "templates/emails/welcome/hello.html").write_text("<p>Hi {% if %}</p>\n")
    return {}


def _unknown_provider(project):
    return {"DRIP_PROVIDER": "carrier-pigeon"}


def _unknown_subscriber(project):
    return {"{who}": "ghost@example.com", "{delivery}": "9999"}


def _output_folder_unusable(project):
    # A "folder" that is a file: nothing can be made under it, not even by root.
    return {"{out}": str(project / "campaigns" / "course.toml")}


# scenario: (set up, the commands that must fail, what their message must say)
SCENARIOS = {
    "missing database": (_missing_database, STORE, "no database at {db}"),
    "corrupt database": (_corrupt_database, STORE | {("migrate",)}, "{db}"),
    "read-only database": (_read_only_database, WRITES, "attempt to write a readonly database"),
    "bad .env value": (_bad_env_value, SETTINGS, "DRIP_MAX_ATTEMPTS"),
    "campaigns folder missing": (_no_campaigns_folder, CAMPAIGNS, "no-such-folder"),
    "template syntax error": (_template_syntax_error, {("send",), ("preview",), ("check",)},
                              "hello.html"),
    "unknown provider": (_unknown_provider, SETTINGS, "DRIP_PROVIDER"),
    "output folder unusable": (_output_folder_unusable,
                               {("subscribers", "export"), ("report",), ("guide", "build"),
                                ("preview",), ("backup",), ("init",)}, "course.toml"),
    "unknown subscriber": (_unknown_subscriber,
                           {("subscribers", n) for n in ("show", "unsubscribe", "pause", "resume",
                                                         "confirm")} | {("resolve",), ("why",)},
                           "ghost@example.com|9999"),
}


@pytest.fixture
def busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _seed(env):
    from sender.config import Settings
    from sender.drip import Drip
    drip = Drip(Settings.from_env(env))
    try:
        subscribers.add_subscriber(drip, "ana@example.com", now=at("2026-03-02T17:00Z"),
                                   confirmed=True)
        folder = Path(env["DRIP_CAMPAIGNS_DIR"]).parent / "broadcasts"   # for `drip broadcast`
        folder.mkdir(exist_ok=True)
        (folder / "2026-03-09-walk.md").write_text('+++\nsubject = "Walk"\n+++\nHi there.\n')
        return next(iter(drip.store.deliveries())).id
    finally:
        drip.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_command_on_bad_input_ends_in_a_message_and_exit_1_or_2(
        scenario, tmp_path, monkeypatch, busy_port):
    set_up, must_fail, says = SCENARIOS[scenario]
    failing, problems = set(), []
    for path in sorted(ARGS):
        root = tmp_path / "-".join(path)
        project = root / "project"
        shutil.copytree(FIXTURES / "project", project)
        (root / "people.csv").write_text("email,name\nbob@example.com,Bob\n")
        (project / "templates" / "guide").mkdir()
        (project / "templates" / "guide" / "guide.html").write_text(TINY_GUIDE)
        env = base_env(project, DRIP_SEND_WINDOW="always")
        delivery = _seed(env)
        changes = set_up(project)
        env.update({k: v for k, v in changes.items() if not k.startswith(("{", "-"))})
        fill = {"{tmp}": str(root), "{out}": str(root), "{who}": "ana@example.com",
                "{delivery}": str(delivery),
                "{busy_port}": str(busy_port), **{k: v for k, v in changes.items() if k[0] == "{"}}
        argv = list(path) + [_fill(a, fill) for a in ARGS[path]]
        if "--env-file" in changes:
            argv = ["--env-file", changes["--env-file"], *argv]
        monkeypatch.chdir(project)
        try:        # a password on stdin for `admin set-password`; the others ignore it
            result = invoke(argv, env, input="a long enough password\n")
        finally:
            if scenario == "read-only database" and os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(project / "drip.db")], check=False)
        shown = f"drip {' '.join(argv)} -> {result.exit_code}: {result.output[-800:]}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problems.append(f"{shown} raised {result.exception!r}")
            continue
        if "Traceback" in result.output or result.exit_code not in (0, 1, 2):
            problems.append(shown)
            continue
        if any(internal in result.output for internal in PYTHON_INTERNALS):
            problems.append(f"{shown} speaks Python, not the coach's language")
        if result.exit_code:
            failing.add(path)
            expected = says.replace("{db}", str(project / "drip.db"))
            flat = " ".join(result.output.split())
            if path in must_fail and not any(e in flat for e in expected.split("|")):
                problems.append(f"{shown} does not say {expected!r}")
    missed = sorted(must_fail - failing)
    assert not problems, "\n\n".join(problems)
    assert not missed, f"{scenario}: these should have failed: {missed}"


def _fill(arg, fill):
    for key, value in fill.items():
        arg = arg.replace(key, value)
    return arg


# --- 5. --json ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,rule", [("image-without-alt", "image-without-alt"),
                                       ("no-unsubscribe-html", "unsubscribe-link"),
                                       ("template-syntax", "template-syntax"),
                                       ("bad-campaign", "campaign-file")])
def test_check_json_lists_file_line_rule_and_message(name, rule, project, monkeypatch):
    shutil.copytree(FIXTURES / "broken" / name, project, dirs_exist_ok=True)
    expected = [line for line in (project / "expected.txt").read_text().splitlines() if line]
    (project / "expected.txt").unlink()
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["check", "--json"], env=base_env(project))
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)
    assert problems and all(set(p) == {"file", "line", "rule", "message"} for p in problems)
    assert rule in {p["rule"] for p in problems}
    shown = [f"{p['file']}:{p['line']}: {p['message']}" if p["line"] else
             f"{p['file']}: {p['message']}" for p in problems]
    for line in expected:
        assert any(line in s for s in shown), f"{line!r} not in {shown}"


def test_check_json_is_an_empty_list_when_all_is_well(project, monkeypatch):
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["check", "--json"], env=base_env(project))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_commands_that_change_one_subscriber_print_it_and_what_changed(run, drip):
    added = json.loads(run("subscribers", "add", "ana@example.com", "--name", "Ana",
                           "--now", NOW, "--json").output)
    assert added["status"] == "pending" and added["created"] is True
    assert added["changed"]["status"] == {"from": None, "to": "pending"}

    def act(name, *extra, when=NOW):
        result = run("subscribers", name, "ana@example.com", "--now", when, "--json", *extra)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    confirmed = act("confirm")
    assert confirmed["status"] == "active"
    assert confirmed["changed"]["status"] == {"from": "pending", "to": "active"}
    assert confirmed["changed"]["consent.confirmed_at"] == {"from": None, "to": "2026-03-02T18:00:00Z"}
    paused = act("pause", when="2026-03-03T18:00Z")
    assert paused["status"] == "paused" and paused["paused_at"] == "2026-03-03T18:00:00Z"
    assert paused["changed"]["status"] == {"from": "active", "to": "paused"}
    resumed = act("resume", when="2026-03-04T18:00Z")
    assert resumed["changed"]["status"] == {"from": "paused", "to": "active"}
    gone = act("unsubscribe", when="2026-03-05T18:00Z")
    assert gone["status"] == "unsubscribed" and gone["cancelled"] == 3
    assert gone["changed"]["status"] == {"from": "active", "to": "unsubscribed"}
    stored = drip.store.get_subscriber(email="ana@example.com")
    assert stored.status == "unsubscribed"
    assert {d.state for d in drip.store.deliveries(subscriber_id=stored.id)} == {"cancelled"}
    nothing = run("subscribers", "pause", "ana@example.com", "--json")
    assert nothing.exit_code == 1 and "nothing to pause" in nothing.output

    updated = json.loads(run("subscribers", "add", "ana@example.com", "--name", "Ana Lima",
                             "--now", NOW, "--json").output)
    assert updated["created"] is False and updated["changed"] == {
        "name": {"from": "Ana", "to": "Ana Lima"}}


def test_guide_build_json_names_what_it_wrote(project, monkeypatch):
    (project / "templates/guide").mkdir()
    (project / "templates/guide/guide.html").write_text(TINY_GUIDE)
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["guide", "build", "--output", "out", "--json"],
                                env=base_env(project))
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert built["pages"] == len(PdfReader(project / "out/guide.pdf").pages) == 3
    written = {item["path"]: item["bytes"] for item in built["written"]}
    assert written == {str(project / "out" / name): (project / "out" / name).stat().st_size
                       for name in ("guide.html", "guide.pdf")}


# --- 6. backups and upgrades --------------------------------------------------------------
def test_a_backup_restores_and_sends_on_where_it_stopped(run, drip, project, tmp_path):
    assert run("subscribers", "add", "ana@example.com", "--confirmed", "--now",
               "2026-03-02T17:00Z").exit_code == 0
    assert run("send", "--now", "2026-03-02T17:00Z").exit_code == 0        # the welcome email
    before = outbox(project)
    assert len(before) == 1 and before[0][0].startswith("welcome.")
    copy = tmp_path / "backups" / "drip-2026-03-02.db"
    copy.parent.mkdir()
    made = run("backup", str(copy))
    assert made.exit_code == 0, made.output
    assert str(copy) in made.output

    refused = run("backup", str(copy))
    assert refused.exit_code == 1 and "--force" in refused.output and str(copy) in refused.output
    assert run("backup", str(copy), "--force").exit_code == 0

    # Disaster: the database is gone. Restore by copying the backup into place.
    drip.close()
    for name in ("drip.db", "drip.db-wal", "drip.db-shm"):
        (project / name).unlink(missing_ok=True)
    shutil.copyfile(copy, project / "drip.db")

    sent = run("send", "--now", "2026-03-05T17:00Z", "--json")           # course/one is due
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.output)["sent"] == 1
    again = json.loads(run("send", "--now", "2026-03-05T17:00Z", "--json").output)
    assert again["sent"] == 0
    after = outbox(project)
    assert len(after) == 2 and before[0] in after, "the welcome email was not sent again"
    (new,) = [item for item in after if item not in before]
    assert new[0].startswith("course.") and new[1] != before[0][1]
    conn = sqlite3.connect(project / "drip.db")
    states = dict(conn.execute("SELECT step, state FROM deliveries").fetchall())
    conn.close()
    assert states == {"hello": "sent", "one": "sent", "two": "scheduled"}


def test_a_backup_taken_during_a_write_is_consistent(run, drip, project, tmp_path):
    assert run("subscribers", "add", "ana@example.com", "--confirmed", "--now", NOW).exit_code == 0
    writer = sqlite3.connect(project / "drip.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE subscribers SET name = 'half-written'")
    try:
        made = run("backup", str(tmp_path / "copy.db"))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert made.exit_code == 0, made.output
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT email, name FROM subscribers").fetchall() == [("ana@example.com", "")]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",), "one self-contained file"
    conn.close()


def test_backup_of_postgresql_says_to_use_pg_dump(run, tmp_path):
    url = "postgresql://coach:s3cret-pw@127.0.0.1:1/drip"
    result = run("backup", str(tmp_path / "x.db"), extra_env={"DRIP_DATABASE": url})
    assert result.exit_code == 1
    assert "pg_dump" in result.output and "s3cret-pw" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_env_file_paths_are_relative_to_the_env_files_folder(tmp_path, project, monkeypatch,
                                                              restore_environ):
    """`drip --env-file ../shop/.env status` from another folder uses that project's database,
    campaigns and templates (relative settings and defaults are relative to the file)."""
    env = base_env(project)
    settings_file = project / ".env"
    settings_file.write_text("".join(
        f"{name}={value}\n" for name, value in env.items()
        if name not in ("DRIP_DATABASE", "DRIP_CAMPAIGNS_DIR", "DRIP_TEMPLATES_DIR",
                        "DRIP_OUTBOX_DIR")) + "DRIP_CAMPAIGNS_DIR=campaigns\n")
    monkeypatch.chdir(project)
    assert invoke(["migrate"], {}).exit_code == 0          # makes project/drip.db
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in env:
        monkeypatch.delenv(name, raising=False)
    clean = dict(os.environ)

    def fresh(args):           # each command a new process: nothing loaded by the last one
        os.environ.clear()
        os.environ.update(clean)
        return invoke(args, {})

    added = fresh(["--env-file", "../project/.env", "subscribers", "add", "ana@example.com",
                   "--confirmed"])
    assert added.exit_code == 0, added.output
    status = fresh(["--env-file", str(settings_file), "status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["subscribers"] == {"active": 1}
    assert list(elsewhere.iterdir()) == []
    assert (project / "drip.db").exists()


def test_no_settings_file_says_where_it_looked_and_does_not_send_her_to_init(
        tmp_path, monkeypatch, restore_environ):
    from sender.config import SETTINGS

    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.chdir(tmp_path)
    result = invoke(["status"], {})
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"No settings file was found at {tmp_path / '.env'}" in text
    assert "run drip in its folder" in text and "--env-file" in text


def test_a_huge_field_is_refused_by_every_way_in_alike(run, drip):
    """The import refuses a field over 1,000 characters; `drip subscribers add` must too (the
    same rule for the same value, however it arrives), and nothing is stored."""
    result = run("subscribers", "add", "big@example.com", "--field", "bio=" + "x" * 100_000,
                 "--confirmed")
    assert result.exit_code == 1 and "longer than 1000 characters" in result.output
    assert drip.store.get_subscriber(email="big@example.com") is None
