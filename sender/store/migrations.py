"""The SQLite store's migrations: the steps of ``schema.py``, applied once each, in order,
inside a transaction, and recorded in ``schema_migrations``.

Each migration is a function of the connection (``MIGRATIONS``), named after its step, so an
existing database upgrades from whatever version it has without losing a row.
"""

from __future__ import annotations

from ..errors import DripError
from .schema import SCHEMA_MIGRATIONS, STEPS, for_engine, statements


def _migration(name, sql):
    script = for_engine(sql, "sqlite")

    def migration(conn):
        conn.executescript(script)

    migration.__name__ = migration.__qualname__ = name
    return migration


MIGRATIONS = [_migration(name, sql) for name, sql in STEPS]


def migrate(conn, *, upto=None):
    """Apply every migration not yet recorded; returns the names applied."""
    conn.execute(for_engine(SCHEMA_MIGRATIONS, "sqlite"))
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    check_not_newer(max(done, default=0), len(MIGRATIONS), where="this SQLite database")
    applied = []
    for version, migration in enumerate(MIGRATIONS[:upto], start=1):
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have just migrated.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                            (version,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement, params in _statements(migration):
                conn.execute(statement, params)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                         (version, migration.__name__))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.__name__)
    return applied


def check_not_newer(version, known, *, where):
    """Refuse a database that a newer drip has migrated: this drip does not know its schema
    and could damage it."""
    if version > known:
        raise DripError(f"{where} was upgraded by a newer drip (schema version {version}; this "
                        f"drip knows up to {known}). Upgrade drip (pip install -U drip, or pull "
                        "the newer code) before using it; nothing was changed.")


class _Recorder:
    """Collects the SQL a migration would run, so it can run inside our transaction
    (``executescript`` would commit on its own)."""

    def __init__(self):
        self.statements = []

    def executescript(self, script):
        self.statements += [(s, ()) for s in statements(script, "sqlite")]

    def execute(self, statement, params=()):
        self.statements.append((statement, params))


def _statements(migration):
    recorder = _Recorder()
    migration(recorder)
    return recorder.statements
