"""An import that runs out of room part-way: it says exactly which lines were saved and
which were not, and running the same import again adds only the rest.

The import commits in batches of ``lists.BATCH`` rows, so a full disk stops it between
two batches: everything before is saved, the batch that failed is not.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import timedelta

import pytest

from sender import lists
from tests.lists.conftest import NOW, stored


def people(prefix, count, *, bad_line=None):
    """A CSV with ``count`` rows (lines 2 to count + 1); ``bad_line`` holds an invalid address."""
    lines = ["email,name,notes"]
    for n in range(count):
        email = "not-an-address" if n + 2 == bad_line else f"{prefix}{n}@example.com"
        lines.append(f"{email},Person {n},{'note ' * 20}")
    return "\n".join(lines) + "\n"


def pages(conn):
    return conn.execute("PRAGMA page_count").fetchone()[0]


def test_a_full_database_stops_the_import_and_says_what_was_saved(drip, csv_file, do_import):
    conn = drip.store.conn
    # Measure what one batch takes, then leave room for about one and a half (the real
    # engine answers SQLITE_FULL once max_page_count is reached).
    before = pages(conn)
    warmup = do_import(csv_file(people("w", lists.BATCH), name="warmup.csv"), enroll_in=["course"])
    assert warmup.imported == lists.BATCH
    limit = conn.execute("PRAGMA max_page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages(conn) + (pages(conn) - before) * 3 // 2}")

    # Line 4 is rejected, so the first batch of 1,000 rows runs from line 2 to line 1002.
    path = csv_file(people("p", 3 * lists.BATCH, bad_line=4))
    with pytest.raises(lists.ImportStopped) as stop:
        do_import(path, enroll_in=["course"])

    message = str(stop.value)
    saved = sorted(e for e in stored(drip) if e.startswith("p"))
    expected = sorted(f"p{n}@example.com" for n in range(lists.BATCH + 1) if n != 2)
    assert saved == expected
    assert "line 1003" in message and "lines 2 to 1002" in message
    assert "1000 new subscribers were saved" in message
    assert "database or disk is full" in message
    assert "run the same import again" in message
    assert "nothing was changed" not in message
    report = stop.value.report
    assert (report.imported, report.enrolled, report.existing) == (1000, 1000, 0)
    assert report.errors[0].line == 4
    assert report.to_dict()["stopped"] == {
        "line": 1003, "saved_through_line": 1002, "reason": report.stopped["reason"],
        "message": message}
    # Only the saved people are enrolled: two course emails each, none for the rest.
    enrolled = {d.subscriber_id for d in drip.store.deliveries()}
    assert len(enrolled) == 2 * lists.BATCH
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # With room again, the same import adds only what was missing and leaves the rest as is.
    kept = {e: v for e, v in stored(drip).items() if e in expected}
    conn.execute(f"PRAGMA max_page_count = {limit}")
    again = do_import(path, enroll_in=["course"], now=NOW + timedelta(days=1))
    assert (again.imported, again.existing, again.rejected) == (1999, 1000, 1)
    assert again.enrolled == 1999
    after = stored(drip)
    assert {e: after[e] for e in expected} == kept
    assert sorted(e for e in after if e.startswith("p")) == sorted(
        f"p{n}@example.com" for n in range(3 * lists.BATCH) if n != 2)
    assert len(list(drip.store.enrollments())) == 4 * lists.BATCH - 1


def test_a_full_database_in_the_first_batch_saves_nothing_and_says_so(drip, csv_file,
                                                                        do_import):
    conn = drip.store.conn
    conn.execute(f"PRAGMA max_page_count = {pages(conn)}")
    with pytest.raises(lists.ImportStopped) as stop:
        do_import(csv_file(people("p", 200)))
    message = str(stop.value)
    assert "stopped at line 2" in message and "nothing was saved" in message
    assert stop.value.report.stopped["saved_through_line"] is None
    assert drip.store.subscriber_counts() == {}
    # A dry run writes nothing, so a full database does not stop it.
    conn.execute(f"PRAGMA max_page_count = {pages(conn)}")
    report = do_import(csv_file(people("p", 200)), dry_run=True)
    assert (report.imported, report.stopped) == (200, None)


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of 2 MiB (tmpfs), so SQLite meets a genuinely full disk."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


def count_rows(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0]
    finally:
        conn.close()


def test_cli_on_a_disk_that_fills_up(run, project, small_disk):
    db = small_disk / "drip.db"
    use = {"DRIP_DATABASE": str(db)}
    total = 20 * lists.BATCH
    (project / "list.csv").write_text(people("p", total), encoding="utf-8")
    command = ("subscribers", "import", "list.csv", "--consent", "paper form")
    assert run("migrate", extra_env=use).exit_code == 0          # the database, on that disk

    result = run(*command, "--json", extra_env=use)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    saved = count_rows(db)
    assert 0 < saved < total and saved % lists.BATCH == 0
    assert (data["imported"], data["stopped"]["line"]) == (saved, saved + 2)
    assert data["stopped"]["saved_through_line"] == saved + 1
    assert f"{saved} new subscribers were saved (lines 2 to {saved + 1})" in result.stderr
    assert f"stopped at line {saved + 2}" in result.stderr
    assert "Traceback" not in result.output

    # A dry run still reads and reports on the full disk.
    dry = run(*command, "--dry-run", extra_env=use)
    assert dry.exit_code == 0, dry.output
    assert f"{total} rows: {total - saved} would import, {saved} already on the list" in dry.stdout

    # Make room and run the same import again: only the rest is added.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run(*command, extra_env=use)
    assert again.exit_code == 0, again.output
    assert f"{total} rows: {total - saved} imported, {saved} already on the list" in again.stdout
    assert count_rows(db) == total
