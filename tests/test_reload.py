"""A running worker picks up edited campaign and template files without a restart: a new
campaign, an edited subject, and a broken edit (refused, logged with file and line, the last
good version kept). The loop runs with a passed-in clock; the test acts between its ticks."""

from __future__ import annotations

import email
import logging
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email import policy

from sender import subscribers
from sender.backup import migrate_database
from sender.config import Settings
from sender.drip import Drip
from sender.worker import run_worker
from tests.conftest import REPO, at
from tests.test_worker import wait_for

START = at("2026-03-02T18:00Z")   # a Monday, 10:00 in Los Angeles


def outbox(project):
    """(subject, to) of every .eml in the outbox, oldest first."""
    paths = sorted((project / "outbox").rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns) \
        if (project / "outbox").exists() else []
    found = []
    for path in paths:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        found.append((str(message["Subject"]), message["To"].addresses[0].addr_spec))
    return found


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


class Ticks:
    """Drives ``run_worker``: ``clock`` gives the time; after each tick the next action runs
    (it may edit files and move the clock); the loop stops after the last one."""

    def __init__(self, now, actions):
        self.now, self.actions, self.reports = now, list(actions), []
        self.stop = threading.Event()

    def clock(self):
        return self.now

    def on_report(self, report):
        self.reports.append(report)
        if not self.actions:
            self.stop.set()
            return
        self.actions.pop(0)(self)


def run(drip, ticks):
    run_worker(drip, clock=ticks.clock, stop=ticks.stop, interval=0.01, on_report=ticks.on_report)
    return ticks.reports


def test_an_edited_subject_goes_out_and_a_broken_edit_is_refused(drip, project, reload_log):
    course = project / "campaigns" / "course.toml"
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=START, confirmed=True)

    def revise_subjects(t):
        edit(course, 'subject = "Lesson one"', 'subject = "Lesson one, revised"')
        edit(course, 'subject = "Lesson two"', 'subject = "Lesson two, revised"')
        t.now = START + timedelta(days=3, hours=1)          # course/one is due

    def break_the_file(t):
        edit(course, 'subject = "Lesson two, revised"', 'subject = "Lesson two, broken')
        t.now = START + timedelta(days=10, hours=1)         # course/two is due

    run(drip, Ticks(START, [revise_subjects, break_the_file]))
    assert outbox(project) == [("Welcome, Ana", "ana@example.com"),
                               ("Lesson one, revised", "ana@example.com"),
                               ("Lesson two, revised", "ana@example.com")]
    assert {d.state for d in drip.store.deliveries(campaign="course")} == {"sent"}
    messages = [r.getMessage() for r in reload_log]
    assert any("campaign edited: course" in m for m in messages), messages
    [refused] = [r for r in reload_log if r.levelno == logging.ERROR]
    line = course.read_text().splitlines().index('subject = "Lesson two, broken') + 1
    assert str(course) in refused.getMessage() and f"line {line}" in refused.getMessage()


def test_a_broken_template_is_refused_and_the_last_good_one_sent(drip, project, reload_log):
    body = project / "templates" / "emails" / "course" / "one.html"
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=START, confirmed=True)

    def break_the_template(t):
        body.write_text("<p>Hello</p>\n{% if subscriber.name %}\n<p>never closed</p>\n")
        t.now = START + timedelta(days=3, hours=1)

    run(drip, Ticks(START, [break_the_template]))
    sent = outbox(project)
    assert [s for s, _ in sent] == ["Welcome, Ana", "Lesson one"]
    [eml] = [p for p in (project / "outbox").rglob("*.eml") if b"Lesson one" in p.read_bytes()]
    html = email.message_from_bytes(eml.read_bytes(), policy=policy.default) \
        .get_body(("html",)).get_content()
    assert "never closed" not in html and "Hi Ana, from Coach Example." in html
    [refused] = [r for r in reload_log if r.levelno == logging.ERROR]
    assert "emails/course/one.html, line" in refused.getMessage()


def test_a_new_campaign_entered_by_a_tag_is_sent(project, make_drip, env, reload_log):
    """A campaign file added while the worker runs: people tagged from then on (by another
    process, such as `drip subscribers add --tag`) are enrolled, and the worker sends its
    emails instead of cancelling them as belonging to no campaign."""
    drip = make_drip({**env, "DRIP_MIN_GAP": "0"})
    subscribers.add_subscriber(drip, "bo@example.com", name="Bo", now=START, confirmed=True)

    def add_campaign(t):
        (project / "templates" / "emails" / "vip").mkdir()
        (project / "templates" / "emails" / "vip" / "hello.html").write_text(
            "<p>Hi {{ subscriber.first_name }}, you are a VIP now.</p>\n")
        (project / "campaigns" / "vip.toml").write_text(
            'window = "always"\n\n[campaign]\nname = "VIP"\n\n[entry]\non = "tag"\n'
            'tags = ["vip"]\n\n[[steps]]\nid = "hello"\ntemplate = "vip/hello"\n'
            'subject = "You are a VIP, {{ subscriber.first_name }}"\ndelay = "0"\n')
        t.now = START + timedelta(days=1)
        other = make_drip(env)       # what another `drip` command sees: the files as they are
        subscribers.add_subscriber(other, "bo@example.com", tags=["vip"], now=t.now)
        subscribers.add_subscriber(other, "cy@example.com", name="Cy", tags=["vip"], now=t.now,
                                   confirmed=True)

    run(drip, Ticks(START, [add_campaign]))
    vip = sorted((to, s) for s, to in outbox(project) if s.startswith("You are a VIP"))
    assert vip == [("bo@example.com", "You are a VIP, Bo"), ("cy@example.com", "You are a VIP, Cy")]
    assert {d.state for d in drip.store.deliveries(campaign="vip")} == {"sent"}
    assert any("campaign added: vip" in r.getMessage() for r in reload_log)


def test_reloader_checks_at_most_once_per_interval(env, make_drip, project):
    from sender.reloader import Reloader

    drip = make_drip(env)
    moments = [0.0]
    reloader = Reloader(drip.settings, clock=lambda: moments[0], every=1.0)
    first = reloader.current()
    edit(project / "campaigns" / "course.toml", '"Lesson one"', '"Lesson 1"')
    moments[0] = 0.5
    assert reloader.current() is first                  # not looked at again yet
    moments[0] = 1.5
    changed = reloader.current()
    assert changed is not first and changed.campaigns.get("course").steps[0].subject == "Lesson 1"
    moments[0] = 3.0
    assert reloader.current() is changed                # nothing changed since


def test_fingerprint_sees_names_sizes_and_times(project):
    from sender.reloader import fingerprint

    folder = project / "campaigns"
    before = fingerprint(folder)
    assert fingerprint(folder) == before
    (folder / "extra.toml").write_text("x")
    assert fingerprint(folder) != before


def test_worker_process_picks_up_an_edited_subject(env, make_drip, project):
    """`drip worker` as a real process: an edit to a campaign file reaches the next email;
    a broken edit is refused with the file and line on stderr, and sending carries on."""
    welcome = project / "campaigns" / "welcome.toml"
    environ = {**env, "DRIP_MIN_GAP": "0", "PATH": "/usr/bin:/bin"}
    migrate_database(environ["DRIP_DATABASE"])     # the worker never makes the database itself
    proc = subprocess.Popen([sys.executable, "-m", "sender", "worker",
                             "--interval", "0.2"], env=environ, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    drip = make_drip(environ)

    def sign_up(address):
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        subscribers.add_subscriber(drip, address, name="Pat", now=now, confirmed=True)

    def logged(text):
        return wait_for(lambda: any(text in line for line in err))

    try:
        sign_up("p0@example.com")
        assert wait_for(lambda: len(outbox(project)) == 1)
        edit(welcome, 'subject = "Welcome{%', 'subject = "Hello again{%')
        assert logged("campaign edited: welcome"), err
        sign_up("p1@example.com")
        assert wait_for(lambda: len(outbox(project)) == 2)
        welcome.write_text(welcome.read_text() + "\n[[steps]\n")
        broken_line = len(welcome.read_text().rstrip("\n").splitlines())
        assert logged(f"line {broken_line}"), err
        sign_up("p2@example.com")
        assert wait_for(lambda: len(outbox(project)) == 3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        reader.join(timeout=10)
    finally:
        proc.kill()
        proc.wait(timeout=20)
        proc.stderr.close()
        proc.stdout.close()
    assert proc.returncode == 0, err
    assert [s for s, _ in outbox(project)] == ["Welcome, Pat", "Hello again, Pat", "Hello again, Pat"]
    [refused] = [line for line in err if f"line {broken_line}" in line]
    assert str(welcome) in refused and "ERROR" in refused
    assert "drip worker: stopped" in "".join(err)


def test_a_worker_started_on_a_broken_file_sends_the_rest_and_picks_up_the_fix(drip, env, project):
    """Nothing good to fall back on at start: the broken campaign file is left out and logged
    with its file, every other campaign's mail goes at once, and the fixed file is loaded."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    course = project / "campaigns" / "course.toml"
    good = course.read_text()
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=START, confirmed=True)
    course.write_text(good.replace("[[steps]]", "[[steps]", 1))
    stop = threading.Event()
    loaded = []

    def work():      # in its own thread, with its own Drip (a SQLite connection stays in one)
        worker_drip = Drip(Settings.from_env(env))
        try:
            run_worker(worker_drip, clock=lambda: START, stop=stop, interval=0.02,
                       on_report=lambda report: loaded.append(
                           worker_drip.campaigns.get("course") is not None))
        finally:
            worker_drip.close()

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("drip.reload")
    logger.addHandler(handler)
    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert wait_for(lambda: any(str(course) in m for m in records)), records
        assert wait_for(lambda: outbox(project) == [("Welcome, Ana", "ana@example.com")])
        assert loaded and not loaded[-1]
        course.write_text(good)
        assert wait_for(lambda: loaded and loaded[-1]), records
        assert [d.state for d in drip.store.deliveries(campaign="course")] != [] and all(
            d.state == "scheduled" for d in drip.store.deliveries(campaign="course"))
    finally:
        stop.set()
        worker.join(timeout=20)
        logger.removeHandler(handler)
    assert not worker.is_alive()


def test_one_broken_file_does_not_hold_back_the_other_edits(env, project, reload_log):
    """A broken campaign file keeps its last good version while an edit made to another
    campaign at the same time goes live; every problem is logged, not only the first."""
    from sender.config import Settings
    from sender.reloader import Reloader

    reloader = Reloader(Settings.from_env(env), every=None)
    course = project / "campaigns" / "course.toml"
    welcome = project / "campaigns" / "welcome.toml"
    good_course = reloader.current().campaigns.get("course")
    course.write_text(course.read_text().replace("[[steps]]", "[[steps]", 1))
    edit(welcome, 'subject = "Welcome{%', 'subject = "Hello again{%')
    loaded = reloader.current()
    assert loaded.campaigns.get("welcome").steps[0].subject.startswith("Hello again")
    assert loaded.campaigns.get("course") == good_course          # its last good version
    assert loaded.campaigns.broken == {}                          # nothing waits on it
    errors = [r.getMessage() for r in reload_log if r.levelno >= logging.ERROR]
    assert any(str(course) in m and "line" in m for m in errors), errors
