"""`drip enroll`: existing subscribers into a campaign, e.g. one added after they signed up.

Who goes in, and when each one's first email is due, comes from ``plan.enrolment`` (the
planning `drip plan` uses); enrolling is ``sequence.enroll``, as on confirming, so each
enrolment schedules its whole sequence at once. Only active subscribers whom the campaign's
entry accepts go in; an existing enrolment is never touched, so running it twice enrols
nobody the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import plan
from .errors import InvalidInput, NotFound
from .sequence import enroll


@dataclass
class EnrolResult:
    campaign: str
    dry_run: bool
    enrolled: list = field(default_factory=list)   # PlannedEmail: each one's first email
    already: list = field(default_factory=list)    # addresses enrolled before, left alone
    left_out: dict = field(default_factory=dict)   # why (a status, "not_accepted") -> how many

    def to_dict(self):
        return {"campaign": self.campaign, "dry_run": self.dry_run,
                "enrolled": [e.to_dict() for e in self.enrolled],
                "already_enrolled": list(self.already), "left_out": dict(self.left_out)}


def target(drip, campaign_id):
    """The campaign people may be enrolled in by hand; a clear error otherwise."""
    campaign = drip.campaigns.get(campaign_id)
    if campaign is None:
        known = ", ".join(c.id for c in drip.campaigns) or "none"
        raise NotFound(f"no campaign {campaign_id!r} (there are: {known}; see `drip campaigns`)")
    if campaign.entry_on == "signup":
        raise InvalidInput(f"{campaign_id} is the confirmation campaign: it goes to people as "
                           "they sign up, so no one is enrolled in it by hand")
    return campaign


def enroll_segment(drip, campaign_id, segment, *, now, dry_run=False):
    """Enrol the active subscribers in ``segment`` that ``campaign_id`` accepts and that are
    not in it yet, at ``now``; with ``dry_run`` only say who and when. An EnrolResult."""
    campaign = target(drip, campaign_id)
    planned = plan.enrolment(drip, campaign, segment, now=now)
    result = EnrolResult(campaign.id, dry_run, already=planned.already,
                         left_out=planned.left_out)
    store = drip.store
    for person, first in planned.enrol:
        if dry_run:
            result.enrolled.append(first)
            continue
        with store.transaction():
            current = store.get_subscriber(id=person.id)   # it may have changed since the plan
            if current is None or current.status != "active":
                why = current.status if current else "erased"
                result.left_out[why] = result.left_out.get(why, 0) + 1
            elif enroll(drip, current, campaign, now):
                result.enrolled.append(first)
            else:
                result.already.append(person.email)      # enrolled meanwhile, elsewhere
    return result
