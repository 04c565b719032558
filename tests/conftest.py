"""Shared fixtures: a fresh project folder, settings, a Drip on a real SQLite file."""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner
from hypothesis import settings as hypothesis_settings

from sender.backup import migrate_database
from sender.cli import cli
from sender.config import Settings
from sender.drip import Drip
from tests.support import FIXTURES, REPO, SECRET, at, base_env  # noqa: F401

# The project's settings and helpers are in tests/support.py (no pytest there: the benchmarks
# use them too); tests import them from here.

# The throwaway PostgreSQL server fixtures (postgres_server, postgres_url).
pytest_plugins = ["tests.pgserver"]

# Hypothesis profiles. "deterministic" is used unless DRIP_HYPOTHESIS_PROFILE names another
# (so also whenever CI is set): the same examples on every run, no example database, and a
# failure prints the blob to replay it with @reproduce_failure. "long" (set by
# `scripts/reliability.sh --long`) explores: randomised, 1000 examples per property.
# Tests leave max_examples to the profile.
hypothesis_settings.register_profile("deterministic", deadline=None, derandomize=True,
                                     max_examples=100, print_blob=True)
hypothesis_settings.register_profile("long", deadline=None, derandomize=False, max_examples=1000,
                                     print_blob=True)
hypothesis_settings.load_profile(os.environ.get("DRIP_HYPOTHESIS_PROFILE") or "deterministic")


@pytest.fixture
def project(tmp_path):
    """A copy of tests/fixtures/project (small campaigns and templates) in a temp folder."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    return root


@pytest.fixture
def shipped(tmp_path):
    """A temp folder pointing at the repository's real campaigns/ and templates/."""
    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copytree(REPO / "campaigns", root / "campaigns")
    shutil.copytree(REPO / "templates", root / "templates")
    return root


@pytest.fixture
def env(project):
    return base_env(project)


@pytest.fixture
def make_drip():
    """Build Drip objects from an env dict; all are closed after the test."""
    made = []

    def build(environ, **kwargs):
        drip = Drip(Settings.from_env(environ), **kwargs)
        made.append(drip)
        return drip

    yield build
    for drip in made:
        drip.close()


@pytest.fixture
def drip(env, make_drip):
    return make_drip(env)


@pytest.fixture
def run(env, monkeypatch, project):
    """Invoke the CLI with the project's env, in the project folder (which has no .env file),
    on a database made the way `drip init` makes it (the commands never create one)."""
    monkeypatch.chdir(project)
    migrate_database(env["DRIP_DATABASE"])

    def invoke(*args, extra_env=None, input=None):
        environ = {**env, **(extra_env or {})}
        return CliRunner().invoke(cli, list(args), env=environ, input=input,
                                  catch_exceptions=False)

    return invoke


@pytest.fixture
def reload_log():
    """The records the reloader logs (the CLI turns off propagation of the drip loggers)."""
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("drip.reload")
    handler = Keep(level=logging.INFO)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
