"""The dashboard's pages. Each one reads through the library, or changes something through
the same function the command line uses (``subscribers``, ``lists``, ``events``, ``brake``),
and writes what it changed, by whom, to the audit log. Every change is a POST from a form
that carries the session's CSRF token (checked in ``routes.py`` before any view runs).
"""

from __future__ import annotations

import json
from functools import lru_cache
from zoneinfo import available_timezones

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from ... import brake, browse, erasure, joining, lists
from ... import subscribers as subscriber_ops
from ...errors import DripError, InvalidInput
from ...events import record_unsubscribe
from ...message import normalize_email
from ...models import ENDED_STATUSES, PENDING_STATES, SUBSCRIBER_STATUSES
from ...segments import HELP as SEGMENT_HELP
from ...segments import parse_segment
from ...timeline import timeline
from . import charts, data

# What a finished action says on the page it leads to (only these words: nothing from the
# address bar is shown).
DONE = {
    "paused": "Paused. Her pending emails are held until you resume her.",
    "resumed": "Resumed. Her pending emails moved later by the time she was paused.",
    "unsubscribed": "Unsubscribed. Every pending email of hers was cancelled.",
    "erased": "Erased. Only a one-way hash of the address is kept, so that no import adds "
              "her again by mistake.",
    "added-pending": "Added. She gets the confirmation email now, and her emails start when "
                     "she confirms.",
    "added-active": "Added and confirmed. Her emails have started.",
    "campaign-resumed": "The campaign sends again.",
}
PAST = {"pause": "paused", "resume": "resumed", "unsubscribe": "unsubscribed"}
ACTIONS = {
    "pause": ("Pause", "Her pending emails are held (none is sent) until you resume her; "
                       "resuming moves them later by the time she was paused."),
    "resume": ("Resume", "Her pending emails start again, each moved later by the time she "
                         "was paused."),
    "unsubscribe": ("Unsubscribe", "Every pending email of hers is cancelled at once and she "
                                   "gets nothing more unless she signs up again herself."),
    "erase": ("Erase", "Her record, consent, emails and events are deleted for good; only a "
                       "one-way hash of the address is kept so that no import adds her again. "
                       "This cannot be undone."),
}

# Ids from the address bar beyond what a database column holds are nobody's.
MAX_ID = 2**63 - 1


def allowed(action, person):
    return {"pause": person.status == "active", "resume": person.status == "paused",
            "unsubscribe": person.status not in ENDED_STATUSES, "erase": True}[action]


def _person(ctx, sid):
    person = ctx.drip.store.get_subscriber(id=sid)
    if person is None:
        raise NotFound()
    return person


# --- overview --------------------------------------------------------------------------------
def overview(ctx):
    period = "week" if ctx.request.args.get("period") == "week" else "day"
    shown = data.overview(ctx.drip, now=ctx.now, period=period)
    unit = "week" if period == "week" else "day"
    for series in shown["series"]:
        series["chart"] = charts.bars(series["counts"], shown["labels"],
                                      title=f"{series['title']} per {unit}")
    return ctx.page("overview.html", title="Overview", nav="overview", data=shown,
                    statuses=SUBSCRIBER_STATUSES)


# --- the list ----------------------------------------------------------------------------------
def subscribers(ctx):
    args = ctx.request.args
    text = "".join(c for c in args.get("q", "")[:200] if ord(c) >= 32 and ord(c) != 127)
    segment_text = args.get("segment", "")[:500]
    try:
        after = min(max(int(args.get("after") or 0), 0), MAX_ID)
    except ValueError:
        after = 0
    problem, result = None, None
    try:
        segment = parse_segment(segment_text) if segment_text.strip() else None
        result = browse.page(ctx.drip.store, segment=segment, text=text, after=after)
    except InvalidInput as exc:
        problem = str(exc)
    return ctx.page("subscribers.html", 400 if problem else 200, title="Subscribers",
                    nav="subscribers", q=text, segment=segment_text, after=after,
                    result=result, problem=problem, statuses=SUBSCRIBER_STATUSES,
                    segment_help=SEGMENT_HELP, done=DONE.get(args.get("done", "")))


# --- one subscriber ----------------------------------------------------------------------------
def subscriber(ctx, sid):
    person = _person(ctx, sid)
    line = timeline(ctx.drip, person, now=ctx.now)
    ctx.audit("view subscriber", subscriber_id=person.id)
    history = ctx.drip.store.audit_log(limit=20, subscriber_id=person.id)
    return ctx.page("subscriber.html", title=person.email, nav="subscribers", person=person,
                    line=line, history=history, done=DONE.get(ctx.request.args.get("done", "")),
                    actions=[a for a in ACTIONS if allowed(a, person)], labels=ACTIONS)


def data_download(ctx, sid):
    person = _person(ctx, sid)
    body = json.dumps(lists.person_data(ctx.drip, person.email), indent=2, ensure_ascii=False)
    ctx.audit("download data", subscriber_id=person.id)
    response = Response(body, content_type="application/json; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="subscriber-{person.id}.json"'
    return response


def act(ctx, sid, action):
    person = _person(ctx, sid)
    label, meaning = ACTIONS[action]
    pending = len(list(ctx.drip.store.deliveries(subscriber_id=person.id, states=PENDING_STATES)))

    def confirm_page(status=200, problem=None):
        return ctx.page("confirm.html", status, title=f"{label} {person.email}?",
                        nav="subscribers", person=person, action=action, label=label,
                        meaning=meaning, pending=pending, problem=problem,
                        possible=allowed(action, person))

    if ctx.request.method != "POST":
        return confirm_page()
    if not allowed(action, person):
        return confirm_page(409, f"She is {person.status}, so there is nothing to {action}.")
    drip, now = ctx.drip, ctx.now
    if action == "erase":
        try:
            typed = normalize_email(ctx.request.form.get("email", "")[:320])
        except InvalidInput:
            typed = None
        if typed != person.email:
            return confirm_page(400, "Type her address exactly as shown to erase her.")
        erased = erasure.erase(drip, person.email, now=now)
        ctx.audit("erase", subscriber_id=person.id,
                  details={**erased.deleted, "files_removed": erased.files_removed})
        return ctx.go("/subscribers?done=erased")
    if action == "pause":
        subscriber_ops.pause(drip, person, now=now)
        details = {"pending": pending}
    elif action == "resume":
        subscriber_ops.resume(drip, person, now=now)
        details = {"pending": pending}
    else:
        details = {"cancelled": record_unsubscribe(drip, person, now=now, source="dashboard")}
    ctx.audit(action, subscriber_id=person.id, details=details)
    return ctx.go(f"/subscribers/{person.id}?done={PAST[action]}")


# --- add one by hand ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def zones():
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def add(ctx):
    form = ctx.request.form
    values = {key: form.get(key, "")[:limit] for key, limit in (
        ("email", 320), ("name", 200), ("timezone", 64), ("tags", 500), ("fields", 5000),
        ("consent", 500))}
    values["confirmed"] = form.get("confirmed") == "yes"

    def form_page(status=200, problem=None, existing=None):
        return ctx.page("add.html", status, title="Add a subscriber", nav="add", values=values,
                        problem=problem, existing=existing, zones=zones(),
                        default_zone=ctx.drip.settings.timezone_name)

    if ctx.request.method != "POST":
        return form_page()
    drip = ctx.drip
    try:
        consent = values["consent"].strip()
        if not consent:
            raise InvalidInput("say how she agreed to get these emails (for example: asked me "
                               "in person after class on 3 March)")
        joining.check_text("consent", consent)
        existing = subscriber_ops.find(drip, values["email"])
        if existing is not None:
            return form_page(409, f"{existing.email} is on the list already.", existing)
        result = subscriber_ops.add_subscriber(
            drip, values["email"], now=ctx.now, name=values["name"] or None,
            timezone=values["timezone"].strip() or None,
            tags=values["tags"].replace(",", " ").split(),
            fields=joining.parse_fields(
                [line for line in values["fields"].splitlines() if line.strip()]),
            consent_source=consent, confirmed=values["confirmed"])
    except DripError as exc:
        return form_page(400, str(exc))
    person = result.subscriber
    ctx.audit("add subscriber", subscriber_id=person.id,
              details={"status": person.status, "enrolled": result.enrolled})
    ctx.admin.web.send_soon(person.id)     # the confirmation, or the welcome email
    done = "added-active" if person.status == "active" else "added-pending"
    return ctx.go(f"/subscribers/{person.id}?done={done}")


# --- campaigns and the brake -------------------------------------------------------------------
def campaigns(ctx):
    shown = data.campaigns(ctx.drip, now=ctx.now)
    for campaign in shown["campaigns"]:
        counted = campaign["steps"] + campaign["removed"]
        campaign["funnel"] = charts.funnel(counted, title=f"{campaign['name']}: sent and opened "
                                           "per step") if counted else None
    return ctx.page("campaigns.html", title="Campaigns", nav="campaigns", data=shown,
                    done=DONE.get(ctx.request.args.get("done", "")))


def brake_resume(ctx, cid):
    paused = {b["campaign"]: b for b in brake.active(ctx.drip.store)}
    if cid not in paused:
        raise NotFound()
    if ctx.request.method != "POST":
        return ctx.page("resume_campaign.html", title=f"Let {cid} send again?", nav="campaigns",
                        entry=paused[cid])
    waiting = brake.resume(ctx.drip, cid, now=ctx.now)
    ctx.audit("resume campaign", target=cid, details={"waiting": waiting})
    return ctx.go("/campaigns?done=campaign-resumed")


# --- the audit log -----------------------------------------------------------------------------
def activity(ctx):
    try:
        before = int(ctx.request.args["before"]) if "before" in ctx.request.args else None
    except ValueError:
        before = None
    if before is not None:
        before = min(max(before, 0), MAX_ID)
    entries = ctx.drip.store.audit_log(limit=100, before_id=before)
    people = ctx.drip.store.get_subscribers(
        [e["subscriber_id"] for e in entries if e["subscriber_id"] is not None])
    return ctx.page("activity.html", title="Activity", nav="activity", entries=entries,
                    people=people, more=entries[-1]["id"] if len(entries) == 100 else None)
