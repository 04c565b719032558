"""The provider interface every backend implements.

The dispatcher hands a provider a batch of ``OutgoingMessage`` objects and
gets back one ``SendResult`` per message, in one small vocabulary of outcomes.
A problem that makes every further send pointless (a bad API key, a missing
setting) raises ``ProviderError`` instead, which stops the run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

ACCEPTED = "accepted"      # the provider took it for delivery now
SCHEDULED = "scheduled"    # the provider holds it for its send_at time
REJECTED = "rejected"      # permanent: this message will never be accepted as it is
RETRY = "retry"            # temporary: try again later (429, 5xx, refused connection)
UNKNOWN = "unknown"        # the request may have reached the provider (a timeout or a dropped
                           # connection after it was sent): settled later with ``reconcile``,
                           # never by sending again blindly
OUTCOMES = (ACCEPTED, SCHEDULED, REJECTED, RETRY, UNKNOWN)

# What ``reconcile`` can tell about a delivery interrupted during hand-off.
RECONCILED_SENT = "sent"
RECONCILED_NOT_SENT = "not_sent"
RECONCILED_UNKNOWN = "unknown"


@dataclass
class SendResult:
    delivery_id: int | None
    outcome: str
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None   # seconds, when the provider said
    suppress: bool = False             # the address is bad or suppressed: stop mailing it


class Provider(ABC):
    """Base class: subclasses set ``name`` and implement ``send``."""

    name = "base"
    batch_size = 1                 # messages per ``send`` call
    max_schedule_ahead = None      # a timedelta when the provider can hold messages
    replay_window = None           # a timedelta when sending an identical request again
                                   # within it is answered from the provider's memory
                                   # instead of sending again (an idempotency key)

    def handoff_chunks(self, messages):
        """``messages`` split into what is handed over at once: the dispatcher marks, sends
        and records one chunk at a time, so an unsubscribe stops what is not yet in a
        request, and the claim on the rest is renewed between chunks. Default: all at once
        (one batch request, or no network at all)."""
        return [messages]

    def handoff_keys(self, messages):
        """One key per message naming the request it goes in, stored with the delivery when
        the hand-off begins. A provider with a ``replay_window`` returns its idempotency key
        here, so a recovery can rebuild and check the identical request; others return None
        (one key for the whole hand-off is used then)."""
        return [None] * len(messages)

    @abstractmethod
    def send(self, messages):
        """Hand off ``messages``; return one SendResult per message, in order."""

    def reconcile(self, delivery, message_id):
        """After a crash mid-hand-off: was this delivery sent? Returns one of
        RECONCILED_SENT (with the provider id as a second value), RECONCILED_NOT_SENT
        or RECONCILED_UNKNOWN."""
        return RECONCILED_UNKNOWN, None

    def cancel_scheduled(self, delivery):
        """Cancel a message handed over with send_at; True when cancelled."""
        return False

    def close(self):  # noqa: B027 - most providers have nothing to release
        """Release connections."""
