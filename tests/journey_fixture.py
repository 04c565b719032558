"""A campaign that uses every per-step rule (a condition on a field, a condition on a click,
A/B subjects) and a goal that ends it, written into the test project for the tests of
issue 13 (tests/test_journeys.py, tests/test_campaign_graph.py, the race in
tests/reliability/test_two_senders.py)."""

from __future__ import annotations

from tests.support import at

SIGNUP = at("2026-03-02T18:00Z")       # Monday 10:00 in Los Angeles

JOURNEY = """window = "always"

[campaign]
name = "Journey"
exit = "{exit}"

[entry]
on = "confirm"

[[steps]]
id = "intro"
template = "course/one"
subject = "Intro"
delay = "1h"

[[steps]]
id = "pregnant"
template = "course/one"
subject = "For your pregnancy"
delay = "2d"
when = "field:stage=pregnant"

[[steps]]
id = "postpartum"
template = "course/two"
subject = "After the birth"
delay = "0"
when = "not field:stage=pregnant"

[[steps]]
id = "booking"
template = "course/two"
subjects = ["Book a call", "Your next step, {{{{ subscriber.first_name or 'friend' }}}}"]
delay = "2d"

[[steps]]
id = "last"
template = "course/one"
subject = "Since you looked"
delay = "2d"
when = "clicked:journey/booking"
"""

# When each step falls due for someone enrolled at SIGNUP (the window is "always").
DUE = {"intro": "2026-03-02T19:00Z", "pregnant": "2026-03-04T19:00Z",
       "postpartum": "2026-03-04T19:00Z", "booking": "2026-03-06T19:00Z",
       "last": "2026-03-08T18:00Z"}   # days count on her clock: DST began


def journey_project(project, *, exit="tag:client"):
    """Only the confirmation campaign and the journey, so no other campaign's email takes
    part in the minimum gap."""
    for other in ("course", "welcome"):
        (project / "campaigns" / f"{other}.toml").unlink()
    (project / "campaigns" / "journey.toml").write_text(JOURNEY.format(exit=exit),
                                                        encoding="utf-8")
    return project
