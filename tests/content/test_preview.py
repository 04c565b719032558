"""`drip preview`: the site, the watcher, the local server and the test send."""

from __future__ import annotations

import threading
import urllib.request
from email import policy
from email.parser import BytesParser

from sender import preview
from sender.samples import SAMPLES
from tests.conftest import base_env

from .conftest import needs_shipped


def _emails(drip):
    return [(c, s) for c in drip.campaigns for s in c.steps]


def _check_site(folder, drip):
    index = (folder / "index.html").read_text()
    for sample in SAMPLES[1:]:
        assert (folder / f"index-{sample.key}.html").is_file()
        assert f'href="index-{sample.key}.html"' in index
    assert "Timeline" in index and "Day 0" in index
    for campaign, step in _emails(drip):
        assert f'id="{campaign.id}-{step.id}"' in index
        for sample in SAMPLES:
            name = f"{campaign.id}.{step.id}.{sample.key}"
            html = (folder / f"{name}.html").read_text()
            assert html.lstrip().lower().startswith("<!doctype html")
            assert (folder / f"{name}.txt").read_text().strip()
            headers = (folder / f"{name}.headers.txt").read_text()
            assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers
            assert "Parts: text/plain, text/html" in headers
        name = f"{campaign.id}.{step.id}.{SAMPLES[0].key}"
        assert f'src="{name}.html" width="600"' in index and f'src="{name}.html" width="375"' in index
    return index


def test_preview_writes_the_whole_site(invoke, project, drip):
    result = invoke(project, "preview")
    assert result.exit_code == 0, result.output
    index = _check_site(project / "build/preview", drip)
    assert "Lesson one" in index and "The first lesson" in index   # subject and preheader
    assert "Preheader" in index and "Plain text" in index and "Headers" in index


@needs_shipped
def test_preview_on_a_fresh_checkout_writes_the_whole_site(invoke, shipped, make_drip):
    result = invoke(shipped, "preview", "--output", "site")
    assert result.exit_code == 0, result.output
    drip = make_drip(base_env(shipped))
    _check_site(shipped / "site", drip)
    long_name = SAMPLES[2].subscriber.name
    headers = next((shipped / "site").glob("*.long-name.headers.txt")).read_text()
    assert "=?utf-8?" in headers and long_name in headers   # encoded as sent, and decoded


def test_preview_open_opens_the_index(invoke, project, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    result = invoke(project, "preview", "--open", "--output", "out")
    assert result.exit_code == 0, result.output
    assert opened == [(project / "out/index.html").resolve().as_uri()]


def test_rebuild_if_changed(drip, tmp_path, project):
    out = tmp_path / "site"
    rebuilder = preview.Rebuilder(drip, out)
    assert rebuilder.rebuild() is None
    assert rebuilder.rebuild_if_changed() is False
    body = project / "templates/emails/course/one.html"
    body.write_text(body.read_text().replace("Lesson one", "Lesson ONE, edited"))
    assert rebuilder.rebuild_if_changed() is True
    assert "Lesson ONE, edited" in (out / f"course.one.{SAMPLES[0].key}.html").read_text()
    campaign = project / "campaigns/course.toml"
    campaign.write_text(campaign.read_text().replace('subject = "Lesson two"', 'subject = "Lesson 2!"'))
    assert rebuilder.rebuild_if_changed() is True
    assert "Lesson 2!" in (out / "index.html").read_text()
    # A broken template is reported, and the server keeps the last good site.
    body.write_text("{{ nope }}")
    assert rebuilder.rebuild_if_changed() is True
    assert "nope" in str(rebuilder.last_error)
    assert rebuilder.rebuild_if_changed() is False


def test_the_server_serves_the_site_on_localhost(drip, tmp_path):
    out = tmp_path / "site"
    rebuilder = preview.Rebuilder(drip, out)
    rebuilder.rebuild()
    server = preview.make_server(out, port=0)
    thread = threading.Thread(target=preview.serve, args=(rebuilder, server), kwargs={"interval": 0.05})
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=5) as response:
            assert response.status == 200 and b"Timeline" in response.read()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_preview_to_sends_one_test_email(invoke, project):
    result = invoke(project, "preview", "--to", "me@example.org", "course/one")
    assert result.exit_code == 0, result.output
    [eml] = (project / "outbox").rglob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["Subject"] == "[TEST] Lesson one"
    assert message["To"].addresses[0].addr_spec == "me@example.org"
    assert message["Message-ID"].startswith("<test.")
    assert "me@example.org" in result.output


def test_preview_to_an_unknown_step_lists_the_steps(invoke, project):
    result = invoke(project, "preview", "--to", "me@example.org", "course/nope")
    assert result.exit_code == 1
    assert "course/one" in result.output and "welcome/hello" in result.output


def test_preview_to_needs_a_step(invoke, project):
    result = invoke(project, "preview", "--to", "me@example.org")
    assert result.exit_code == 2
    assert "CAMPAIGN/STEP" in result.output
