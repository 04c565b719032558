"""`drip serve` hosts the guide: the button in a real welcome email leads to the HTML page
and on to its PDF, at versioned URLs cached for a year; `/guide` always redirects to the
current version, so an edited guide is never served stale."""

from __future__ import annotations

import builtins
import io
import logging
import re
from urllib.parse import urljoin

import pytest
import requests
from pypdf import PdfReader
from werkzeug.test import Client

from sender.config import Settings, env_file_text
from sender.web import create_app
from tests.conftest import base_env

from .test_links import pending

IMMUTABLE = "public, max-age=31536000, immutable"
TINY_GUIDE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Guide</title></head>
<body><h1>A tiny guide by {{ coach.name }}</h1>
{% if not for_print %}<p><a class="download" href="{{ pdf_file }}">Download the PDF</a></p>{% endif %}
<section><h2>First part</h2><p>One.</p></section>
</body></html>
"""


def needs_weasyprint():
    """Skip, with the reason, where WeasyPrint cannot load Pango."""
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:
        pytest.skip(f"WeasyPrint cannot load its system libraries ({exc}); "
                    "scripts/install-test-tools.sh installs Pango")


def _words(text):
    return re.sub(r"\s+", " ", text).strip()


def follow_guide(url):
    """GET a /guide URL without following: (the 302, the absolute URL it points at)."""
    moved = requests.get(url, allow_redirects=False, timeout=60)
    assert moved.status_code == 302, moved.text[:300]
    assert moved.headers["Cache-Control"] == "no-store"
    return moved, urljoin(url, moved.headers["Location"])


def test_drip_init_leaves_the_guide_to_drip_serve(tmp_path):
    lines = [line for line in env_file_text(secret="s" * 48).splitlines()
             if line and not line.startswith("#")]
    written = dict(line.split("=", 1) for line in lines)
    assert "DRIP_GUIDE_URL" not in written
    settings = Settings.from_env({**written, "DRIP_TEMPLATES_DIR": str(tmp_path)})
    assert settings.guide_url == f"{written['DRIP_BASE_URL']}/guide"


def test_the_welcome_emails_button_leads_to_the_guide_page_and_its_pdf(start_server, shipped):
    needs_weasyprint()
    server = start_server(root=shipped, DRIP_GUIDE_BUILD_DIR=shipped / "guide-cache")
    server.clock.now = server.clock.now.replace(day=14)   # a Saturday: the welcome has no window
    confirmed = requests.post(pending(server, "zoe@example.com"), timeout=10)
    assert confirmed.status_code == 200
    assert f'href="{server.url}/guide"' in confirmed.text
    [_, welcome] = server.emails_to("zoe@example.com")
    assert welcome["Subject"] == "Your pelvic floor guide is here"
    html = welcome.get_body(("html",)).get_content()
    [button] = re.findall(r'<a[^>]*href="([^"]+)"[^>]*>\s*Open your pelvic floor guide', html)
    assert button == f"{server.url}/guide"
    assert f"{server.url}/guide" in welcome.get_body(("plain",)).get_content()

    _, page_url = follow_guide(button)
    assert re.fullmatch(rf"{re.escape(server.url)}/guide/[0-9a-f]{{16}}/guide\.html", page_url)
    page = requests.get(page_url, timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == IMMUTABLE
    assert "The No B.S. Guide to a Stronger, Drier Pregnancy &amp; Postpartum" in page.text
    [pdf_href] = re.findall(r'<a[^>]*href="([^"]+\.pdf)"[^>]*>[^<]*Download the PDF', page.text)
    pdf_url = urljoin(page_url, pdf_href)
    assert pdf_url.rsplit("/", 1)[0] == page_url.rsplit("/", 1)[0]   # the same version

    pdf = requests.get(pdf_url, timeout=10)
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Cache-Control"] == IMMUTABLE
    assert pdf.content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf.content))
    text = _words(" ".join(p.extract_text() for p in reader.pages))
    assert "Meet your pelvic floor" in text and "Coach Example" in text
    assert "Download the PDF" not in text                # the link is for the screen only
    # Built once into DRIP_GUIDE_BUILD_DIR (the cache the attachment uses too).
    assert (shipped / "guide-cache" / "guide.pdf").read_bytes() == pdf.content
    # The PDF's own unversioned link, as on the confirmed page.
    _, latest_pdf = follow_guide(f"{server.url}/guide/pdf")
    assert latest_pdf == pdf_url


@pytest.fixture
def tiny_guide(project):
    (project / "templates/guide").mkdir()
    (project / "templates/guide/guide.html").write_text(TINY_GUIDE)
    return project / "templates/guide/guide.html"


def test_an_edited_guide_gets_a_new_version_at_once(start_server, project, tiny_guide):
    needs_weasyprint()
    server = start_server(DRIP_GUIDE_BUILD_DIR=project / "cache")
    _, first = follow_guide(f"{server.url}/guide")
    built = (project / "cache" / "guide.key").stat().st_mtime_ns
    _, again = follow_guide(f"{server.url}/guide")
    assert again == first                                       # nothing changed: no rebuild
    assert (project / "cache" / "guide.key").stat().st_mtime_ns == built
    assert "One." in requests.get(first, timeout=10).text

    tiny_guide.write_text(TINY_GUIDE.replace("One.", "One, edited."))
    _, second = follow_guide(f"{server.url}/guide")
    assert second != first
    assert "One, edited." in requests.get(second, timeout=10).text
    # The old version's URL moves on to the current one rather than serve what was.
    _, onwards = follow_guide(first)
    assert onwards == second
    # Anything else under a version is not served.
    version = second.rsplit("/", 2)[1]
    for name in ("guide.key", "drip.db", "..%2Fdrip.db"):
        assert requests.get(f"{server.url}/guide/{version}/{name}", timeout=10).status_code == 404

    # Another coach name (a setting the guide shows) is another version too.
    other = start_server(DRIP_GUIDE_BUILD_DIR=project / "cache", DRIP_COACH_NAME="Dana Coach")
    _, third = follow_guide(f"{other.url}/guide")
    assert third.rsplit("/", 2)[1] not in (first.rsplit("/", 2)[1], version)
    assert "A tiny guide by Dana Coach" in requests.get(third, timeout=10).text


def test_without_pango_the_guide_says_it_is_unavailable(monkeypatch, project, tiny_guide, caplog):
    logging.getLogger("drip.web").addHandler(caplog.handler)   # `drip` may not propagate
    monkeypatch.setattr(logging.getLogger("drip.web"), "level", logging.INFO)
    real_import = builtins.__import__

    def no_pango(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': No such file")
        return real_import(name, *args, **kwargs)

    app = create_app(Settings.from_env(base_env(project, DRIP_GUIDE_BUILD_DIR=project / "cache")))
    try:
        monkeypatch.setattr(builtins, "__import__", no_pango)
        response = Client(app).get("/guide")
        monkeypatch.undo()
    finally:
        app.close()
        logging.getLogger("drip.web").removeHandler(caplog.handler)
    assert response.status_code == 503
    assert response.headers["Cache-Control"] == "no-store"
    assert "guide" in response.text.lower()
    assert "apt-get install libpango" in caplog.text     # the log tells the coach what to do
