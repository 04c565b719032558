"""Storage behind one interface (``Store``); ``open_store`` picks the engine from the setting."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Store
from .sqlite import SQLiteStore

__all__ = ["Store", "SQLiteStore", "open_store", "sqlite_path"]


def sqlite_path(database):
    """The SQLite file DRIP_DATABASE names (a path, or sqlite://PATH), or None for PostgreSQL."""
    if "://" in str(database):
        scheme, rest = str(database).split("://", 1)
        if scheme in ("sqlite",):
            return rest
        if scheme in ("postgresql", "postgres"):
            return None
        raise ConfigError(
            f"DRIP_DATABASE: unsupported database URL scheme {scheme!r}; "
            "use a file path for SQLite (e.g. drip.db) or postgresql://user@host/dbname")
    return str(database)


def open_store(database, *, create=True, migrate_schema=True):
    """Open the store named by DRIP_DATABASE: a file path (SQLite) or a
    postgresql:// URL (PostgreSQL, for workers on several machines).

    With ``create=False`` a SQLite file that does not exist is a DatabaseMissing error
    instead of a new, empty database (the CLI opens it so: see ``State.drip``)."""
    path = sqlite_path(database)
    if path is not None:
        return SQLiteStore(path, create=create, migrate_schema=migrate_schema)
    try:
        from .postgres import PostgresStore
    except ImportError:
        raise ConfigError("DRIP_DATABASE names a PostgreSQL database, but the driver is "
                          "not installed: pip install 'drip[postgres]'") from None
    return PostgresStore(str(database), migrate_schema=migrate_schema)
