"""The rules of a campaign step beyond its timing, in one place: does a step apply to her
when it falls due (its ``when`` segment), has she reached the campaign's goal (its ``exit``
segment), and which subject of an A/B step is hers. Pure: no store, no clock; what a
segment needs from the store (campaign progress, clicks) comes in as ``facts``, looked up
once per batch (``batch_facts``).

Who asks:

- the send path (``dispatch._send_batch``) calls ``decide`` for each claimed delivery:
  None sends it; otherwise the ledger records the decision (skipped with
  CONDITION_NOT_MET, or cancelled with GOAL_REACHED, with the segment in the message);
- the life-cycle paths (``subscribers.reach_goals``: a tag added, a click recorded) call
  ``goals_reached`` to end a sequence at once;
- ``compose`` calls ``chosen_step`` so the message carries her subject;
- ``drip report`` (``ab_report.py``) and the graph (``campaign_graph.py``) read the same
  functions, so what they show is what was sent.

A decision is a verdict about one step for one person; later rules (a branch into another
campaign, a sunset) are further verdicts returned from ``decide``, in the order written there.
The sunset rule's verdicts (WAIT, ASK, STOP: ``sunset.py``) are worked out for the batch by
``sunset.batch_facts`` and found here under ``SUNSET_FACT``; they apply to the emails that
count toward it (``sunset_counts``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import string
from dataclasses import dataclass

from .identity import TRANSACTIONAL, stream_of
from .ledger import CONDITION_NOT_MET, GOAL_REACHED
from .segments import Segment
from .sunset_email import is_question

# The A/B draw's key. It is fixed on purpose: a secret that can be rotated would move
# people between variants (and change the bytes of a retried request).
VARIANT_KEY = b"drip/ab-subject/v1"

SKIP, CANCEL = "skip", "cancel"
# The sunset rule's: this email waits for her answer (WAIT); it waits and she is asked
# "still want these?" (ASK); she did not answer in time, her mail stops (STOP).
WAIT, ASK, STOP = "wait", "ask", "stop"
SUNSET_ACTIONS = (WAIT, ASK, STOP)
SUNSET_FACT = "sunset"      # the key of the sunset verdicts in ``facts``: {subscriber id: Decision}


@dataclass(frozen=True)
class Decision:
    """What becomes of a due step for one person instead of sending it."""

    action: str      # SKIP (this step only), CANCEL (this and her other pending steps of the
                     # campaign), or the sunset rule's WAIT, ASK, STOP
    code: str        # the ledger's reason code
    message: str     # for people: names the rule that decided
    due: object = None   # WAIT and ASK: when the email is looked at again
    ask: str | None = None   # ASK: the step id of the question to send her


# --- which subject ------------------------------------------------------------------------
def variant_index(campaign_id, step_id, subscriber_id, count):
    """Which of ``count`` variants a subscriber gets: a keyed hash of (campaign, step,
    subscriber id), so the same on every retry and render, independent between steps."""
    digest = hashlib.blake2b(f"{campaign_id}\x1f{step_id}\x1f{subscriber_id}".encode(),
                             key=VARIANT_KEY, digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def variant_label(index):
    return string.ascii_uppercase[index] if index < 26 else f"V{index + 1}"


def subject_for(campaign, step, subscriber):
    """The subject text (a template) this subscriber gets for ``step``."""
    subjects = getattr(step, "subjects", ())
    if not subjects:
        return step.subject
    return subjects[variant_index(campaign.id, step.id, subscriber.id, len(subjects))]


def chosen_step(campaign, step, subscriber):
    """``step`` with her subject in ``subject`` (the step itself when it has one subject), so
    each variant renders once and is reused for everyone who gets it."""
    if not getattr(step, "subjects", ()):
        return step
    subject = subject_for(campaign, step, subscriber)
    return step if subject == step.subject else dataclasses.replace(step, subject=subject)


def variants_of(step):
    """The step once per subject (each with that one subject and no draw left to make), for
    whatever must see every variant (``drip check``, a preview): [step] for a step with one
    subject."""
    subjects = getattr(step, "subjects", ())
    return [dataclasses.replace(step, subject=s, subjects=()) for s in subjects] if subjects else [step]


# --- conditions and goals -------------------------------------------------------------------
def goal_of(campaign):
    return getattr(campaign, "goal", None)


def condition_of(step):
    return getattr(step, "when", None)


def goal_message(campaign):
    return f"goal reached: exit = {str(goal_of(campaign))!r}"


def condition_message(step):
    return f"condition not met: when = {str(condition_of(step))!r}"


def decide(campaign, step, subscriber, facts):
    """None: the step goes to her. Otherwise the Decision: the campaign's goal first (she is
    done with the whole campaign), then the step's own condition, then the sunset rule's
    verdict for her (in ``facts``, when the rule is on and this email counts)."""
    goal = goal_of(campaign)
    if goal is not None and goal.matches(subscriber, facts):
        return Decision(CANCEL, GOAL_REACHED, goal_message(campaign))
    when = condition_of(step)
    if when is not None and not when.matches(subscriber, facts):
        return Decision(SKIP, CONDITION_NOT_MET, condition_message(step))
    verdicts = facts.get(SUNSET_FACT)
    if verdicts and sunset_counts(campaign, step):
        return verdicts.get(subscriber.id)
    return None


def sunset_counts(campaign, step):
    """Whether an email of ``step`` counts toward the sunset rule (and so waits while her
    question is out): every email but the confirmation, the welcome email (both
    transactional) and the question itself. Broadcasts count."""
    return not is_question(campaign) and stream_of(campaign, step) != TRANSACTIONAL


def goals_reached(campaigns, subscriber, facts):
    """The campaigns among ``campaigns`` whose goal ``subscriber`` has reached."""
    return [c for c in campaigns if goal_of(c) is not None and goal_of(c).matches(subscriber, facts)]


def segments_of(pairs):
    """Every rule segment of these (campaign, step) pairs (step None: the campaign's goal)."""
    found = []
    for campaign, step in pairs:
        for segment in (goal_of(campaign), condition_of(step) if step is not None else None):
            if segment is not None and segment not in found:
                found.append(segment)
    return found


def batch_facts(store, segments, subscribers):
    """What ``segments`` need from the store for ``subscribers``: one query per distinct
    store-reading term for the whole batch (``Segment.facts``), {} when none reads it."""
    terms = tuple({t: None for s in segments if s.reads_store for t in s.terms
                   if t.kind in ("campaign", "clicked")})
    return Segment("", terms).facts(store, subscribers) if terms else {}
