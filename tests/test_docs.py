"""The README and .env.example stay true to the code."""

from __future__ import annotations

import re

from sender.config import SETTINGS, settings_markdown
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_settings_table_is_current():
    block = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", README, re.S).group(1)
    assert block == settings_markdown(), "run: .venv/bin/python scripts/update-readme.py"
    for setting in SETTINGS:
        assert f"`{setting.name}`" in block


def test_readme_names_the_two_setup_commands_and_ci_runs_the_test_one():
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
