"""`drip check`: passes on good content, fails with FILE:LINE: message on each broken fixture."""

from __future__ import annotations

import pytest

from sender.checks import Problem, _toml_line, check_project, link_problem
from sender.emailsupport import features_used, unsupported
from tests.conftest import base_env

from .conftest import BROKEN, needs_shipped

BROKEN_CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def test_check_passes_on_the_fixture_project(invoke, project):
    result = invoke(project, "check")
    assert result.exit_code == 0, result.output
    assert "pass the checks" in result.output


@needs_shipped
def test_check_passes_on_the_shipped_content(invoke, shipped):
    result = invoke(shipped, "check", DRIP_INSTAGRAM_URL="https://www.instagram.com/coach")
    assert result.exit_code == 0, f"drip check on the shipped content:\n{result.output}"


@needs_shipped
def test_check_passes_on_the_shipped_content_with_optional_settings_empty(invoke, shipped):
    # Optional links (Instagram, blog) may be unset: the content must not print an empty link.
    result = invoke(shipped, "check", DRIP_INSTAGRAM_URL="", DRIP_BLOG_URL="", DRIP_COACH_CITY="")
    assert result.exit_code == 0, f"drip check with the optional settings empty:\n{result.output}"


def test_there_is_a_broken_fixture_for_every_rule():
    assert {"undefined-variable", "no-unsubscribe-html", "no-unsubscribe-text",
            "no-postal-address-html", "no-postal-address-text", "no-safety-block", "no-text-part",
            "image-without-alt", "over-size-budget", "bad-links", "unsupported-css",
            "unsupported-html"} <= set(BROKEN_CASES)


@pytest.mark.parametrize("name", BROKEN_CASES)
def test_check_fails_on_each_broken_fixture(invoke, broken, name):
    expected = [line for line in (BROKEN / name / "expected.txt").read_text().splitlines() if line]
    result = invoke(broken(name), "check")
    assert result.exit_code == 1, result.output
    for line in expected:
        assert line in result.output, f"{name}: expected {line!r} in:\n{result.output}"
    assert "problem(s) found" in result.output  # the summary (CliRunner mixes in stderr)


def test_problems_name_file_and_line():
    assert str(Problem("templates/emails/a.html", 3, "oops")) == "templates/emails/a.html:3: oops"
    assert str(Problem("templates/emails/_layout.txt", 0, "oops")) == "templates/emails/_layout.txt: oops"


def test_a_safety_block_from_the_macro_passes(invoke, broken):
    project = broken("no-safety-block")
    (project / "templates/emails/course/one.html").write_text(
        "<h2>Lesson one</h2>\n<p>Squeeze gently.</p>\n<div class=\"safety\">\n"
        "<h3>Stop signs: when to pause</h3>\n<ul><li>Leaking</li></ul>\n"
        "<p><strong>Disclaimer:</strong> general education, not medical advice.</p>\n</div>\n")
    result = invoke(project, "check")
    assert result.exit_code == 0, result.output


def test_check_reports_every_sample_that_breaks_only_once_per_place(make_drip, broken):
    project = broken("undefined-variable")
    problems = check_project(make_drip(base_env(project)))
    assert [p.line for p in problems] == [2]


@pytest.mark.parametrize("url, fragment", [
    ("", "empty link"),
    ("#", "placeholder link '#'"),
    ("javascript:void(0)", "script"),
    ("https://site.com/TODO", "placeholder"),
    ("site.com/page", "no https:// scheme"),
    ("https://exa mple.com", "spaces"),
    ("https://{{ url }}", "unrendered"),
    ("http://site.com", "insecure"),
    ("https:///path", "no host name"),
    ("mailto:", "empty mailto"),
    ("ftp://site.com/file", "unsupported link scheme"),
    ("https://www.example.com/book", "placeholder domain"),
    ("https://coach.example/book", "placeholder domain"),
])
def test_link_problem_flags(url, fragment):
    assert fragment in (link_problem(url) or "")


@pytest.mark.parametrize("url", [
    "https://coach-site.com/blog", "mailto:coach@coach-site.com", "tel:+15555550100",
    "#section", "http://localhost:8000/x",
])
def test_link_problem_accepts(url):
    assert link_problem(url) is None


def test_placeholder_domains_are_fine_when_they_come_from_a_setting():
    assert link_problem("https://coach.example.com/book", ("https://coach.example.com",)) is None


def test_unsupported_css_names_the_clients_and_the_caniemail_page():
    found = unsupported('<div style="float: left">x</div>')
    assert [f.slug for f in found] == ["css-float"]
    assert "Outlook (Windows)" in found[0].message and "caniemail.com" in found[0].message


def test_css_next_to_mso_hide_all_is_not_held_against_outlook():
    html = '<span style="mso-hide: all; max-height: 0; opacity: 0">x</span>'
    assert unsupported(html) == []
    assert {u.slug for u in features_used(html)} >= {"css-max-height", "css-opacity"}


def test_css_inside_media_is_not_held_against_clients_without_media_queries():
    html = "<style>@media (max-width: 600px) { .a { max-height: 10px } }</style>"
    assert unsupported(html) == []   # Outlook for Windows ignores @media (tolerated) and what is inside
    html = "<style>@media (prefers-color-scheme: dark) { .a { color: #fff } }</style>"
    assert [f.slug for f in unsupported(html)] == ["css-at-media-prefers-color-scheme"]


def test_selectors_and_values_map_to_features():
    html = ("<style>a:hover { color: rgba(0,0,0,.5) } p > b { margin: 1rem } "
            "div { width: calc(100% - 2px) }</style>")
    slugs = {u.slug for u in features_used(html)}
    assert {"css-pseudo-class-hover", "css-rgba", "css-selector-child", "css-unit-rem",
            "css-unit-calc"} <= slugs


def test_the_doctype_is_tolerated_with_a_reason():
    assert unsupported("<!doctype html><html><body><p>x</p></body></html>") == []


def test_toml_lines_are_found(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('window = "always"\n\n[entry]\non = "confirm"\n\n[[steps]]\nid = "a"\n'
                    'subject = "x"\n\n[[steps]]\nid = "b"\nsubject = "y"\n')
    assert _toml_line(path, "window") == 1
    assert _toml_line(path, "entry.on") == 4
    assert _toml_line(path, "steps[2].subject") == 12
    assert _toml_line(path, "steps[2]") == 10


def test_long_text_that_may_wrap_passes(invoke, broken):
    project = broken("long-unbreakable-text")
    path = project / "templates/emails/system/confirm.html"
    path.write_text(path.read_text().replace('<a href="{{ confirm_url }}">{{',
                                              '<a style="word-break: break-all" href="{{ confirm_url }}">{{'))
    result = invoke(project, "check")
    assert result.exit_code == 0, result.output
