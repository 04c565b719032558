"""Helpers for the list tests: write a CSV file, import it, read back what was stored."""

from __future__ import annotations

import pytest

from sender import lists
from tests.conftest import at

NOW = at("2026-03-02T10:00Z")


@pytest.fixture
def csv_file(tmp_path):
    """Write text (or bytes) to a file and return its path."""
    made = []

    def write(content, name="list.csv", encoding="utf-8"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode(encoding))
        made.append(path)
        return path

    return write


@pytest.fixture
def do_import(drip):
    def run(path, **kwargs):
        kwargs.setdefault("consent", "signup form on the old site")
        kwargs.setdefault("now", NOW)
        return lists.import_csv(drip, path, **kwargs)

    return run


def stored(drip):
    """Every subscriber as a comparable dict, by email."""
    return {p.email: {**p.to_dict(), "uid": p.uid, "updated_at": p.updated_at}
            for p in drip.store.list_subscribers()}


def errors(report):
    return [(p.line, p.reason) for p in sorted(report.errors, key=lambda p: p.line)]
