"""The public archive on `drip serve`: /archive lists the broadcasts sent (newest first), each
at /archive/NAME rendered for nobody in particular, and /archive/feed.xml as Atom 1.0; never
a broadcast kept out (archive = false), unsent or cancelled, and never anyone's own values.
The broadcasts are sent through the real engine to the outbox first, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import http.client
import re
import xml.etree.ElementTree as ET
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import feedparser
import pytest
import requests

from tests.web.archive_support import (
    DROPPED,
    EVERY_READER,
    FIRST,
    GOING,
    LATER,
    NEUTRAL_LINE,
    PERSONAL,
    PREHEADERS,
    PRIVATE,
    SENTINEL,
    SUBJECTS,
    personal_values,
    send_all,
)

ATOM = "{http://www.w3.org/2005/Atom}"
NOT_LISTED = (PRIVATE, LATER, DROPPED, GOING)


def get(server, path, **headers):
    return requests.get(f"{server.url}{path}", headers=headers, timeout=20, allow_redirects=False)


def raw(server, path, method="GET"):
    """The answer to ``path`` sent exactly as written (no client normalises it)."""
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=20)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        connection.close()


@pytest.fixture
def archived(start_server, engine, project):
    """The app on SQLite and on PostgreSQL, after send_all (archive_support.py)."""
    server = start_server(**engine)
    send_all(server.drip(), project)
    return server


@pytest.fixture
def on_sqlite(start_server, project):
    server = start_server()
    send_all(server.drip(), project)
    return server


def test_the_list_shows_the_sent_broadcasts_newest_first_with_date_and_preheader(archived):
    page = get(archived, "/archive")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    shown = [html.escape(SUBJECTS[name], quote=False) for name in (PERSONAL, FIRST)]
    assert all(s in text for s in shown) and text.index(shown[0]) < text.index(shown[1])
    for name in (PERSONAL, FIRST):
        assert f'href="{archived.url}/archive/{name}"' in text
        assert html.escape(PREHEADERS[name], quote=False) in text
    assert "March 9, 2026" in text and "March 2, 2026" in text
    assert "Q&A: <b>" not in text                      # the subject is text, never markup
    for name in NOT_LISTED:
        assert name not in text and html.escape(SUBJECTS[name], quote=False) not in text
    feed = re.search(r'<link rel="alternate" type="application/atom\+xml"[^>]*>', text)
    assert feed and f'href="{archived.url}/archive/feed.xml"' in feed.group(0)
    assert archived.settings.coach.name in text                                  # her brand
    assert archived.settings.brand.color in text


def test_each_page_shows_what_was_sent_for_nobody_in_particular(archived, project):
    # What she got: her own values, in the email the engine sent.
    drip = archived.drip()
    theirs = [message_from_bytes(p.read_bytes(), policy=policy.default)
              for p in sorted((project / "outbox").glob(f"broadcast.{PERSONAL}.*.eml"))]
    assert len(theirs) == 2
    sent_html = "".join(m.get_body(("html",)).get_content() for m in theirs)
    assert SENTINEL["name"] in sent_html and SENTINEL["email"] in sent_html
    assert "A paragraph only she sees" in sent_html and SENTINEL["tag"] in sent_html
    # The file is edited after it went: the archive still shows what was sent.
    path = project / "broadcasts" / f"{PERSONAL}.md"
    path.write_text(path.read_text().replace("Hi {{", "EDITED AFTER SENDING {{"))
    page = get(archived, f"/archive/{PERSONAL}")
    assert page.status_code == 200
    text = page.text
    assert f"<title>{html.escape(SUBJECTS[PERSONAL], quote=False)} · " in text
    assert EVERY_READER in text and "Hi there," in text and NEUTRAL_LINE in text
    assert "stage: unknown; tags: none." in text and "A paragraph only she sees" not in text
    assert "EDITED AFTER SENDING" not in text
    assert 'class="button"' in text and "Save a spot" in text and "<strong>counts</strong>" in text
    assert "March 9, 2026" in text and f'href="{archived.url}/archive"' in text
    assert "/unsubscribe/" not in text
    for value in personal_values(drip):
        assert value not in text
    first = get(archived, f"/archive/{FIRST}")
    assert first.status_code == 200 and "The <em>first</em> letter." in first.text


def test_kept_out_unsent_cancelled_and_unknown_broadcasts_are_not_found(archived):
    for name in (*NOT_LISTED, "2026-01-01-never-written", "first-news"):
        page = get(archived, f"/archive/{name}")
        assert page.status_code == 404, name
        assert "There is no page here." in page.text and SUBJECTS.get(name, name) not in page.text


def test_the_feed_is_atom_with_one_entry_per_archived_broadcast(archived):
    answer = get(archived, "/archive/feed.xml")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].split(";")[0] == "application/atom+xml"
    root = ET.fromstring(answer.content)             # well-formed XML, in the Atom namespace
    assert root.tag == f"{ATOM}feed"
    feed = feedparser.parse(answer.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    url = archived.url
    assert feed.feed.id == f"{url}/archive"
    assert {(link.rel, link.href) for link in feed.feed.links} >= {
        ("self", f"{url}/archive/feed.xml"), ("alternate", f"{url}/archive")}
    assert feed.feed.title and feed.feed.author == archived.settings.coach.name
    assert [e.id for e in feed.entries] == [f"{url}/archive/{PERSONAL}", f"{url}/archive/{FIRST}"]
    personal, first = feed.entries
    assert personal.title == SUBJECTS[PERSONAL] and first.title == SUBJECTS[FIRST]
    assert personal.link == f"{url}/archive/{PERSONAL}"
    assert personal.summary == PREHEADERS[PERSONAL]
    assert personal.published_parsed[:5] == (2026, 3, 9, 17, 0)
    assert first.updated_parsed[:3] == (2026, 3, 2)
    assert feed.feed.updated_parsed == personal.updated_parsed
    content = personal.content[0]
    assert content.type == "text/html" and "Hi there," in content.value
    assert NEUTRAL_LINE in content.value and "Save a spot" in content.value
    # The raw XML: the subject and the body are escaped, never raw markup in the feed.
    entries = root.findall(f"{ATOM}entry")
    assert entries[0].find(f"{ATOM}title").text == SUBJECTS[PERSONAL]
    assert entries[0].find(f"{ATOM}content").get("type") == "html"
    # Links in the body resolve against the page (its empty unsubscribe link: the page itself).
    xml_base = "{http://www.w3.org/XML/1998/namespace}base"
    assert entries[0].find(f"{ATOM}content").get(xml_base) == f"{url}/archive/{PERSONAL}"
    assert "<b>strong</b>" not in answer.text
    for name in NOT_LISTED:
        assert name not in answer.text


def test_no_personal_value_reaches_any_archive_answer(on_sqlite):
    values = personal_values(on_sqlite.drip())
    expected = {"/archive": 200, "/archive/feed.xml": 200, f"/archive/{PERSONAL}": 200,
                f"/archive/{FIRST}": 200, f"/archive/{PRIVATE}": 404}
    for path, status in expected.items():
        for method in (requests.get, requests.head):
            answer = method(f"{on_sqlite.url}{path}", timeout=20, allow_redirects=False)
            assert answer.status_code == status, (path, answer.status_code)
            everything = answer.text + "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
            for value in values:
                assert value not in everything, (path, value)


@pytest.mark.parametrize("path", [
    "/archive/..%2f..", "/archive/..%2F..%2Fdrip.db", "/archive/../drip.db",
    "/archive/%2e%2e", "/archive/..", "/archive/.", "/archive/2026-03-09-q-and-a.md",
    "/archive/2026-03-09-Q-AND-A", "/archive/%00", "/archive/a%0ab", "/archive/" + "a" * 3000,
    "/archive/%C3%A9t%C3%A9", "/archive/-first", "/archive/feed.xml/x", "/archive/a%20b",
    "/archive/2026-03-09-q-and-a/", "/archive//etc/passwd"])
def test_odd_names_and_path_traversal_are_not_found(server, path):
    status, body = raw(server, path)
    assert status == 404, (path, status, body[:200])


def test_a_broadcast_taken_down_in_its_file_after_it_went_disappears(on_sqlite, project):
    path = project / "broadcasts" / f"{FIRST}.md"
    path.write_text(path.read_text().replace("+++\n", "+++\narchive = false\n", 1))
    assert get(on_sqlite, f"/archive/{FIRST}").status_code == 404
    assert SUBJECTS[FIRST] not in get(on_sqlite, "/archive").text
    feed = feedparser.parse(get(on_sqlite, "/archive/feed.xml").content)
    assert [e.id for e in feed.entries] == [f"{on_sqlite.url}/archive/{PERSONAL}"]


def test_pages_are_rendered_once_cached_and_answer_head_and_if_none_match(on_sqlite):
    app = on_sqlite.app
    for _ in range(3):
        for path in ("/archive", f"/archive/{PERSONAL}", "/archive/feed.xml"):
            assert get(on_sqlite, path).status_code == 200
    assert app.archive.renders == 2             # each body once, for its page and the feed
    for path in ("/archive", f"/archive/{PERSONAL}", "/archive/feed.xml"):
        full = get(on_sqlite, path)
        tag = full.headers["ETag"]
        assert full.headers["Cache-Control"].startswith("public, max-age=")
        assert "default-src 'none'" in full.headers["Content-Security-Policy"]
        assert full.headers["X-Content-Type-Options"] == "nosniff"
        again = get(on_sqlite, path, **{"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        head = requests.head(f"{on_sqlite.url}{path}", timeout=20)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["ETag"] == tag
        assert head.headers["Content-Type"] == full.headers["Content-Type"]
        changed = get(on_sqlite, path, **{"If-None-Match": '"something-else"'})
        assert changed.status_code == 200 and changed.content == full.content
    assert app.archive.renders == 2


def test_an_empty_archive_has_a_page_and_a_valid_feed(server):
    page = get(server, "/archive")
    assert page.status_code == 200 and "application/atom+xml" in page.text
    feed = feedparser.parse(get(server, "/archive/feed.xml").content)
    assert not feed.bozo and feed.version == "atom10" and feed.entries == []
    assert feed.feed.updated_parsed


def test_a_broadcast_that_cannot_render_for_nobody_is_listed_but_its_page_is_unavailable(
        server, project):
    from tests.broadcast_support import write_broadcast
    from tests.web.archive_support import SENT_AT, add_people, send

    drip = server.drip()
    add_people(drip)
    # Sent only to readers who gave a stage: for them it renders; for nobody it cannot.
    write_broadcast(project, FIRST, subject=SUBJECTS[FIRST], segment="field:stage=" + SENTINEL["stage"],
                    body='Hi {{ subscriber.fields["stage"] }}, a letter for those who said.')
    send(drip, FIRST, SENT_AT[FIRST])
    page = get(server, f"/archive/{FIRST}")
    assert page.status_code == 503 and "not available" in page.text
    assert SENTINEL["stage"] not in page.text
    assert SUBJECTS[FIRST] in get(server, "/archive").text
    feed = feedparser.parse(get(server, "/archive/feed.xml").content)
    assert not feed.bozo and [e.title for e in feed.entries] == [SUBJECTS[FIRST]]


def test_the_archive_may_be_indexed_while_the_other_pages_may_not(archived):
    # The coach links her newsletter's archive from her site; the signup and unsubscribe
    # pages stay out of search engines.
    for path in ("/archive", f"/archive/{FIRST}"):
        assert 'name="robots"' not in get(archived, path).text, path
    assert 'content="noindex"' in get(archived, "/signup").text
