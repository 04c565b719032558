"""The bulk import on both engines: batches that grow, duplicates across batches, people
already on the list left alone, rejected rows reported in line order, and --enroll in bulk
giving each person the schedule `enroll` gives one person."""

from __future__ import annotations

import pytest

from sender import lists, sequence
from tests.lists.conftest import NOW, errors, stored


@pytest.fixture(params=["sqlite", "postgres"])
def engine_drip(request, env, make_drip):
    if request.param == "postgres":
        env = {**env, "DRIP_DATABASE": request.getfixturevalue("postgres_url")}
    return make_drip(env)


def write(tmp_path, lines, name="list.csv"):
    path = tmp_path / name
    path.write_text("email,name,timezone,tags\n" + "".join(line + "\n" for line in lines))
    return path


def test_a_big_file_goes_in_growing_batches_and_again_changes_nothing(engine_drip, tmp_path):
    count = lists.BATCH * 3 + 5           # batches of 1000, 2000, then the last 5 rows
    rows = [f"p{n}@example.com,Person {n},,a" for n in range(count)]
    rows.insert(1500, "p7@example.com,Again,,b")          # line 1502: in the second batch
    rows.insert(10, "not an address,X,,")                  # line 12
    rows.insert(3004, "p3001@example.com,Twice,,")          # line 3006, right after its first
    seen = []
    report = lists.import_csv(engine_drip, write(tmp_path, rows), consent="paper form", now=NOW,
                              on_error=seen.append)
    assert (report.rows, report.imported, report.existing, report.rejected) == (
        count + 3, count, 0, 3)
    assert errors(report) == [
        (12, "'not an address' is not an email address (it contains spaces): a valid email "
             "address looks like name@example.com"),
        (1503, "p7@example.com is a duplicate of line 9"),
        (3006, "p3001@example.com is a duplicate of line 3005")]
    assert [p.line for p in seen] == [12, 1503, 3006]          # reported in line order
    people = stored(engine_drip)
    assert len(people) == count and people["p7@example.com"]["name"] == "Person 7"
    assert people["p7@example.com"]["tags"] == ["a"]

    again = lists.import_csv(engine_drip, write(tmp_path, rows), consent="other", now=NOW)
    assert (again.imported, again.existing, again.rejected) == (0, count, 3)
    assert stored(engine_drip) == people
    dry = lists.import_csv(engine_drip, write(tmp_path, rows + ["new@example.com,New,,"]),
                           consent="other", now=NOW, dry_run=True)
    assert (dry.imported, dry.existing) == (1, count)
    assert stored(engine_drip) == people


def test_enrolling_in_bulk_schedules_what_enrolling_one_by_one_does(engine_drip, tmp_path):
    drip = engine_drip
    zones = ["", "Europe/Madrid", "America/New_York", "Asia/Kolkata"]
    rows = [f"e{n}@example.com,E {n},{zones[n % 4]},{'pp' if n % 3 else 'x'}" for n in range(40)]
    lists.import_csv(drip, write(tmp_path, rows[:10]), consent="form", now=NOW)  # on the list already
    report = lists.import_csv(drip, write(tmp_path, rows, "all.csv"), consent="form", now=NOW,
                              enroll_in=["course"])
    assert (report.imported, report.existing, report.enrolled) == (30, 10, 40)
    course = drip.campaigns.get("course")
    for person in drip.store.list_subscribers():
        [enrolment] = drip.store.enrollments(subscriber_id=person.id)
        assert enrolment.enrolled_at == NOW
        expected = sorted((step.id, due) for step, due in
                          sequence.planned_times(course, enrolment, person, drip.settings))
        assert sorted((d.step, d.due_at) for d in drip.store.deliveries(
            subscriber_id=person.id)) == expected
    # Again: nobody is enrolled twice and no row is added.
    before = sorted((d.subscriber_id, d.step, d.due_at) for d in drip.store.deliveries())
    again = lists.import_csv(drip, write(tmp_path, rows, "all.csv"), consent="form", now=NOW,
                             enroll_in=["course"])
    assert (again.imported, again.enrolled) == (0, 0)
    assert sorted((d.subscriber_id, d.step, d.due_at) for d in drip.store.deliveries()) == before


def test_an_import_with_enroll_runs_statements_per_batch_not_per_row(drip, tmp_path):
    rows = [f"s{n}@example.com,S {n},{'Europe/Madrid' if n % 2 else ''},pp" for n in range(3000)]
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    try:
        report = lists.import_csv(drip, write(tmp_path, rows), consent="form", now=NOW,
                                  enroll_in=["course"])
    finally:
        drip.store.conn.set_trace_callback(None)
    assert (report.imported, report.enrolled) == (3000, 3000)
    assert len(list(drip.store.deliveries())) == 3000 * 2
    # Two batches (1,000 and 2,000 rows): a few dozen look-ups, not some for each row, and
    # the emails written by the database from the enrolled ids (INSERT ... SELECT), never
    # row by row from Python. (The trace shows each row of an executemany as a statement.)
    lookups = [s for s in statements if s.startswith("SELECT") or "RETURNING" in s]
    assert len(lookups) < 60, len(lookups)
    assert not [s for s in statements if s.startswith("INSERT INTO deliveries") and " VALUES " in s]
