"""The delivery ledger's vocabulary: states and the reason codes stored beside each message.

A delivery's ``last_error`` is for people; its ``reason`` is one of the codes below, so
code decides by the code and never by matching words in a message.
"""

from __future__ import annotations

SCHEDULED, SENDING, SENT, FAILED, SKIPPED, CANCELLED = (
    "scheduled", "sending", "sent", "failed", "skipped", "cancelled")
STATES = (SCHEDULED, SENDING, SENT, FAILED, SKIPPED, CANCELLED)

# Reason codes (the ``reason`` column).
UNSUBSCRIBED = "unsubscribed"          # cancelled by an unsubscribe (our link or the provider's)
SUPPRESSED = "suppressed"              # cancelled by a bounce or complaint
CONFIRMED = "confirmed"                # the confirmation email, no longer needed
SUBSCRIBER_ENDED = "subscriber_ended"  # skipped: the subscriber left before it was due
SUBSCRIBER_CHANGED = "subscriber_changed"  # skipped at hand-off: no longer active
STEP_GONE = "step_gone"                # cancelled: its campaign or step was removed
NOT_HANDED = "not_handed"              # a crashed claim that never reached the provider
NEEDS_DECISION = "needs_decision"      # the provider cannot say whether it went out
RETRYING = "retrying"                  # scheduled again after a temporary provider failure
TEMPLATE_ERROR = "template_error"      # waits: its email cannot be rendered (fix the file)
CAMPAIGN_ERROR = "campaign_error"      # waits: its campaign file does not load (fix the file)
BAD_DATA = "bad_data"                  # failed: the subscriber's stored data cannot be sent
HELD_CANCELLED = "held_cancelled"      # scheduled again: held at the provider, cancelled by a pause
REASONS = (UNSUBSCRIBED, SUPPRESSED, CONFIRMED, SUBSCRIBER_ENDED, SUBSCRIBER_CHANGED, STEP_GONE,
           NOT_HANDED, NEEDS_DECISION, RETRYING, TEMPLATE_ERROR, CAMPAIGN_ERROR, BAD_DATA,
           HELD_CANCELLED)
# Scheduled deliveries waiting because of a problem (shown by `drip status`).
WAITING_ON_A_PROBLEM = (RETRYING, TEMPLATE_ERROR, CAMPAIGN_ERROR)


def needs_decision(store, *, campaign=None, step=None):
    """Deliveries waiting for the coach's decision (``drip resolve``), oldest first."""
    return [d for d in store.deliveries(campaign=campaign, states=(SENDING,))
            if d.reason == NEEDS_DECISION and (step is None or d.step == step)]
