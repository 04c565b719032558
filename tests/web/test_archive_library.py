"""``sender.archive``, the library under /archive: it reads the broadcasts table and nothing
about anyone (every SQL statement it runs is recorded on the real SQLite connection), and it
renders each broadcast from the copy stored when it went, for nobody in particular."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sender.archive import Archive
from sender.errors import TemplateError
from tests.broadcast_support import write_broadcast
from tests.conftest import at
from tests.web.archive_support import (
    FIRST,
    NEUTRAL_LINE,
    PERSONAL,
    PRIVATE,
    SENTINEL,
    SUBJECTS,
    add_people,
    personal_values,
    send,
    send_all,
)


def test_the_archive_reads_only_the_broadcasts_table(drip, project):
    send_all(drip, project)
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    archive = Archive(drip.settings)
    entries = archive.entries(drip.store, drip.templates)
    assert [e.name for e in entries] == [PERSONAL, FIRST]
    assert archive.entry(drip.store, drip.templates, PRIVATE) is None
    entry = archive.entry(drip.store, drip.templates, PERSONAL)
    body = archive.body(drip.templates, entry)
    feed = archive.feed(drip.store, drip.templates, base_url="https://mail.example.com",
                        title="Letters")
    drip.store.conn.set_trace_callback(None)
    assert statements
    for sql in statements:
        words = sql.lower()
        assert "from broadcasts" in words, sql
        assert "subscribers" not in words and "deliveries" not in words, sql
    text = body + feed.decode("utf-8")
    assert NEUTRAL_LINE in body and "Hi there," in body
    for value in personal_values(drip):
        assert value not in text


def test_the_subject_and_preheader_render_for_nobody_too(drip, project):
    add_people(drip)
    write_broadcast(project, FIRST, subject="For {{ subscriber.first_name or 'you' }}",
                    preheader="{{ subscriber.email or 'a letter' }} from {{ coach.name }}")
    send(drip, FIRST, at("2026-03-02T17:00Z"))
    [entry] = Archive(drip.settings).entries(drip.store, drip.templates)
    assert (entry.subject, entry.preheader) == (
        "For you", f"a letter from {drip.settings.coach.name}")


def test_a_body_that_cannot_render_for_nobody_is_an_error_naming_it(drip, project):
    add_people(drip)
    # Sent only to readers who gave a stage: for them it renders; for nobody it cannot.
    write_broadcast(project, FIRST, subject=SUBJECTS[FIRST], segment="field:stage=" + SENTINEL["stage"],
                    body='Hi {{ subscriber.fields["stage"] }}, a letter for those who said.')
    send(drip, FIRST, at("2026-03-02T17:00Z"))
    archive = Archive(drip.settings)
    [entry] = archive.entries(drip.store, drip.templates)
    with pytest.raises(TemplateError, match=f"broadcast {FIRST}"):
        archive.body(drip.templates, entry)
    feed = archive.feed(drip.store, drip.templates, base_url="https://m.example.com", title="x")
    assert SUBJECTS[FIRST].encode() in feed and b"<content" not in feed   # listed, no body


@pytest.mark.parametrize("name", ["..", "../drip", "a/b", "A", "a.md", "", "-a", "a" * 300, "é"])
def test_odd_names_are_never_looked_up(drip, name):
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    assert Archive(drip.settings).entry(drip.store, drip.templates, name) is None
    drip.store.conn.set_trace_callback(None)
    assert statements == []


def test_a_small_cache_still_gives_every_body_and_renders_again_only_what_it_dropped(drip, project):
    send_all(drip, project)
    archive = Archive(drip.settings, kept=1)
    feed = archive.feed(drip.store, drip.templates, base_url="https://m.example.com", title="x")
    assert feed.count(b"<content") == 2 and archive.renders == 2
    first = archive.entry(drip.store, drip.templates, FIRST)       # the one kept: no new render
    assert "The <em>first</em> letter." in archive.body(drip.templates, first)
    assert archive.renders == 2
    personal = archive.entry(drip.store, drip.templates, PERSONAL)  # dropped: rendered again
    assert NEUTRAL_LINE in archive.body(drip.templates, personal) and archive.renders == 3
    big = Archive(drip.settings)
    for _ in range(3):
        big.feed(drip.store, drip.templates, base_url="https://m.example.com", title="x")
    assert big.renders == 2


def test_the_shipped_broadcast_renders_for_the_archive_with_the_shipped_templates(
        shipped, make_drip):
    import shutil

    from tests.support import REPO, base_env

    shutil.copytree(REPO / "broadcasts", shipped / "broadcasts")
    drip = make_drip(base_env(shipped))
    add_people(drip)
    name = "2026-03-10-bellevue-workshop"        # the README's example
    send(drip, name, at("2026-03-09T17:00Z"))
    archive = Archive(drip.settings)
    [entry] = archive.entries(drip.store, drip.templates)
    body = archive.body(drip.templates, entry)
    assert entry.name == name and "Hi there," in body and 'class="button"' in body
    assert drip.settings.coach.name in body
    for value in personal_values(drip):
        assert value not in body


def test_a_local_time_broadcast_is_dated_by_its_local_day(drip, project):
    from sender import broadcast_runs as runs
    from sender import broadcasts
    from sender.dispatch import send_due
    from tests.broadcast_support import NINE_LOCAL, SCHEDULED_AT, ZONES, person

    person(drip, "chatham@example.com", timezone=ZONES["chatham"])
    person(drip, "la@example.com", timezone=ZONES["la"])
    write_broadcast(project, FIRST, subject=SUBJECTS[FIRST], when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, FIRST), now=SCHEDULED_AT)
    now = at("2026-03-09T12:00Z")
    while now <= at("2026-03-11T00:00Z"):
        send_due(drip, now=now)
        now += timedelta(minutes=15)
    [entry] = Archive(drip.settings).entries(drip.store, drip.templates)
    # It began at 09:00 at UTC+14, still 9 March in UTC and in Los Angeles (DRIP_TIMEZONE):
    # it is Tuesday's letter all the same.
    assert entry.sent_at == at("2026-03-09T19:00Z") and entry.day == date(2026, 3, 10)
    assert entry.updated >= NINE_LOCAL["la"]
