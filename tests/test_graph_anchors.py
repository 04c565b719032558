"""The campaign graph shows what a step with a date anchor counts from (``after = [...]``,
``delay_without_date``): the dates in order and what it waits without any of them, in the text
and JSON of `drip campaigns` and on the preview page."""

from __future__ import annotations

import json

from sender.preview import build_site

DATED = """window = "always"
[campaign]
name = "Dated"
[entry]
on = "confirm"
[[steps]]
id = "one"
template = "course/one"
subject = "One"
after = ["field:birth_date", "field:due_date"]
delay = "6w"
delay_without_date = "3d"
[[steps]]
id = "two"
template = "course/two"
subject = "Two"
after = "field:birth_date"
delay = "2w"
[[steps]]
id = "three"
template = "course/one"
subject = "Three"
delay = "1w"
"""

FIRST = "6w after birth_date, else due_date; 3d after enrolment without either"
SECOND = "2w after birth_date; 2w after one without it"


def dated(project):
    (project / "campaigns" / "dated.toml").write_text(DATED, encoding="utf-8")


def test_the_text_shows_the_dates_a_step_counts_from(run, project):
    dated(project)
    result = run("campaigns")
    assert result.exit_code == 0, result.output
    block = result.output[result.output.index("dated:"):]
    lines = {line.split()[0]: line for line in block.splitlines()[1:] if line.startswith("  ")
             and not line.startswith("   ")}
    assert FIRST in lines["one"] and SECOND in lines["two"]
    assert "+6w after enrolment" not in block
    assert lines["three"].split()[1:4] == ["+1w", "after", "two"]


def test_the_json_carries_the_anchor(run, project):
    dated(project)
    result = run("campaigns", "--json")
    assert result.exit_code == 0, result.output
    [item] = [c for c in json.loads(result.output) if c["id"] == "dated"]
    one, two, three = item["steps"]
    assert (one["anchors"], one["delay_without_date"], one["wait"]) == (
        ["birth_date", "due_date"], "3d", FIRST)
    assert (two["anchors"], two["delay_without_date"], two["wait"]) == (["birth_date"], None, SECOND)
    assert (three["anchors"], three["delay_without_date"], three["wait"]) == ([], None, "+1w after two")
    # What it counts from without a date, as before.
    assert (one["after"], two["after"]) == ("enrolment", "one")


def test_the_preview_page_shows_the_anchor(project, make_drip, env, tmp_path):
    dated(project)
    build_site(make_drip(env), tmp_path / "site")
    page = (tmp_path / "site" / "graph-dated.html").read_text(encoding="utf-8")
    assert page.count(FIRST) == 2 and page.count(SECOND) == 2     # the drawing and the list
    assert "+6w after enrolment" not in page
