"""What the archive tests share: broadcasts sent through the real engine to the outbox, and a
subscriber whose values are easy to find anywhere they might leak.

``send_all`` leaves, in the store the web app reads:

* FIRST (sent 2 March) and PERSONAL (sent 9 March, its body using every value of the person
  it goes to, its subject and preheader full of characters HTML and XML must escape): in
  the archive;
* PRIVATE (sent 5 March with ``archive = false``): never in it;
* LATER (scheduled for 20 March), DROPPED (its rows written, then cancelled before any went)
  and GOING (its rows written, none sent yet): not sent, so not in it either.
"""

from __future__ import annotations

from datetime import timedelta

from sender import broadcast_runs as runs
from sender import broadcasts
from sender.dispatch import send_due
from sender.models import Consent
from tests.broadcast_support import write_broadcast
from tests.conftest import at

FIRST, PERSONAL, PRIVATE = "2026-03-02-first-news", "2026-03-09-q-and-a", "2026-03-05-private"
LATER, DROPPED, GOING = "2026-03-20-later", "2026-03-06-dropped", "2026-03-10-going"
SENT_AT = {FIRST: at("2026-03-02T17:00Z"), PRIVATE: at("2026-03-05T17:00Z"),
           PERSONAL: at("2026-03-09T17:00Z")}
SUBJECTS = {FIRST: "First news from the studio", PERSONAL: "Q&A: <b>strong</b> glutes & you",
            PRIVATE: "Only for the list, never public", LATER: "A later letter",
            DROPPED: "A dropped letter", GOING: "A letter on its way"}
PREHEADERS = {FIRST: "Where the studio is going this spring.",
              PERSONAL: "Answers in <3 minutes & a button"}

# Her values: each distinctive enough that finding it anywhere means it leaked.
SENTINEL = {"name": "Zephyrine Quillfeather", "email": "zq.sentinel7731@example.com",
            "stage": "sentinelstage4412", "tag": "sentineltag9"}
SECOND = {"name": "Ottoline Marchbanks", "email": "om.sentinel5518@example.com"}

PERSONAL_BODY = """## Notes for {{ subscriber.first_name or "every reader" }}

Hi {{ subscriber.first_name or "there" }},

Name: {{ subscriber.name or "nobody" }}; email: {{ subscriber.email or "none" }};
stage: {{ subscriber.fields.get("stage") or "unknown" }}; tags: {{ subscriber.tags | join(",") or "none" }}.

{% if subscriber.fields.get("stage") == "sentinelstage4412" %}
A paragraph only she sees.
{% endif %}

[Leave the list]({{ unsubscribe_url }}) whenever you like.

{{ m.button(coach.booking_url, "Save a spot") }}

{% call m.callout("Good to know") %}
A short walk **counts**.
{% endcall %}
"""

EVERY_READER = "Notes for every reader"
NEUTRAL_LINE = "Name: nobody; email: none;"


def personal_values(drip):
    """Every value of the two subscribers, and their unsubscribe tokens' links."""
    from sender.compose import unsubscribe_url

    found = [*SENTINEL.values(), *SECOND.values(), "Zephyrine", "Ottoline"]
    for email in (SENTINEL["email"], SECOND["email"]):
        found.append(unsubscribe_url(drip, drip.store.get_subscriber(email=email)))
    return found


def add_people(drip):
    now = at("2026-02-01T12:00Z")
    consent = Consent(source="test", at=now, confirmed_at=now)
    drip.store.add_subscriber(SENTINEL["email"], name=SENTINEL["name"], timezone=None,
                              tags=[SENTINEL["tag"]], fields={"stage": SENTINEL["stage"]},
                              status="active", consent=consent, now=now)
    drip.store.add_subscriber(SECOND["email"], name=SECOND["name"], timezone="Europe/London",
                              tags=[], fields={}, status="active", consent=consent, now=now)


def send(drip, name, now):
    """`drip broadcast send NAME`, then `drip send` until it is sent."""
    runs.send_now(drip, broadcasts.load(drip.settings, name), now=now)
    send_due(drip, now=now)
    send_due(drip, now=now + timedelta(minutes=5))
    assert drip.store.get_broadcast(name)["state"] == "sent"


def send_all(drip, project):
    add_people(drip)
    write_broadcast(project, FIRST, subject=SUBJECTS[FIRST], preheader=PREHEADERS[FIRST],
                    body='Hi {{ subscriber.first_name or "there" }},\n\nThe *first* letter.')
    write_broadcast(project, PRIVATE, subject=SUBJECTS[PRIVATE], archive=False,
                    body="Hi {{ subscriber.first_name }}, this one stays in the inbox.")
    write_broadcast(project, PERSONAL, subject=SUBJECTS[PERSONAL],
                    preheader=PREHEADERS[PERSONAL], body=PERSONAL_BODY)
    for name in (LATER, DROPPED, GOING):
        write_broadcast(project, name, subject=SUBJECTS[name], body="Not sent (yet).")
    send(drip, FIRST, SENT_AT[FIRST])
    send(drip, PRIVATE, SENT_AT[PRIVATE])
    send(drip, PERSONAL, SENT_AT[PERSONAL])
    now = at("2026-03-10T17:00Z")
    runs.send_now(drip, broadcasts.load(drip.settings, DROPPED), now=now)
    runs.cancel(drip, DROPPED, now=now)
    runs.send_now(drip, broadcasts.load(drip.settings, GOING), now=now)
    runs.schedule(drip, broadcasts.load(drip.settings, LATER), "2026-03-20T17:00Z", now=now)
    states = {name: drip.store.get_broadcast(name)["state"] for name in SUBJECTS}
    assert states == {FIRST: "sent", PERSONAL: "sent", PRIVATE: "sent", LATER: "scheduled",
                      DROPPED: "cancelled", GOING: "sending"}
