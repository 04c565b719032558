"""What `drip check` reports: a ``Problem`` (a file, a line, a message and the rule that
found it), the report as text, and where a campaign file's key is (``_toml_line``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str
    rule: str = "other"        # which check found it (`drip check --json`)

    def __str__(self):
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"

    def to_dict(self):
        return {"file": self.file, "line": self.line or None, "rule": self.rule,
                "message": self.message}


def format_report(problems):
    return "\n".join(str(p) for p in problems)


def _display(path):
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _toml_line(path, key):
    """The line of ``key`` ('steps[2].template', 'window', 'entry.on') in a campaign file."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    match = re.fullmatch(r"steps\[(\d+)\](?:\.(\w+))?", key)
    if match:
        seen, start = 0, None
        for number, line in enumerate(lines, 1):
            if line.strip() == "[[steps]]":
                seen += 1
                if seen == int(match[1]):
                    start = number
                elif start:
                    break
            elif start and match[2] and re.match(rf"\s*{match[2]}\s*=", line):
                return number
        return start or 0
    table, _, name = key.rpartition(".")
    in_table = not table
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = stripped.strip("[]") == table if table else False
        elif in_table and re.match(rf"{re.escape(name)}\s*=", stripped):
            return number
    return 0
