"""`drip serve` serves the pictures the emails show: at the versioned URLs in a real welcome
email, cached for a year (immutable); an older version's URL leads on to the current file, so
an old email still shows its picture after an edit. With DRIP_ASSET_URL the emails name that
host instead, and `drip assets publish` wrote exactly the files they name."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import requests
from click.testing import CliRunner

from sender import images
from sender.cli import cli
from tests.content.test_image_pipeline import SVG, _entry

from .test_links import pending

IMMUTABLE = "public, max-age=31536000, immutable"


def _with_picture(project):
    folder = project / "templates" / "images"
    folder.mkdir()
    (folder / "bridge.svg").write_text(SVG)
    (folder / "images.toml").write_text(_entry("bridge.svg"))
    welcome = project / "templates/emails/welcome/hello.html"
    welcome.write_text(welcome.read_text() + '\n{{ image("bridge") }}\n')
    return project


def _welcome_pictures(server, address):
    """The <img> URLs of the welcome email a real signup and confirmation bring."""
    assert requests.post(pending(server, address), timeout=10).status_code == 200
    [welcome] = [m for m in server.emails_to(address) if m["Subject"].startswith("Welcome")]
    html = welcome.get_body(("html",)).get_content()
    return re.findall(r'<img src="([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]*)"', html)


def test_the_pictures_in_an_email_load_from_drip_serve_cached_for_good(start_server, project):
    server = start_server(_with_picture(project))
    [(src, width, height, alt)] = _welcome_pictures(server, "ana@example.com")
    picture = images.load_catalog(project / "templates").get("bridge")
    assert src == f"{server.url}/assets/{picture.filename(2)}"
    assert (width, height, alt) == ("320", "120", picture.alt)
    answer = requests.get(src, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"
    assert answer.headers["Cache-Control"] == IMMUTABLE
    assert answer.content == images.render(picture, 2) and answer.content.startswith(b"\x89PNG")
    one_x = requests.get(f"{server.url}/assets/{picture.filename(1)}", timeout=30)
    assert one_x.status_code == 200 and one_x.headers["Cache-Control"] == IMMUTABLE
    assert len(one_x.content) < len(answer.content)


def test_an_edited_picture_gets_a_new_url_and_the_old_one_leads_to_it(start_server, project):
    server = start_server(_with_picture(project))
    old = images.load_catalog(project / "templates").get("bridge").filename(2)
    (project / "templates/images/bridge.svg").write_text(SVG.replace("#c2683f", "#5d7a52"))
    new = images.load_catalog(project / "templates").get("bridge").filename(2)
    assert new != old
    moved = requests.get(f"{server.url}/assets/{old}", allow_redirects=False, timeout=30)
    assert moved.status_code == 302 and moved.headers["Cache-Control"] == "no-store"
    assert urljoin(server.url, moved.headers["Location"]) == f"{server.url}/assets/{new}"
    current = requests.get(f"{server.url}/assets/{new}", timeout=30)
    assert current.status_code == 200 and current.headers["Cache-Control"] == IMMUTABLE


def test_unknown_or_malformed_asset_names_are_not_found(start_server, project):
    server = start_server(_with_picture(project))
    for name in ("nothing.0123456789@2x.png", "bridge.svg", "images.toml", "..%2Fimages.toml",
                 "bridge.0123456789@2x.gif"):
        answer = requests.get(f"{server.url}/assets/{name}", timeout=10)
        assert answer.status_code == 404, name
        assert answer.headers["Cache-Control"] == "no-store"


def test_with_asset_url_the_emails_name_the_published_files(start_server, project, monkeypatch):
    _with_picture(project)
    server = start_server(project, DRIP_ASSET_URL="https://cdn.coach.test/email")
    [(src, _w, _h, _alt)] = _welcome_pictures(server, "sam@example.com")
    assert src.startswith("https://cdn.coach.test/email/")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["assets", "publish", "upload"], env=server.env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    published = project / "upload" / src.rsplit("/", 1)[1]
    assert published.is_file()
    served = requests.get(f"{server.url}/assets/{published.name}", timeout=30)
    assert served.status_code == 200 and served.content == published.read_bytes()
