"""`drip guide build`, and the guide PDF attached to the welcome email."""

from __future__ import annotations

import builtins
import re
import weakref
from datetime import UTC, datetime
from html import unescape

import pytest
from pypdf import PdfReader

from sender import guide
from sender.compose import compose
from sender.samples import SAMPLES
from tests.conftest import base_env

from .conftest import needs_shipped

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
TINY_GUIDE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Guide</title>
<style>@page { @bottom-center { content: counter(page); } } section { break-before: page; }</style>
</head><body class="{{ 'print' if for_print else 'screen' }}">
<h1>A tiny guide by {{ coach.name }}</h1><p>{{ postal_address }}. {{ generated_on }}</p>
<section><h2>First part</h2><p>One.</p></section>
<section><h2>Second part</h2><p>Two.</p></section>
</body></html>
"""


def _words(text):
    return re.sub(r"\s+", " ", text).strip()


@needs_shipped
def test_guide_build_writes_html_and_a_pdf_with_every_section_heading(invoke, shipped):
    result = invoke(shipped, "guide", "build", "--output", "out")
    assert result.exit_code == 0, result.output
    html = (shipped / "out" / "guide.html").read_text()
    assert "<style>" in html and "{{" not in html and "<link" not in html   # standalone
    headings = [_words(unescape(re.sub(r"<[^>]+>", "", h)))
                for h in re.findall(r"<section[^>]*>\s*<h2[^>]*>(.*?)</h2>", html, re.S)]
    assert len(headings) >= 5, headings
    reader = PdfReader(shipped / "out" / "guide.pdf")
    assert len(reader.pages) >= 6
    text = _words(" ".join(page.extract_text() for page in reader.pages))
    for heading in headings:
        assert heading in text, f"section heading {heading!r} is not in the PDF"
    assert "Contents" in _words(reader.pages[1].extract_text())          # a table of contents
    assert re.search(r"\b3\s*$", reader.pages[2].extract_text().strip())  # page numbers
    assert f"{len(reader.pages)} pages" in result.output


def test_guide_build_uses_the_default_folder(invoke, project):
    (project / "templates/guide").mkdir()
    (project / "templates/guide/guide.html").write_text(TINY_GUIDE)
    result = invoke(project, "guide", "build")
    assert result.exit_code == 0, result.output
    assert (project / "build/guide/guide.html").read_text().count("screen") == 1
    reader = PdfReader(project / "build/guide/guide.pdf")
    assert len(reader.pages) == 3
    assert "Coach Example" in reader.pages[0].extract_text()


def test_a_missing_system_library_says_what_to_install(monkeypatch, invoke, project):
    (project / "templates/guide").mkdir()
    (project / "templates/guide/guide.html").write_text(TINY_GUIDE)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': No such file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    result = invoke(project, "guide", "build")
    assert result.exit_code == 1
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b" in result.output


@pytest.fixture
def attaching(project, make_drip, monkeypatch):
    (project / "templates/guide").mkdir()
    (project / "templates/guide/guide.html").write_text(TINY_GUIDE)
    monkeypatch.setattr(guide, "_memory", weakref.WeakKeyDictionary())
    return make_drip(base_env(project, DRIP_GUIDE_ATTACH="true",
                              DRIP_GUIDE_BUILD_DIR=project / "cache"))


def test_the_welcome_email_carries_the_pdf_built_once(attaching, monkeypatch):
    builds = []
    real_build = guide.build_guide
    monkeypatch.setattr(guide, "build_guide", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    welcome = attaching.campaigns.get("welcome")
    for sample in SAMPLES:
        message = compose(attaching, sample.subscriber, welcome, welcome.steps[0], now=NOW)
        [attachment] = message.attachments
        assert attachment.content_type == "application/pdf" and attachment.data.startswith(b"%PDF")
    assert len(builds) == 1
    mime = message.to_mime()
    assert [p.get_filename() for p in mime.iter_attachments()] == [guide.ATTACHMENT_NAME]
    course = attaching.campaigns.get("course")
    assert compose(attaching, SAMPLES[0].subscriber, course, course.steps[0], now=NOW).attachments == []


def test_the_cached_pdf_is_rebuilt_when_the_guide_changes(attaching, project, make_drip):
    first = guide.guide_pdf(attaching)
    stamp = (project / "cache/guide.key").read_text()
    (project / "templates/guide/guide.html").write_text(TINY_GUIDE.replace("One.", "One, changed."))
    assert guide.guide_pdf(attaching) == first          # within one run it is read once
    next_run = make_drip(base_env(project, DRIP_GUIDE_ATTACH="true", DRIP_GUIDE_BUILD_DIR=project / "cache"))
    second = guide.guide_pdf(next_run)
    assert (project / "cache/guide.key").read_text() != stamp and first != second


def test_no_attachment_unless_the_coach_turns_it_on(drip):
    welcome = drip.campaigns.get("welcome")
    assert compose(drip, SAMPLES[0].subscriber, welcome, welcome.steps[0], now=NOW).attachments == []


def test_attach_guide_in_a_step_overrides_the_default(project, make_drip, attaching):
    path = project / "campaigns/welcome.toml"
    path.write_text(path.read_text() + "attach_guide = false\n")
    drip = make_drip(base_env(project, DRIP_GUIDE_ATTACH="true", DRIP_GUIDE_BUILD_DIR=project / "c"))
    welcome = drip.campaigns.get("welcome")
    assert welcome.steps[0].attach_guide is False
    assert compose(drip, SAMPLES[0].subscriber, welcome, welcome.steps[0], now=NOW).attachments == []


@needs_shipped
@pytest.mark.parametrize("attach, step_says, attached", [
    ("false", None, False), ("true", None, True), ("true", "false", False)])
def test_the_welcome_email_says_attached_only_when_the_pdf_is(shipped, make_drip, monkeypatch,
                                                                attach, step_says, attached):
    monkeypatch.setattr(guide, "_memory", weakref.WeakKeyDictionary())
    if step_says:
        path = shipped / "campaigns/welcome.toml"
        path.write_text(path.read_text().replace("attach_guide = true", f"attach_guide = {step_says}"))
    drip = make_drip(base_env(shipped, DRIP_GUIDE_ATTACH=attach, DRIP_GUIDE_BUILD_DIR=shipped / "cache"))
    welcome = drip.campaigns.get("welcome")
    message = compose(drip, SAMPLES[0].subscriber, welcome, welcome.steps[0], now=NOW)
    assert bool(message.attachments) is attached
    for part in (message.text, _words(unescape(re.sub(r"<[^>]+>", " ", message.html)))):
        assert ("attached to this email as a PDF" in part) is attached
        assert ("opens it in your browser, with a PDF you can download" in part) is not attached
