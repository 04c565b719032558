"""What the broadcast tests share: writing a broadcast file into the test project, and people
added straight to the store (active, no sequence of their own unless asked)."""

from __future__ import annotations

import shutil

from sender.models import Consent
from tests.support import REPO, at

SCHEDULED_AT = at("2026-03-05T12:00Z")     # a Thursday: "Tue 09:00 local" is 10 March
ZONES = {"la": "America/Los_Angeles", "london": "Europe/London", "tokyo": "Asia/Tokyo",
         "kolkata": "Asia/Kolkata", "chatham": "Pacific/Chatham"}
# Tuesday 10 March 2026 at 09:00 in each zone, in UTC.
NINE_LOCAL = {"la": at("2026-03-10T16:00Z"), "london": at("2026-03-10T09:00Z"),
              "tokyo": at("2026-03-10T00:00Z"), "kolkata": at("2026-03-10T03:30Z"),
              "chatham": at("2026-03-09T19:15Z")}


def with_macros(project):
    """The shipped building blocks (``m.button`` ...), which a Markdown body imports."""
    target = project / "templates" / "emails" / "_macros.html"
    if not target.exists():
        shutil.copy(REPO / "templates" / "emails" / "_macros.html", target)
    return project


def write_broadcast(project, name="2026-03-10-workshop", *, body=None, **front):
    """``project/broadcasts/NAME.md`` with ``front`` as its TOML front matter."""
    with_macros(project)
    folder = project / "broadcasts"
    folder.mkdir(exist_ok=True)
    front = {"subject": "A workshop in Bellevue", **front}
    lines = ["+++"]
    for key, value in front.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        else:
            lines.append(f'{key} = "{value}"')
    lines += ["+++", "", body or 'Hi {{ subscriber.first_name or "there" }},\n\nSee you on the mat.']
    path = folder / f"{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def person(drip, email, *, timezone=None, tags=(), fields=None, status="active", now=None):
    """A subscriber added straight to the store (no enrolment, so no sequence email)."""
    now = now or at("2026-02-01T12:00Z")
    return drip.store.add_subscriber(
        email, name=email.split("@")[0].title(), timezone=timezone, tags=list(tags),
        fields=dict(fields or {}), status=status,
        consent=Consent(source="test", at=now, confirmed_at=now if status != "pending" else None),
        now=now)
