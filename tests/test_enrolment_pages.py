"""Campaign edits reach enrolments a page at a time, and only the enrolments that need it.

Each enrolment stores the fingerprint of the campaign file it was planned against
(migration m011), so the first `drip send` after a big import examines nothing, an edit
reaches every enrolment across several pages, a run stopped between pages leaves no page
half-applied and the next run finishes the rest, and `drip plan` reads the same pages
without writing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3

import pytest

from sender import lists, plan, sequence
from sender.dispatch import send_due
from sender.store.migrations import migrate
from sender.store.schema import STEPS
from tests.conftest import at

NOW = at("2026-03-02T10:00Z")            # a Monday
LATER = at("2026-03-03T10:00Z")
PEOPLE = 7                                # with pages of 3: three pages, the last one short
NEW_STEP = ('\n[[steps]]\nid = "three"\ntemplate = "course/two"\nsubject = "Lesson three"\n'
            'delay = "2w"\n')


@pytest.fixture(params=["sqlite", "postgres"])
def engine_env(request, env):
    if request.param == "postgres":
        return {**env, "DRIP_DATABASE": request.getfixturevalue("postgres_url")}
    return env


@pytest.fixture
def imported(engine_env, make_drip, tmp_path):
    """PEOPLE subscribers imported with --enroll course; returns the Drip."""
    drip = make_drip(engine_env)
    path = tmp_path / "people.csv"
    path.write_text("email,name,timezone\n" + "".join(
        f"p{n}@example.com,Person {n},{'Europe/Madrid' if n % 2 else ''}\n"
        for n in range(PEOPLE)))
    report = lists.import_csv(drip, path, consent="paper form", now=NOW, enroll_in=["course"])
    assert (report.imported, report.enrolled) == (PEOPLE, PEOPLE)
    return drip


def fingerprints(drip):
    return [row["fingerprint"] for row in drip.store._x(
        "SELECT fingerprint FROM enrollments WHERE campaign = 'course' ORDER BY subscriber_id")]


def rows_of(drip, step):
    """{email: (state, due_at)} of every course row for ``step``."""
    people = {p.id: p.email for p in drip.store.list_subscribers()}
    return {people[d.subscriber_id]: (d.state, d.due_at)
            for d in drip.store.deliveries(campaign="course") if d.step == step}


def edited(engine_env, make_drip, project):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text() + NEW_STEP)
    return make_drip(engine_env)


def test_an_import_records_the_file_each_enrolment_was_planned_against(imported):
    course = imported.campaigns.get("course")
    assert fingerprints(imported) == [course.fingerprint()] * PEOPLE
    # Planned with the times `enroll` gives one person: two course rows each, by their zone.
    for person in imported.store.list_subscribers():
        [enrolment] = imported.store.enrollments(subscriber_id=person.id)
        expected = [(step.id, due) for step, due in
                    sequence.planned_times(course, enrolment, person, imported.settings)]
        got = sorted(((d.step, d.due_at) for d in imported.store.deliveries(
            subscriber_id=person.id, campaign="course")), key=lambda r: r[1])
        assert got == expected and all(d.state == "scheduled" for d in imported.store.deliveries(
            subscriber_id=person.id))


def test_the_first_send_after_an_import_examines_no_enrolment(env, make_drip, tmp_path):
    drip = make_drip(env)
    path = tmp_path / "many.csv"
    path.write_text("email\n" + "".join(f"m{n}@example.com\n" for n in range(300)))
    lists.import_csv(drip, path, consent="paper form", now=NOW, enroll_in=["course"])
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    try:
        assert sequence.campaign_changes(drip, LATER, apply=True) == []
        assert plan.pending_changes(drip, now=LATER) == []
        report = send_due(drip, now=LATER)
    finally:
        drip.store.conn.set_trace_callback(None)
    assert report.changes == 0 and report.sent == 0
    # No enrolment was read, and no subscriber's rows: a few statements, not hundreds.
    assert not [s for s in statements if "FROM enrollments" in s and "EXISTS" not in s]
    assert not [s for s in statements if s.startswith("SELECT * FROM deliveries WHERE subscriber_id")]
    assert len(statements) < 60, statements


def test_an_edit_reaches_every_enrolment_across_pages(imported, engine_env, make_drip, project):
    before = fingerprints(imported)
    drip = edited(engine_env, make_drip, project)
    new = drip.campaigns.get("course").fingerprint()
    assert new not in before

    preview = plan.pending_changes(drip, now=LATER)          # the default page size
    paged = sequence.campaign_changes(drip, LATER, apply=False, page=3)
    assert sorted((c["email"], c["action"]) for c in preview) == sorted(
        (f"p{n}@example.com", "add") for n in range(PEOPLE))
    assert len(paged) == PEOPLE and {c.step for c in paged} == {"three"}
    assert rows_of(drip, "three") == {} and fingerprints(drip) == before   # a dry run

    applied = sequence.campaign_changes(drip, LATER, apply=True, page=3)
    assert len(applied) == PEOPLE
    three = rows_of(drip, "three")
    assert sorted(three) == sorted(f"p{n}@example.com" for n in range(PEOPLE))
    assert all(state == "scheduled" and due > LATER for state, due in three.values())
    assert fingerprints(drip) == [new] * PEOPLE
    assert sequence.campaign_changes(drip, LATER, apply=True, page=3) == []


def _stop_on(drip, subscriber_id):
    """Make the database refuse the new step's row for one subscriber (a failure mid-run)."""
    if drip.store.dialect.chunk is None:      # PostgreSQL
        drip.store._x("CREATE FUNCTION stop_three() RETURNS trigger AS $$ BEGIN "
                      f"IF NEW.step = 'three' AND NEW.subscriber_id = {int(subscriber_id)} THEN "
                      "RAISE EXCEPTION 'the disk is failing'; END IF; RETURN NEW; END $$ "
                      "LANGUAGE plpgsql")
        drip.store._x("CREATE TRIGGER stop_three BEFORE INSERT ON deliveries FOR EACH ROW "
                      "EXECUTE FUNCTION stop_three()")
        return "DROP TRIGGER stop_three ON deliveries"
    drip.store._x("CREATE TRIGGER stop_three BEFORE INSERT ON deliveries WHEN NEW.step = 'three' "
                  f"AND NEW.subscriber_id = {int(subscriber_id)} "
                  "BEGIN SELECT RAISE(ABORT, 'the disk is failing'); END")
    return "DROP TRIGGER stop_three"


def test_a_run_stopped_between_pages_leaves_no_page_half_done(imported, engine_env, make_drip,
                                                               project):
    before = fingerprints(imported)
    drip = edited(engine_env, make_drip, project)
    new = drip.campaigns.get("course").fingerprint()
    ids = sorted(p.id for p in drip.store.list_subscribers())
    undo = _stop_on(drip, ids[4])             # the second of the second page

    with pytest.raises(Exception, match="the disk is failing"):
        sequence.campaign_changes(drip, LATER, apply=True, page=3)
    # The first page is done and recorded; the second is not touched at all (its first
    # subscriber's row was rolled back with the rest), nor the third.
    done = {p.email for p in drip.store.list_subscribers() if p.id in ids[:3]}
    assert set(rows_of(drip, "three")) == done
    assert fingerprints(drip) == [new] * 3 + before[3:]

    drip.store._x(undo)
    first_page = rows_of(drip, "three")
    rest = sequence.campaign_changes(drip, LATER, apply=True, page=3)
    assert sorted(c.subscriber_id for c in rest) == ids[3:]       # only what was left
    assert {e: v for e, v in rows_of(drip, "three").items() if e in done} == first_page
    assert len(rows_of(drip, "three")) == PEOPLE
    assert fingerprints(drip) == [new] * PEOPLE


def test_existing_enrolments_take_their_campaigns_recorded_fingerprint(tmp_path, env, make_drip):
    """Migration m011: an enrolment made before it follows the fingerprint recorded for its
    campaign; without one recorded it is checked on the next run."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=[name for name, _ in STEPS].index("m011_enrolment_fingerprints"))
    for n, email in enumerate(("ana@example.com", "bo@example.com"), start=1):
        conn.execute("INSERT INTO subscribers (uid, email, status, created_at, updated_at) VALUES "
                     f"('u{n}', '{email}', 'active', '2026-03-01T00:00:00Z', "
                     "'2026-03-01T00:00:00Z')")
    conn.execute("INSERT INTO enrollments (subscriber_id, campaign, enrolled_at) VALUES "
                 "(1, 'course', '2026-03-01T00:00:00Z'), (2, 'welcome', '2026-03-01T00:00:00Z')")
    conn.execute("INSERT INTO meta VALUES ('campaign-fingerprint:course', 'abc123')")
    conn.close()

    drip = make_drip({**env, "DRIP_DATABASE": str(path)})
    stored = {row["campaign"]: row["fingerprint"] for row in drip.store._x(
        "SELECT campaign, fingerprint FROM enrollments")}
    assert stored == {"course": "abc123", "welcome": None}
    welcome = drip.campaigns.get("welcome").fingerprint()
    assert drip.store.any_enrollment_to_check("welcome", welcome)
    drip.store.set_meta("campaign-fingerprint:course", drip.campaigns.get("course").fingerprint())
    drip.store.set_enrollment_fingerprints("course", [1], drip.campaigns.get("course").fingerprint())
    sequence.campaign_changes(drip, NOW, apply=True)
    assert {row["fingerprint"] for row in drip.store._x("SELECT fingerprint FROM enrollments")} \
        == {drip.campaigns.get("course").fingerprint(), welcome}


def test_the_checks_seek_in_indexes_and_the_pages_need_no_sort(drip):
    """SQLite: the look for enrolments to check is three index seeks (no scan of a million
    enrolments on every tick), and a page follows the primary key (no sort of everything
    left for every page)."""
    store, statements = drip.store, []
    store.conn.set_trace_callback(statements.append)
    try:
        store.any_enrollment_to_check("course", "abc")
        store.enrollments_to_check("course", "abc", after_id=10, limit=2000)
    finally:
        store.conn.set_trace_callback(None)
    seek, page = ([row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
                  for sql in statements)
    assert [step for step in seek if step.startswith(("SEARCH", "SCAN ")) and "CONSTANT" not in step] == [
        "SEARCH enrollments USING COVERING INDEX enrollments_fingerprint (campaign=? AND fingerprint=?)",
        "SEARCH enrollments USING COVERING INDEX enrollments_fingerprint (campaign=? AND fingerprint<?)",
        "SEARCH enrollments USING COVERING INDEX enrollments_fingerprint (campaign=? AND fingerprint>?)"]
    assert page == ["SEARCH enrollments USING INDEX sqlite_autoindex_enrollments_1 (subscriber_id>?)"]
