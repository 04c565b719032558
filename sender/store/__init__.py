"""Storage behind one interface (``Store``); ``open_store`` picks the engine from the setting."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Store
from .sqlite import SQLiteStore

__all__ = ["Store", "SQLiteStore", "open_store"]


def open_store(database):
    """Open the store named by DRIP_DATABASE: a file path (SQLite) or a
    postgresql:// URL (PostgreSQL, for workers on several machines)."""
    if "://" in str(database):
        scheme = str(database).split("://", 1)[0]
        if scheme in ("sqlite",):
            return SQLiteStore(str(database).split("://", 1)[1])
        if scheme in ("postgresql", "postgres"):
            try:
                from .postgres import PostgresStore
            except ImportError:
                raise ConfigError("DRIP_DATABASE names a PostgreSQL database, but the driver is "
                                  "not installed: pip install 'drip[postgres]'") from None
            return PostgresStore(str(database))
        raise ConfigError(
            f"DRIP_DATABASE: unsupported database URL scheme {scheme!r}; "
            "use a file path for SQLite (e.g. drip.db) or postgresql://user@host/dbname")
    return SQLiteStore(database)
