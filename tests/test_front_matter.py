"""``front_matter.split``: the TOML between two ``+++`` lines, the body with true line numbers,
and each problem named with the file and line."""

from __future__ import annotations

import pytest

from sender.errors import TemplateError
from sender.front_matter import FrontMatterError, split

GOOD = """+++
subject = "A workshop in Bellevue"
segment = "tag:local"
archive = false
+++

## Hello

Body line 9.
"""


def test_the_settings_are_parsed_and_the_body_keeps_its_line_numbers():
    settings, body = split(GOOD, "broadcasts/x.md")
    assert settings == {"subject": "A workshop in Bellevue", "segment": "tag:local", "archive": False}
    assert body.splitlines()[:5] == ["", "", "", "", ""]
    assert body.splitlines()[8] == "Body line 9." == GOOD.splitlines()[8]
    assert len(body.splitlines()) == len(GOOD.splitlines())


def test_windows_line_ends_a_byte_order_mark_and_bytes_are_read():
    text = "\ufeff" + GOOD.replace("\n", "\r\n")
    settings, body = split(text.encode("utf-8"), "x.md")
    assert settings["subject"] == "A workshop in Bellevue"
    assert body.splitlines()[8] == "Body line 9."


@pytest.mark.parametrize("text,line,words", [
    ("## No front matter\n", 1, "no front matter"),
    ("", 1, "no front matter"),
    ('+++\nsubject = "x"\n\nHello\n', 1, "never closed"),
    ('+++\nsubject = "x"\nwhen = Tue 09:00\n+++\nHi\n', 3, "not valid TOML"),
    ('+++\nsubject = "x"\nsubject = "y"\n+++\n', 3, "not valid TOML"),
])
def test_each_problem_names_the_file_and_line(text, line, words):
    with pytest.raises(FrontMatterError) as caught:
        split(text, "broadcasts/x.md")
    assert isinstance(caught.value, TemplateError)
    assert str(caught.value).startswith(f"broadcasts/x.md, line {line}: ")
    assert words in str(caught.value)
    assert (caught.value.path, caught.value.line) == ("broadcasts/x.md", line)


def test_text_that_is_not_utf8_is_named_with_its_line():
    with pytest.raises(FrontMatterError, match=r"^x.md, line 2: not UTF-8"):
        split(b'+++\nsubject = "\xff"\n+++\n', "x.md")
