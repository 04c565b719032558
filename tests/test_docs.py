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


def test_readme_layout_names_every_module():
    """The README's layout section has a line for every module and folder of sender/."""
    layout = README.split("## Layout", 1)[1].split("```")[1]
    missing = []
    for path in sorted((REPO / "sender").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py") or "__pycache__" in path.parts:
            continue
        if path.name not in layout:
            missing.append(str(path.relative_to(REPO)))
    for folder in sorted(p for p in (REPO / "sender").rglob("*") if p.is_dir()):
        if (folder / "__init__.py").exists() and f"{folder.name}/" not in layout \
                and folder.name != "sender":
            missing.append(f"{folder.relative_to(REPO)}/")
    assert not missing, f"README Layout does not mention: {missing}"
