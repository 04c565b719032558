"""Helpers for the content tests: run the CLI against any project folder."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from sender.cli import cli
from tests.conftest import FIXTURES, REPO, base_env

SHIPPED = (REPO / "templates" / "emails").is_dir() and (REPO / "campaigns").is_dir()
needs_shipped = pytest.mark.skipif(
    not SHIPPED, reason="the shipped content (templates/emails and campaigns/) is not in this checkout")
BROKEN = FIXTURES / "broken"


@pytest.fixture
def invoke(monkeypatch):
    """invoke(root, *args, **settings): the CLI in ``root`` with base_env(root) plus settings."""

    def run(root, *args, **settings):
        monkeypatch.chdir(root)
        return CliRunner().invoke(cli, list(args),
                                  env=base_env(root, **settings), catch_exceptions=False)

    return run


@pytest.fixture
def broken(project):
    """broken(name): the fixture project with tests/fixtures/broken/<name> laid over it."""

    def make(name):
        shutil.copytree(BROKEN / name, project, dirs_exist_ok=True)
        (project / "expected.txt").unlink()
        return project

    return make
