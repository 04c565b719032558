"""Regenerate the generated parts of README.md and .env.example from sender/config.py.

    .venv/bin/python scripts/update-readme.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender.config import env_file_text, settings_markdown  # noqa: E402


def replace_block(text, name, body):
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main():
    readme = REPO / "README.md"
    readme.write_text(replace_block(readme.read_text(), "settings", settings_markdown()))
    (REPO / ".env.example").write_text(env_file_text(example=True))


if __name__ == "__main__":
    main()
