"""Broadcast files (``sender/broadcasts.py``), the ``campaign:`` segment terms, and the
``broadcasts`` table on both engines."""

from __future__ import annotations

import re
from datetime import date

import pytest

from sender import broadcasts, ledger, segments
from sender.broadcast_schedule import LocalTime
from sender.campaigns import load_campaigns
from sender.compose import compose
from sender.errors import InvalidInput, NotFound
from tests.broadcast_support import person, write_broadcast
from tests.conftest import at

# RFC 5322 dot-atom text: what a Message-ID's left part may hold.
ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def test_a_broadcast_file_loads_with_every_key(project, drip):
    write_broadcast(project, subject="Workshop", preheader="Small group", segment="tag:local",
                    when="Tue 09:00 local", archive=False, title="Bellevue workshop")
    b = broadcasts.load(drip.settings, "2026-03-10-workshop")
    assert (b.slug, b.name, b.subject, b.preheader, b.archive) == (
        "2026-03-10-workshop", "Bellevue workshop", "Workshop", "Small group", False)
    assert str(b.segment) == "tag:local" and isinstance(b.when, LocalTime)
    assert b.id == "broadcast.2026-03-10-workshop"
    assert b.steps[0].template == "@broadcasts/2026-03-10-workshop"


def test_every_problem_is_reported_at_once_with_file_and_key(project):
    path = write_broadcast(project, "Bad Name", subject="", segment="tag:", when="Tuz 9 local",
                           archive="yes", colour="blue")
    found, problems = broadcasts.load_broadcast(path)
    assert found is None
    text = "\n".join(problems)
    for key in ("colour: unknown key", "subject: required", "segment:", "when:",
                "archive: must be true or false", "the file name is the broadcast's name"):
        assert f"{path}: {key}" in text, key
    assert len(problems) == 6


def test_a_file_without_front_matter_names_its_line(project):
    folder = project / "broadcasts"
    folder.mkdir()
    (folder / "x.md").write_text("Hello\n", encoding="utf-8")
    _, problems = broadcasts.load_broadcast(folder / "x.md")
    assert problems and problems[0].startswith(f"{folder / 'x.md'}, line 1:")


def test_an_unknown_name_lists_what_there_is(project, drip):
    write_broadcast(project)
    with pytest.raises(NotFound, match="2026-03-10-workshop"):
        broadcasts.load(drip.settings, "nope")


def test_a_broadcast_id_never_collides_with_a_campaign_and_makes_a_valid_message_id(project, drip):
    write_broadcast(project)
    b = broadcasts.load(drip.settings, "2026-03-10-workshop")
    # A campaign id is its file name: lowercase letters, digits, - and _ (never a dot).
    assert all("." not in c.id for c in drip.campaigns) and "." in b.id
    someone = person(drip, "ana@example.com")
    message = compose(drip, someone, b, b.steps[0], now=at("2026-03-10T16:00Z"))
    left = message.message_id.strip("<>").split("@")[0]
    assert ATOM.fullmatch(left) and left == f"{b.id}.send.{someone.uid}"


def test_the_campaign_lookup_finds_a_broadcast_and_only_by_its_id(project, drip):
    write_broadcast(project)
    campaigns = load_campaigns(project / "campaigns", templates_dir=project / "templates")
    assert campaigns.get("broadcast.2026-03-10-workshop").subject == "A workshop in Bellevue"
    assert campaigns.get("2026-03-10-workshop") is None
    assert "broadcast.2026-03-10-workshop" not in [c.id for c in campaigns]   # never a sequence
    write_broadcast(project, subject="")              # broken now: its emails wait, named
    assert campaigns.get("broadcast.2026-03-10-workshop") is None
    assert "subject" in campaigns.broken["broadcast.2026-03-10-workshop"][0]


def test_new_writes_a_dated_file_that_loads(project, drip):
    path = broadcasts.new_file(drip.settings, 'Bellevue "spring" workshop!', today=date(2026, 3, 2))
    assert path == project / "broadcasts" / "2026-03-02-bellevue-spring-workshop.md"
    b = broadcasts.load(drip.settings, path.stem)
    assert b.subject == 'Bellevue "spring" workshop!' and b.segment is None and b.when is None
    with pytest.raises(InvalidInput, match="exists already"):
        broadcasts.new_file(drip.settings, 'Bellevue "spring" workshop!', today=date(2026, 3, 2))


# --- campaign progress in segments --------------------------------------------------------
def test_campaign_progress_terms_read_the_store_once_per_page(drip):
    ana, bo, cy = (person(drip, f"{n}@example.com") for n in ("ana", "bo", "cy"))
    now = at("2026-02-01T12:00Z")
    for who in (ana, bo):
        drip.store.enroll(who.id, "course", now)
    ledger.schedule(drip.store, [{"subscriber_id": ana.id, "campaign": "course", "step": "one",
                                  "due_at": now}], now=now)
    calls = []
    store = drip.store
    real = store.campaign_progress

    def counted(ids, campaign):
        calls.append(len(ids))
        return real(ids, campaign)

    store.campaign_progress = counted
    try:
        pick = lambda text: sorted(s.email for s in segments.select(store, segments.parse_segment(text)))  # noqa: E731
        assert pick("campaign:course") == ["ana@example.com", "bo@example.com"]
        assert pick("campaign:course=active") == ["ana@example.com"]
        assert pick("campaign:course=finished") == ["bo@example.com"]
        assert pick("not campaign:course") == ["cy@example.com"]
    finally:
        del store.campaign_progress
    assert calls == [3, 3, 3, 3]       # one query for the page of three, each time


def test_campaign_progress_is_refused_where_no_store_is_at_hand():
    with pytest.raises(InvalidInput, match="campaign progress cannot be used here"):
        segments.parse_segment("campaign:course", progress=False)
    with pytest.raises(InvalidInput, match="campaign:ID=active"):
        segments.parse_segment("campaign:course=halfway")


# --- the broadcasts table, on both engines ------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request, env):
    if request.param == "sqlite":
        return env
    return {**env, "DRIP_DATABASE": request.getfixturevalue("postgres_url")}


def test_the_table_keeps_a_schedule_until_rows_are_written(store_env, make_drip):
    store = make_drip(store_env).store
    now = at("2026-03-05T12:00Z")
    saved = dict(campaign="broadcast.x", subject="S", when_text="Tue 09:00 local",
                 local_day="2026-03-10", first_at=at("2026-03-09T19:00Z"),
                 last_at=at("2026-03-10T21:00Z"), segment=None, archive=True, now=now)
    assert store.save_broadcast("x", **saved)
    assert store.save_broadcast("x", **{**saved, "subject": "Moved"})      # not started: moves
    record = store.get_broadcast("x")
    assert (record["subject"], record["state"], record["first_at"]) == (
        "Moved", "scheduled", at("2026-03-09T19:00Z"))
    assert store.update_broadcast("x", expect_state="scheduled", now=now, state="sending",
                                  audience=3, source="+++", started_at=now)
    assert not store.update_broadcast("x", expect_state="scheduled", now=now, state="sending")
    assert not store.save_broadcast("x", **saved)                         # started: left alone
    assert store.update_broadcast("x", expect_state="sending", now=now, state="sent",
                                  finished_at=now)
    [sent] = store.sent_broadcasts()
    assert (sent["name"], sent["started_at"], sent["source"]) == ("x", now, "+++")
    assert [r["name"] for r in store.list_broadcasts(states=("sent",))] == ["x"]


@pytest.mark.parametrize(("value", "words"), [
    ("=?utf-8?q?Hi=0D=0ABcc:_x@evil.com?=", "encoded word"),
    ("Hi\\u0000there", "control character"),
    ("A" * 1_000_000, "at most 300 characters"),
])
def test_a_subject_that_could_never_be_a_header_is_refused_at_load(project, value, words):
    # Before, the file loaded and `drip broadcast send` wrote its rows; each email then failed
    # at send time, one by one.
    path = write_broadcast(project, "2026-03-10-bad", subject=value, preheader=value)
    found, problems = broadcasts.load_broadcast(path)
    assert found is None
    assert any(p.startswith(f"{path}: subject: ") and words in p for p in problems), problems
    assert any(p.startswith(f"{path}: preheader: ") for p in problems), problems
    assert all(len(p) < 400 for p in problems)             # the value is not echoed whole
