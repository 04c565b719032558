"""Front matter: the small TOML block at the top of a Markdown file, between two ``+++`` lines.

Contract (broadcasts and the template loader both use it):

* ``split(text, path) -> (settings, body)``. ``text`` must open with a line ``+++``; the TOML
  up to the next line ``+++`` is parsed with ``tomllib`` into ``settings`` (a dict). ``body``
  is ``text`` with the whole block (both ``+++`` lines included) turned into empty lines, so
  line N of ``body`` is line N of the file and an error in the body names its true line.
* Every problem (no block, a block never closed, TOML that does not parse, text that is not
  UTF-8 when given bytes) raises ``FrontMatterError``, a ``TemplateError`` whose message reads
  ``PATH, line N: what is wrong; how to fix it``; ``.path``, ``.line`` and ``.reason`` hold
  the same.
* Nothing else is checked here: which keys a broadcast needs is its loader's business.
"""

from __future__ import annotations

import re
import tomllib

from .errors import TemplateError

FENCE = "+++"
_TOML_LINE = re.compile(r"at line (\d+)")


class FrontMatterError(TemplateError):
    """A file's front matter is missing, unclosed or not valid TOML."""

    def __init__(self, path, line, message):
        self.path, self.line, self.reason = str(path), line, message
        super().__init__(f"{path}, line {line}: {message}")


def split(text, path):
    """``(settings, body)`` of a file with front matter (see the module docstring)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrontMatterError(path, text.count(b"\n", 0, exc.start) + 1,
                                   "not UTF-8 text; save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        raise FrontMatterError(path, 1, f"no front matter: start the file with a line {FENCE}, "
                                        f"then its settings in TOML (subject = \"...\"), then "
                                        f"another line {FENCE}")
    closing = next((number for number, line in enumerate(lines[1:], 1) if line.strip() == FENCE),
                   None)
    if closing is None:
        raise FrontMatterError(path, 1, f"the front matter opened here is never closed: add a "
                                        f"line {FENCE} after its last setting")
    toml = "".join(lines[1:closing])
    try:
        settings = tomllib.loads(toml)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) + 1 if found else 2
        reason = _TOML_LINE.sub("", str(exc)).replace("(, column", "(column").strip()
        raise FrontMatterError(path, line, f"the front matter is not valid TOML: {reason} "
                                           f"(a text value needs quotes: key = \"value\")") from None
    body = "\n" * (closing + 1) + "".join(lines[closing + 1:])
    return settings, body
