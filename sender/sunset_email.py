"""The "still want these?" email of the sunset rule (``sunset.py``), as the engine sees it: a
one-step system campaign, like a broadcast (``broadcasts.Broadcast``), whose rows are
ordinary ledger rows of campaign ``system.sunset``, one step per time she is asked
(``ask-1``, ``ask-2``, ...). A campaign file's id never holds a dot, so none can collide with
it; ``Campaigns.get`` finds it by ``lookup``. Its body is ``templates/emails/system/sunset``,
with ``keep_url`` (the signed "yes, keep them" link) in its context.

The "yes, keep them" link carries a token signed with DRIP_SECRET_KEY under its own salt
(so no confirm or unsubscribe token works as one, nor the reverse), holding her public
``uid`` and the time the email was made: the rule (``sunset.keep``) refuses a link older
than her latest question, and one whose wait is over. Nothing here reads the store or the
clock: the module only says what the email is and what its link holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

from .schedule import Delay
from .tokens import TokenInvalid

CAMPAIGN = "system.sunset"     # the ledger's campaign id of every question
ENTRY = "sunset"               # its ``entry_on``: never a trigger; its stream is marketing
TEMPLATE = "system/sunset"
SUBJECT = "Do you still want these emails?"
PREHEADER = "One click keeps them coming. Otherwise they stop soon."
_ASK = re.compile(r"ask-([1-9][0-9]{0,5})")
KEEP_SALT = "drip-sunset-keep"


def step_id(number):
    """The step of her ``number``-th question: stable, so two senders write one row."""
    return f"ask-{number}"


def number_of(step):
    """The number in a question's step id, or None for any other step."""
    match = _ASK.fullmatch(step or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class AskStep:
    """The one step of the question, with what compose and the checks read of a ``Step``."""

    id: str = step_id(1)
    template: str = TEMPLATE
    subject: str = SUBJECT
    preheader: str = PREHEADER
    number: int = 1
    delay: Delay = Delay()
    after_enrolment: bool = True
    exercise: bool = False
    attach_guide: bool = False
    when: object = None
    subjects: tuple = ()


@dataclass(frozen=True)
class SunsetCampaign:
    """What a ``Campaign`` has, for the question: nobody enters it, it has no goal."""

    id: str = CAMPAIGN
    name: str = "Still want these?"
    description: str = "Asked of someone who has not clicked in DRIP_SUNSET_AFTER emails."
    path: Path = Path("(the sunset rule: DRIP_SUNSET_AFTER)")
    entry_on = ENTRY
    entry_tags = ()
    entry_segment = None
    window = None
    goal = None

    @property
    def steps(self):
        return (AskStep(),)

    def step(self, step):
        number = number_of(step)
        return None if number is None else replace(AskStep(), id=step)

    def timings(self):
        return []

    def window_or(self, default):
        return default

    def accepts(self, subscriber):
        return False            # nobody enters it as they enter a sequence


QUESTION = SunsetCampaign()


def lookup(campaign_id):
    """``Campaigns.get`` for the question's campaign id: the campaign, else None."""
    return QUESTION if campaign_id == CAMPAIGN else None


def is_question(campaign):
    return getattr(campaign, "entry_on", None) == ENTRY


# --- the "yes, keep them" link ----------------------------------------------------------------
def _serializer(secret_key):
    return URLSafeSerializer(secret_key, salt=KEEP_SALT)


def keep_url(drip, subscriber, *, now=None):
    """Her signed "yes, keep them" link, stamped with ``now`` (the time the email is made;
    the same ``now`` gives the same link, so a re-rendered email is the same bytes)."""
    stamp = int(now.timestamp()) if now is not None else 0
    token = _serializer(drip.settings.secret_key).dumps([subscriber.uid, stamp])
    return f"{drip.settings.base_url}/keep/{token}"


def read_keep_token(settings, token):
    """(uid, the time the link was made) from a keep token; TokenInvalid when it was altered,
    forged or made for another purpose."""
    try:
        uid, stamp = _serializer(settings.secret_key).loads(token)
    except (BadSignature, TypeError, ValueError):
        raise TokenInvalid("this link is not valid") from None
    if not isinstance(uid, str) or not isinstance(stamp, int) or isinstance(stamp, bool):
        raise TokenInvalid("this link is not valid")
    return uid, datetime.fromtimestamp(stamp, UTC)
