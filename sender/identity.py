"""What tells inbox providers which mail this is: its stream, ``List-Id`` and ``Feedback-ID``,
and the domain comparisons that DMARC alignment rests on.

- **Streams.** The confirmation email and the welcome email with the guide are
  *transactional* (the person just asked for them); every other campaign email is
  *marketing*. Providers that keep the two apart (Postmark's message streams) get each on
  its own stream, so complaints about newsletters never slow down a confirmation.
- **List-Id** (RFC 2919) names the campaign: ``"Glute progression" <glute-progression.example.com>``,
  under the From domain, the same for every email of that campaign.
- **Feedback-ID** is read by Gmail's Postmaster Tools feedback loop: up to three identifiers
  and a sender id, joined by colons, read from the right. Ours is
  ``campaign:step:stream:senderid``; the sender id (5 to 15 characters) comes from the From
  domain, so it stays the same across every email.
"""

from __future__ import annotations

import re

TRANSACTIONAL = "transactional"
MARKETING = "marketing"
STREAMS = (TRANSACTIONAL, MARKETING)

# Second-level labels under which a country's registrations sit (example.co.uk): the
# organisational domain then has three labels. A short list, not the Public Suffix List.
_SECOND_LEVEL = {"co", "com", "net", "org", "gov", "ac", "edu", "ltd", "plc", "me", "or", "ne"}
_LABEL = re.compile(r"[^a-z0-9-]")
_PHRASE_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def stream_of(campaign, step):
    """TRANSACTIONAL for the confirmation email (a campaign entered on signup) and the welcome
    email that delivers the guide; MARKETING for everything else."""
    if campaign.entry_on == "signup":
        return TRANSACTIONAL
    if getattr(step, "attach_guide", None):
        return TRANSACTIONAL
    if campaign.entry_on == "confirm" and step.template.startswith("welcome/"):
        return TRANSACTIONAL
    return MARKETING


def org_domain(domain):
    """The organisational domain (what relaxed DMARC alignment compares): the last two labels,
    or three under a country's second level (coach.co.uk). An approximation of the Public
    Suffix List that holds for the domains a coach sends from."""
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(one, other):
    """Whether two domains align under relaxed DMARC rules (one organisational domain)."""
    return bool(one and other) and org_domain(one) == org_domain(other)


def _label(text):
    cleaned = _LABEL.sub("-", str(text).lower()).strip("-")
    return cleaned or "list"


def list_id(campaign, sender):
    """``"Campaign name" <campaign-id.from-domain>``; the name is left out when it is not plain
    printable ASCII (the id still names the list)."""
    ident = f"<{_label(campaign.id)}.{sender.domain.lower()}>"
    name = " ".join(str(campaign.name).split())
    if name and not _PHRASE_UNSAFE.search(name) and "=?" not in name:
        return f'"{name}" {ident}'
    return ident


def sender_id(domain):
    """The Feedback-ID sender id: the From domain's name without its suffix, letters and digits
    only, 5 to 15 characters (Gmail's rule), e.g. ``coachexample`` for coach-example.com."""
    name = re.sub(r"[^a-z0-9]", "", org_domain(domain).split(".")[0])
    if len(name) < 5:
        name = (name + "drip")[:15].ljust(5, "0")
    return name[:15]


def feedback_id(campaign, step, stream, sender):
    """``campaign:step:stream:senderid``: groups of mail, never a person."""
    parts = [_label(campaign.id), _label(step.id), stream, sender_id(sender.domain)]
    return ":".join(parts)
