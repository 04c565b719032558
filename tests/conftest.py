"""Shared fixtures: a fresh project folder, settings, a Drip on a real SQLite file."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings as hypothesis_settings

from sender.cli import cli
from sender.config import Settings
from sender.drip import Drip

# The throwaway PostgreSQL server fixtures (postgres_server, postgres_url).
pytest_plugins = ["tests.pgserver"]

hypothesis_settings.register_profile("default", deadline=None)
hypothesis_settings.register_profile("long", deadline=None, max_examples=1000)
hypothesis_settings.load_profile(os.environ.get("DRIP_HYPOTHESIS_PROFILE", "default"))

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def at(text):
    """An aware UTC datetime from ISO 8601 text ('2026-03-09T09:00Z')."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def base_env(root, **overrides):
    env = {
        "DRIP_DATABASE": str(root / "drip.db"),
        "DRIP_PROVIDER": "outbox",
        "DRIP_OUTBOX_DIR": str(root / "outbox"),
        "DRIP_FROM": "Coach Example <coach@example.com>",
        "DRIP_POSTAL_ADDRESS": "123 Example St, Redmond, WA 98052, USA",
        "DRIP_BASE_URL": "https://mail.example.com",
        "DRIP_SECRET_KEY": SECRET,
        "DRIP_TIMEZONE": "America/Los_Angeles",
        "DRIP_SEND_WINDOW": "Mon-Fri 09:00-17:00",
        "DRIP_CAMPAIGNS_DIR": str(root / "campaigns"),
        "DRIP_TEMPLATES_DIR": str(root / "templates"),
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


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
    """Invoke the CLI with the project's env, in the project folder, no .env file."""
    monkeypatch.chdir(project)

    def invoke(*args, extra_env=None, input=None):
        environ = {**env, **(extra_env or {})}
        return CliRunner().invoke(cli, ["--env-file", "/nonexistent/.env", *args],
                                  env=environ, input=input, catch_exceptions=False)

    return invoke
