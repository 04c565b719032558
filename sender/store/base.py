"""The storage contract. Every engine (SQLite now, PostgreSQL later) implements it
and passes ``tests/test_store_contract.py``.

Times go in and come out as aware UTC datetimes. Methods that change more than
one row are atomic; callers group several calls with ``with store.transaction():``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Store(ABC):
    """Subscribers, enrolments, the delivery ledger and a little bookkeeping."""

    # --- lifecycle -------------------------------------------------------------
    @abstractmethod
    def close(self):
        """Release the connection."""

    @abstractmethod
    def transaction(self):
        """A context manager: everything inside commits together or not at all.

        Nested uses join the outermost transaction. The transaction takes the
        write lock at once, so a read-then-write inside it cannot race.
        """

    @abstractmethod
    def schema_version(self):
        """The number of the last migration applied."""

    # --- subscribers -----------------------------------------------------------
    @abstractmethod
    def add_subscriber(self, email, *, name, timezone, tags, fields, status, consent, now):
        """Insert a subscriber (``email`` already normalised) and return it.

        Raises ``InvalidInput`` when the address exists already.
        """

    @abstractmethod
    def update_subscriber(self, subscriber_id, *, now, **changes):
        """Change any of name, timezone, tags, fields, status, paused_at and the consent
        fields (consent_source, consent_at, consent_text, consent_ip, confirmed_at,
        withdrawn_at). Returns the updated subscriber."""

    @abstractmethod
    def get_subscriber(self, *, id=None, email=None, uid=None):
        """The subscriber with that id, normalised email or public uid, or None."""

    @abstractmethod
    def get_subscribers(self, ids):
        """A dict of id -> subscriber for the given ids."""

    def handoff_transaction(self):
        """The transaction around a hand-off to the provider and its record. By default the
        ordinary write transaction; an engine with row locks may take less than the whole
        store's write lock, as long as ``lock_subscribers`` inside it holds off status
        changes of those subscribers until it ends."""
        return self.transaction()

    def lock_subscribers(self, ids):
        """Inside a transaction: a dict of id -> current status for these subscribers, with
        their rows locked against status changes until the transaction ends (SQLite's
        write transaction locks the whole database already; PostgreSQL overrides this with
        SELECT ... FOR SHARE)."""
        return {i: s.status for i, s in self.get_subscribers(ids).items()}

    @abstractmethod
    def list_subscribers(self, *, status=None, tag=None, limit=None):
        """Subscribers in id order, optionally filtered by status and tag."""

    @abstractmethod
    def subscriber_counts(self):
        """A dict of status -> number of subscribers."""

    # --- enrolments ------------------------------------------------------------
    @abstractmethod
    def enroll(self, subscriber_id, campaign, enrolled_at):
        """Record an enrolment; returns it, or None when one exists already."""

    @abstractmethod
    def enrollments(self, *, subscriber_id=None, campaign=None):
        """Enrolments, filtered by subscriber and/or campaign."""

    @abstractmethod
    def set_enrollment_shift(self, subscriber_id, campaign, shift_seconds):
        """Store how far a subscriber's sequence has been pushed back by pauses."""

    # --- the delivery ledger ---------------------------------------------------
    @abstractmethod
    def add_deliveries(self, rows, *, now):
        """Insert ledger rows given as dicts with subscriber_id, campaign, step, due_at
        and optionally state and last_error. A row for an existing (subscriber,
        campaign, step) is left alone. Returns how many were inserted."""

    @abstractmethod
    def get_delivery(self, delivery_id):
        """One delivery, or None."""

    @abstractmethod
    def deliveries(self, *, subscriber_id=None, campaign=None, states=None,
                   due_from=None, due_before=None, limit=None):
        """Deliveries ordered by due time, filtered as asked."""

    @abstractmethod
    def claim_due(self, now, limit, *, pending_campaign=None, subscriber_id=None, due_by=None):
        """Atomically take up to ``limit`` scheduled deliveries due at or before ``due_by``
        (default ``now``) whose subscriber may receive them (active; or pending for the
        ``pending_campaign``, the confirmation email): mark them ``sending``, set
        ``claimed_at`` to ``now``, and return them. Two callers never get the same
        delivery. With ``subscriber_id`` only that subscriber's deliveries are taken (the
        web endpoints send one person's email at once); ``due_by`` later than ``now`` is
        for handing mail to a provider to hold (``drip send --ahead``)."""

    @abstractmethod
    def skip_ended(self, now):
        """Mark scheduled deliveries due by ``now`` whose subscriber has unsubscribed,
        bounced or complained as skipped. Returns how many."""

    @abstractmethod
    def update_delivery(self, delivery_id, *, expect_state=None, **changes):
        """Change state, due_at, attempts, provider, provider_message_id, last_error,
        sent_at or claimed_at.
        With ``expect_state`` the change happens only if the row is in that state.
        Returns True when the row changed."""

    @abstractmethod
    def cancel_pending(self, subscriber_id, reason, *, campaign=None):
        """Cancel every scheduled delivery of a subscriber (of one campaign, if given).
        Returns how many."""

    @abstractmethod
    def stale_sending(self, claimed_before):
        """Deliveries left in ``sending`` that were claimed before the given time."""

    @abstractmethod
    def delivery_counts(self):
        """A dict of state -> number of deliveries."""

    @abstractmethod
    def count_due(self, now):
        """How many scheduled deliveries are due at or before ``now``."""

    @abstractmethod
    def next_due(self):
        """The earliest due time of a scheduled delivery, or None."""

    @abstractmethod
    def last_sent_at(self, subscriber_id, *, exclude_campaign=None):
        """When this subscriber was last sent a message, or None."""

    # --- bookkeeping -----------------------------------------------------------
    @abstractmethod
    def get_meta(self, key):
        """A stored string value, or None."""

    @abstractmethod
    def set_meta(self, key, value):
        """Store a string value under ``key``."""

    # --- events and rate limits (sender/events.py, sender/web) -------------------
    @abstractmethod
    def add_event(self, *, provider, type, occurred_at, received_at, raw, delivery_id=None,
                  subscriber_id=None, provider_event_id=None):
        """Record one event (``raw`` is a JSON-able dict). Returns True, or False when an
        event with the same (provider, provider_event_id) exists already: a replay."""

    @abstractmethod
    def events(self, *, delivery_id=None, subscriber_id=None, type=None):
        """Recorded events in id order as dicts (id, delivery_id, subscriber_id, provider,
        type, occurred_at, received_at, provider_event_id, raw), filtered as asked."""

    @abstractmethod
    def events_summary(self):
        """Per (campaign, step): a dict with ``sent`` (deliveries in state sent) and, for
        each event type, the number of distinct deliveries that have such an event.
        Returns {(campaign, step): {"sent": n, "opened": n, ...}}."""

    @abstractmethod
    def find_delivery(self, provider_message_id):
        """The delivery the provider knows by this message id, or None."""

    @abstractmethod
    def rate_limit(self, key, *, now, window_seconds, limit):
        """Count one hit for ``key`` unless ``limit`` hits were counted in the last
        ``window_seconds``; True when this hit is allowed. Atomic across processes;
        hits older than the window are forgotten."""

    # --- lists: import, export, erasure, segments (sender/lists.py, sender/segments.py) --
    @abstractmethod
    def add_subscribers(self, rows, *, now):
        """Insert many subscribers at once (an import). Each row is a dict with email
        (normalised), name, timezone, tags, fields, status, consent (a Consent) and
        optionally created_at. A row whose address exists already is left alone.
        Returns how many were inserted. Atomic."""

    @abstractmethod
    def subscribers_by_email(self, emails):
        """A dict of normalised email -> subscriber for those of ``emails`` that exist."""

    @abstractmethod
    def subscriber_page(self, *, after_id=0, limit=1000, status=None, tag=None,
                        created_from=None, created_before=None):
        """Up to ``limit`` subscribers with id > ``after_id``, in id order, filtered by
        status, tag and signup time (``created_from`` <= created_at < ``created_before``).
        Walk a whole list page by page with memory that does not grow with it."""

    @abstractmethod
    def erase_subscriber(self, subscriber_id, *, erased_hash, key_id, now):
        """Delete a subscriber with their enrolments, deliveries and events, and record
        ``erased_hash`` (made with the key ``key_id``) in the erasure list. Atomic.
        Returns a dict of what was deleted: {"deliveries": n, "enrollments": n, "events": n}.
        With ``subscriber_id`` None (someone not on the list) only the hash is recorded."""

    @abstractmethod
    def erased_hashes(self, hashes):
        """The subset of ``hashes`` found in the erasure list."""

    @abstractmethod
    def erased_key_ids(self):
        """A dict of key_id -> number of erasure records made with that key."""

    @abstractmethod
    def last_deliveries(self, state, limit):
        """The ``limit`` deliveries in ``state`` with the latest due times, latest first
        (``drip status`` shows recent failures without reading every failed row)."""
