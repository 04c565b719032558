"""Segments: the syntax, what each term matches, paging, campaign entry, list and plan."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sender.campaigns import load_campaign
from sender.errors import InvalidInput
from sender.models import Subscriber
from sender.segments import combine, parse_segment, select
from sender.subscribers import add_subscriber
from tests.conftest import at
from tests.lists.conftest import NOW


def person(**kwargs):
    defaults = dict(id=1, uid="u", email="a@example.com", name="A", timezone=None,
                    status="active", tags=["postpartum"], fields={"stage": "postpartum"},
                    created_at=at("2026-02-01T12:00Z"))
    defaults.update(kwargs)
    return Subscriber(**defaults)


@pytest.mark.parametrize("text, matches", [
    ("tag:postpartum", True),
    ("tag:pregnant", False),
    ("not tag:pregnant", True),
    ("field:stage=postpartum", True),
    ("field:stage=pregnant", False),
    ("field:stage", True),
    ("field:city", False),
    ("not field:city", True),
    ('field:city="New York"', False),
    ("status:active", True),
    ("status:paused", False),
    ("signup>=2026-02-01", True),
    ("signup>2026-02-01T12:00Z", False),
    ("signup<2026-02-02", True),
    ("signup<=2026-02-01T12:00:00+00:00", True),
    ("tag:postpartum and field:stage=postpartum and status:active and signup>=2026-01-01", True),
    ("tag:postpartum AND not status:active", False),
])
def test_terms(text, matches):
    assert parse_segment(text).matches(person()) is matches


@pytest.mark.parametrize("text, matches", [
    ("tag:pregnant or tag:postpartum", True),
    ("tag:pregnant or field:stage=pregnant", False),
    ("not field:stage=postpartum or field:due_date", False),
    ("field:stage=pregnant and tag:x or status:active and tag:postpartum", True),  # and binds first
    ("field:stage=pregnant and tag:postpartum or tag:x", False),
])
def test_or_joins_alternatives_with_and_binding_tighter(text, matches):
    assert parse_segment(text).matches(person()) is matches


def test_the_glute_entry_leaves_out_only_pregnant_readers_who_gave_no_date():
    entry = parse_segment("not field:stage=pregnant or field:due_date or field:birth_date")
    assert entry.matches(person(fields={}))
    assert entry.matches(person(fields={"stage": "postpartum"}))
    assert entry.matches(person(fields={"stage": "pregnant", "due_date": "2026-06-01"}))
    assert not entry.matches(person(fields={"stage": "pregnant"}))


def test_a_shortcut_applies_to_every_alternative():
    segment = combine("tag:a or tag:b", status="active")
    assert not segment.matches(person(tags=["a"], status="paused"))
    assert segment.matches(person(tags=["b"], status="active"))
    # Only what every alternative requires may filter in the store.
    assert segment.prefilter() == {"status": "active"}
    assert combine("tag:a or tag:a and signup>=2026-01-01").prefilter() == {"tag": "a"}


def test_quoted_values():
    assert parse_segment('field:city="New York"').matches(person(fields={"city": "New York"}))


@pytest.mark.parametrize("text, message", [
    ("", "the segment is empty"),
    ("tag:a tag:b", "expected 'and' or 'or' before 'tag:b'"),
    ("or tag:b", "starts with 'or'"),
    ("tag:a or", "ends with 'or'"),
    ("tag:a and or tag:b", "'and' before 'or'"),
    ("tag:a and", "ends with 'and'"),
    ("colour:red", "'colour:red' is not a term"),
    ("status:gone", "status 'gone' is not one of pending, active"),
    ("signup>=yesterday", "'yesterday' is not a date (2026-01-31)"),
    ("signup>=2026-01-01T09:00", "or a time with its zone"),
    ("field:=x", "needs a field name"),
    ('field:city="New', "No closing quotation"),
])
def test_syntax_errors_say_what_is_wrong(text, message):
    with pytest.raises(InvalidInput) as failure:
        parse_segment(text)
    assert message in str(failure.value)


def test_combine_and_prefilter():
    segment = combine("signup>=2026-01-01 and signup<2026-03-01 and not tag:x", status="active",
                      tag="y")
    assert segment.prefilter() == {"status": "active", "tag": "y",
                                   "created_from": at("2026-01-01T00:00Z"),
                                   "created_before": at("2026-03-01T00:00Z")}
    assert combine(None) is None


def test_select_walks_pages_and_filters(drip):
    for i in range(7):
        add_subscriber(drip, f"p{i}@example.com", now=NOW + timedelta(days=i), confirmed=True,
                       tags=["even"] if i % 2 == 0 else ["odd"], fields={"n": str(i)})
    store = drip.store
    assert len(list(select(store, page=2))) == 7
    chosen = select(store, parse_segment("tag:even and not field:n=4 and signup<2026-03-08"),
                    page=2)
    assert [p.email for p in chosen] == ["p0@example.com", "p2@example.com"]


def test_campaign_entry_segment(drip, project):
    (project / "campaigns" / "course.toml").write_text(
        (project / "campaigns" / "course.toml").read_text().replace(
            '[entry]\non = "confirm"', '[entry]\non = "confirm"\n'
            'segment = "tag:postpartum and field:stage=postpartum"'), encoding="utf-8")
    add_subscriber(drip, "in@example.com", now=NOW, confirmed=True, tags=["postpartum"],
                   fields={"stage": "postpartum"})
    add_subscriber(drip, "out@example.com", now=NOW, confirmed=True, tags=["postpartum"],
                   fields={"stage": "pregnant"})
    enrolled = {(drip.store.get_subscriber(id=e.subscriber_id).email, e.campaign)
                for e in drip.store.enrollments()}
    assert enrolled == {("in@example.com", "course"), ("in@example.com", "welcome"),
                        ("out@example.com", "welcome")}


def test_bad_campaign_segment_is_a_campaign_problem(project):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text().replace('[entry]\non = "confirm"',
                                             '[entry]\non = "confirm"\nsegment = "tag:a tag:b"'))
    campaign, problems = load_campaign(path)
    assert campaign is None
    assert problems == [f"{path}: entry.segment: segment 'tag:a tag:b': expected 'and' or 'or' "
                        "before 'tag:b'; " + problems[0].split("; ", 1)[1]]


def test_list_and_plan_with_a_segment(run, drip):
    add_subscriber(drip, "a@example.com", now=NOW, confirmed=True, tags=["vip"])
    add_subscriber(drip, "b@example.com", now=NOW, confirmed=True)
    listed = run("subscribers", "list", "--segment", "tag:vip", "--json")
    assert [p["email"] for p in json.loads(listed.output)] == ["a@example.com"]
    planned = run("plan", "--days", "30", "--now", "2026-03-02T10:00Z", "--segment", "tag:vip",
                  "--json")
    emails = {r["email"] for r in json.loads(planned.output)["upcoming"]}
    assert emails == {"a@example.com"}
    everyone = run("plan", "--days", "30", "--now", "2026-03-02T10:00Z", "--json", "--limit", "2")
    assert len(json.loads(everyone.output)["upcoming"]) == 2
