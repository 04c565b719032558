"""Backups and upgrades of the database: ``drip backup`` and ``drip migrate``.

A SQLite backup is taken with SQLite's online backup API, so it is consistent while
senders, workers and the web server keep writing: it holds what was committed when it
started, nothing half-written. It is written beside the target and renamed into place, so
an existing file is never left half-overwritten, and it is one self-contained file
(rollback-journal mode: no -wal or -shm file belongs to it). Restoring is copying it over
the database file while drip is stopped (see the README).

PostgreSQL has its own tools for this (``pg_dump`` and ``pg_restore``).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .config import setting_value
from .errors import DripError
from .store import SQLiteStore, open_store, sqlite_path


@dataclass
class Upgrade:
    database: str
    created: bool
    applied: list = field(default_factory=list)
    version: int = 0

    def to_dict(self):
        return {"database": self.database, "created": self.created, "applied": self.applied,
                "version": self.version}


@dataclass
class Backup:
    source: str
    target: str
    bytes: int
    version: int

    def to_dict(self):
        return {"source": self.source, "target": self.target, "bytes": self.bytes,
                "version": self.version}


def database_setting(environ=None):
    """DRIP_DATABASE from ``environ`` (default: the process environment), parsed as the
    settings table says (its default when empty), without reading any other setting:
    backing up or upgrading a database needs nothing else."""
    return setting_value("DRIP_DATABASE", environ)


def migrate_database(database):
    """Create the database if it is not there, apply every migration it lacks, and say
    which ran (the commands also migrate as they open it; this does it on purpose)."""
    path = sqlite_path(database)
    created = path is not None and path != ":memory:" and not Path(path).exists()
    store = open_store(database, create=True, migrate_schema=False)
    try:
        if isinstance(store, SQLiteStore):
            from .store.migrations import migrate
            try:
                applied = migrate(store.conn)
            except sqlite3.DatabaseError as exc:
                raise DripError(f"cannot upgrade database {store.path}: {exc}; nothing was "
                                "changed by the migration that failed") from None
            name = str(Path(store.path).resolve()) if path != ":memory:" else path
        else:
            from .store.postgres import masked, migrate
            applied = migrate(store.conn)
            name = masked(store.url)
        return Upgrade(database=name, created=created, applied=applied,
                       version=store.schema_version())
    finally:
        store.close()


def backup(database, target, *, force=False):
    """Copy the SQLite database ``database`` to the file ``target`` while it may be in use."""
    path = sqlite_path(database)
    if path is None:
        raise DripError("DRIP_DATABASE is a PostgreSQL database: back it up with PostgreSQL's "
                        "own tool, e.g. `pg_dump --format=custom --file drip.dump DBNAME` "
                        "(restore with pg_restore); `drip backup` copies SQLite databases")
    if path == ":memory:":
        raise DripError("DRIP_DATABASE is :memory:, which keeps nothing to back up")
    target = Path(target)
    if target.exists() and not force:
        raise DripError(f"{target} exists already; choose another file name, or use --force to "
                        "replace it (nothing was written)")
    if target.is_dir():
        raise DripError(f"{target} is a folder; give the backup a file name")
    if not target.parent.is_dir():
        raise DripError(f"cannot write {target}: {target.parent} is not a folder that exists "
                        "(nothing was written)")
    store = SQLiteStore(path, create=False, migrate_schema=False)
    partial = target.with_name(f".{target.name}.partial")
    try:
        version = store.schema_version()
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            store.conn.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise DripError(f"the backup of {store.path} failed its check; nothing was "
                                f"written to {target} (run `sqlite3 {store.path} 'PRAGMA "
                                "integrity_check'` to see whether the database is damaged)")
        finally:
            copy.close()
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as exc:
        raise DripError(f"cannot back up {store.path} to {target}: {exc} (nothing was "
                        "written)") from None
    finally:
        store.close()
        partial.unlink(missing_ok=True)
    return Backup(source=str(Path(path).resolve()), target=str(target),
                  bytes=target.stat().st_size, version=version)
