"""The storage contract. Every engine (SQLite now, PostgreSQL later) implements it
and passes ``tests/test_store_contract.py``.

Times go in and come out as aware UTC datetimes. Methods that change more than
one row are atomic; callers group several calls with ``with store.transaction():``.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod


def new_lease():
    """A fresh claim token: every claim, and every takeover of a stale claim, gets its own."""
    return secrets.token_hex(8)


# What ``Store.period_counts`` may count: (table, time column, a condition put first). Each
# has an index on the time column (m005, m008; "due" uses deliveries_due).
PERIOD_COUNTS = {
    "signups": ("subscribers", "created_at", ""),
    "confirmations": ("subscribers", "confirmed_at", ""),
    "unsubscribes": ("subscribers", "withdrawn_at", ""),
    "sent": ("deliveries", "sent_at", ""),
    "due": ("deliveries", "due_at", "state = 'scheduled' AND "),
}


def period_source(what):
    """(table, column, condition) for ``period_counts``; ValueError for anything else."""
    if what not in PERIOD_COUNTS:
        raise ValueError(f"cannot count {what!r}: choose one of {', '.join(PERIOD_COUNTS)}")
    return PERIOD_COUNTS[what]


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

    def refresh_statistics(self):
        """Bring the query planner's picture of the tables up to date when they have changed
        a lot since it was taken (a bulk import, a broadcast's rows, a run of sends), so the
        claims and look-ups that follow are planned for the tables as they are. Returns the
        tables refreshed. An engine whose plans do not depend on such statistics does
        nothing."""
        return []

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
    def enroll(self, subscriber_id, campaign, enrolled_at, fingerprint=None):
        """Record an enrolment, planned against the campaign file whose fingerprint is
        ``fingerprint``; returns it, or None when one exists already."""

    @abstractmethod
    def enroll_many(self, subscriber_ids, campaign, enrolled_at, fingerprint):
        """Enrol many subscribers at once (an import), as ``enroll`` does one; returns the
        ids of those newly enrolled, in order (the others were in already). Atomic."""

    @abstractmethod
    def enrollments_to_check(self, campaign, fingerprint, *, after_id=0, limit=2000):
        """Up to ``limit`` enrolments of ``campaign`` not planned against ``fingerprint``
        (another version of the file, or not known), with subscriber ids above
        ``after_id``, in subscriber order."""

    @abstractmethod
    def enrolment_deliveries(self, campaign, subscriber_ids):
        """Every ledger row of ``campaign`` for these subscribers (a page of enrolments
        being checked against the campaign file), in no particular order."""

    @abstractmethod
    def any_enrollment_to_check(self, campaign, fingerprint):
        """Whether ``enrollments_to_check`` would find any (a quick look at an index)."""

    @abstractmethod
    def set_enrollment_fingerprints(self, campaign, subscriber_ids, fingerprint):
        """Record that these enrolments now follow the file whose fingerprint is given."""

    @abstractmethod
    def add_enrolled_deliveries(self, subscriber_ids, campaign, steps, *, now):
        """Ledger rows for subscribers newly enrolled together who share their due times:
        one ``scheduled`` row per (subscriber, step) of ``steps`` ([(step id, due_at)]). A
        row that exists already is left alone. Returns how many were added. Only the
        ledger calls it (``ledger.schedule_for``)."""

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
        and optionally state, last_error and reason. A row for an existing (subscriber,
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
        ``pending_campaign``, the confirmation email) and whose campaign is not braked
        (``brake_campaign``): mark them ``sending``, set
        ``claimed_at`` to ``now`` and a fresh ``lease`` (one per call), clear ``handed_at``
        and ``handoff_key``, and return them. Two callers never get the same delivery, and
        every later write by the claimer names the lease (``update_delivery(expect_lease=)``).
        With ``subscriber_id`` only that subscriber's deliveries are taken (the web
        endpoints send one person's email at once); ``due_by`` later than ``now`` is for
        handing mail to a provider to hold (``drip send --ahead``)."""

    @abstractmethod
    def skip_ended(self, now):
        """Mark scheduled deliveries due by ``now`` whose subscriber has unsubscribed,
        bounced or complained as skipped. Returns how many."""

    @abstractmethod
    def take_over_stale(self, claimed_before, now, *, limit=None):
        """Atomically take over deliveries left in ``sending`` with ``claimed_at`` before
        ``claimed_before`` (a crashed or stuck claimer): give them a fresh lease and
        ``claimed_at = now``, and return them. Like ``claim_due``, two callers never get the
        same row, and the old claimer's writes (naming its old lease) no longer match."""

    @abstractmethod
    def renew_lease(self, lease, at):
        """Set ``claimed_at = at`` on the rows still ``sending`` under ``lease`` (a long batch
        keeps its claim fresh between hand-offs). Returns how many."""

    @abstractmethod
    def update_delivery(self, delivery_id, *, expect_state=None, expect_lease=None, **changes):
        """Change state, due_at, attempts, provider, provider_message_id, last_error,
        sent_at, claimed_at, lease, handed_at, handoff_key or reason.
        With ``expect_state`` the change happens only if the row is in that state, with
        ``expect_lease`` only if the row still carries that lease (the caller's claim).
        Returns True when the row changed."""

    @abstractmethod
    def update_deliveries(self, changes):
        """Many ``update_delivery`` calls in one transaction: ``changes`` is (delivery_id,
        expect_state, expect_lease, {column: value}) each, every row changed only under its
        own guard. Returns the set of ids changed (``ledger.Batch`` is its one caller)."""

    @abstractmethod
    def cancel_pending(self, subscriber_id, reason, *, campaign=None, code=None):
        """Cancel every scheduled delivery of a subscriber (of one campaign, if given), with
        ``reason`` as the message and ``code`` as the reason code. Returns how many."""

    @abstractmethod
    def stale_sending(self, claimed_before):
        """Deliveries left in ``sending`` that were claimed before the given time (read
        only: ``take_over_stale`` is what recovery uses)."""

    @abstractmethod
    def waiting_on_a_problem(self, limit):
        """(count, rows): scheduled deliveries whose reason is ``retrying``,
        ``template_error`` or ``campaign_error`` (ledger.WAITING_ON_A_PROBLEM), the ``limit``
        soonest due."""

    @abstractmethod
    def delivery_counts(self):
        """A dict of state -> number of deliveries."""

    @abstractmethod
    def count_due(self, now):
        """How many scheduled deliveries of campaigns that are not braked are due at or
        before ``now``."""

    @abstractmethod
    def next_due(self):
        """The earliest due time of a scheduled delivery of a campaign that is not braked,
        or None."""

    @abstractmethod
    def last_sent(self, subscriber_ids, *, exclude_campaign=None):
        """{subscriber id: when they were last sent a message} for those of ``subscriber_ids``
        ever sent one (one query for a whole batch)."""

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
    def event_seen(self, provider, provider_event_id):
        """Whether an event with this provider id was recorded already."""

    @abstractmethod
    def find_delivery(self, provider_message_id):
        """The delivery the provider knows by this message id, or None."""

    @abstractmethod
    def remember_token(self, provider, token, *, now, keep_seconds):
        """Record a signed webhook token as used; True the first time, False for a replay.
        Tokens older than ``keep_seconds`` are forgotten (their signatures are refused as too
        old by then)."""

    @abstractmethod
    def forget_token(self, provider, token):
        """Forget a recorded webhook token (its events could not be applied, so the
        provider's retry must be accepted)."""

    @abstractmethod
    def forget_rate_hits(self, *, keys=(), before=None):
        """Delete the rate-limit hits of these keys (an erasure), and every hit older than
        ``before`` (pruning). Returns how many rows went."""

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
    def subscriber_ids(self, emails):
        """A dict of normalised email -> subscriber id for those of ``emails`` that exist
        (the ids alone: cheaper than ``subscribers_by_email`` for a batch just imported)."""

    @abstractmethod
    def subscriber_page(self, *, after_id=0, limit=1000, status=None, tag=None,
                        created_from=None, created_before=None, until_id=None, text=None):
        """Up to ``limit`` subscribers with id > ``after_id``, in id order, filtered by
        status, tag and signup time (``created_from`` <= created_at < ``created_before``).
        Walk a whole list page by page with memory that does not grow with it.
        With ``until_id`` only ids up to it are looked at (the admin's search reads a
        bounded window per request); with ``text`` only subscribers whose lower-cased
        address or name contains it, lower-cased (a plain substring: no wildcards)."""

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

    # --- the complaint and bounce brake (sender/brake.py) ---------------------------------
    @abstractmethod
    def brake_campaign(self, campaign, *, reason, details, now):
        """Pause ``campaign``: from now on ``claim_due`` never hands out its deliveries, and
        ``count_due`` and ``next_due`` leave them out (they wait, scheduled). ``reason`` is
        the sentence shown to the coach, ``details`` a JSON-able dict. Returns True, or False
        when the campaign is braked already (nothing changes then)."""

    @abstractmethod
    def resume_campaign(self, campaign, *, now):
        """Lift the brake on ``campaign`` (``resumed_at = now``). True when it was braked."""

    @abstractmethod
    def campaign_brakes(self):
        """Every campaign ever braked, as dicts (campaign, reason, details, braked_at,
        resumed_at: None while the brake holds, waiting: its scheduled deliveries, counted
        only while braked, else 0), in campaign order."""

    @abstractmethod
    def campaign_health(self, campaign, *, since, until):
        """Of ``campaign``'s deliveries sent between ``since`` and ``until``: how many
        (``sent``), and how many of those have a ``complained`` and a ``bounced`` event."""

    @abstractmethod
    def last_deliveries(self, state, limit):
        """The ``limit`` deliveries in ``state`` with the latest due times, latest first
        (``drip status`` shows recent failures without reading every failed row)."""

    # --- the admin dashboard (sender/web/admin) -------------------------------------------
    @abstractmethod
    def set_admin_password(self, name, password_hash, *, now):
        """Store (or replace) the password hash of the admin user ``name``."""

    @abstractmethod
    def admin_password(self, name):
        """The stored password hash of ``name`` (exact, case-sensitive), or None."""

    @abstractmethod
    def has_admin_users(self):
        """Whether any admin password is stored (the dashboard is off until one is)."""

    @abstractmethod
    def add_admin_session(self, token_hash, *, name, csrf, now):
        """Record a session, known by a hash of its cookie's token, with its CSRF token."""

    @abstractmethod
    def admin_session(self, token_hash):
        """{"name", "csrf", "created_at", "seen_at"} of that session, or None."""

    @abstractmethod
    def touch_admin_session(self, token_hash, *, now):
        """Set the session's ``seen_at`` to ``now`` (its idle timeout counts from it)."""

    @abstractmethod
    def end_admin_sessions(self, *, token_hash=None, name=None, seen_before=None):
        """Delete that session, every session of ``name``, and every session last seen
        before ``seen_before``. Returns how many went."""

    @abstractmethod
    def add_audit(self, *, at, user, action, subscriber_id=None, target=None, details=None,
                  ip=None):
        """Append one entry to the admin audit log; returns its id. ``details`` is a
        JSON-able dict; a subscriber is named by id only."""

    @abstractmethod
    def audit_log(self, *, limit, before_id=None, subscriber_id=None):
        """The newest ``limit`` audit entries (with id < ``before_id``; about one
        subscriber), newest first, as dicts (id, at, user, action, subscriber_id, target,
        details, ip)."""

    @abstractmethod
    def period_counts(self, what, edges):
        """For each span between consecutive ``edges`` (ascending times), how many of
        ``what`` fall in it (edge <= time < next edge): "signups" (subscribers'
        created_at), "confirmations" (confirmed_at), "unsubscribes" (withdrawn_at), "sent"
        (deliveries' sent_at) or "due" (scheduled deliveries' due_at). Each span is one
        range count on an index. Raises ValueError for any other ``what``."""

    @abstractmethod
    def count_subscribers(self, status):
        """How many subscribers have ``status``: one count on the status index (the
        dashboard's overview; cheaper than grouping the whole list)."""

    @abstractmethod
    def next_steps(self, campaign):
        """{step: how many people's earliest scheduled email of ``campaign`` is that step}:
        where each person in the sequence stands."""

    # --- broadcasts (sender/broadcasts.py) ----------------------------------------------
    @abstractmethod
    def save_broadcast(self, name, *, campaign, subject, when_text, local_day, first_at, last_at,
                       segment, archive, now):
        """Record (or move) a broadcast's schedule, state ``scheduled``. A broadcast whose
        deliveries have been written already is left alone: returns False."""

    @abstractmethod
    def get_broadcast(self, name):
        """The broadcast ``name`` as a dict of its columns (times aware UTC), or None."""

    @abstractmethod
    def list_broadcasts(self, *, states=None):
        """Every broadcast (with one of ``states``), by first due time."""

    @abstractmethod
    def update_broadcast(self, name, *, expect_state, now, **changes):
        """Change state, audience, source, started_at, finished_at or cancelled_at, only
        while the broadcast is still in ``expect_state`` (a state, or a tuple of states: any
        of them); returns whether it applied."""

    @abstractmethod
    def campaign_state_counts(self, campaign):
        """{state: how many deliveries of ``campaign``}."""

    @abstractmethod
    def sent_broadcasts(self, *, archived_only=True):
        """The broadcasts sent (for the archive: those with ``archive`` on), newest first,
        each with its ``started_at`` and ``finished_at`` and the ``source`` it was sent from."""

    @abstractmethod
    def next_coming(self, subscriber_ids, *, broadcasts, before, exclude_campaign=None):
        """{subscriber id: earliest due time before ``before`` of her scheduled broadcast
        rows (``broadcasts``) or sequence rows (not), rows waiting on a problem left out}."""

    @abstractmethod
    def paused_due(self, campaign, now, *, limit=1000):
        """Up to ``limit`` scheduled deliveries of ``campaign`` due by ``now`` whose
        subscriber is paused."""

    @abstractmethod
    def campaign_progress(self, subscriber_ids, campaign):
        """{subscriber id: "active" or "finished"} for those enrolled in ``campaign``."""

    # --- what step rules and goals read (store/sql/journeys.py) ------------------------------
    @abstractmethod
    def clicked_among(self, subscriber_ids, campaign, step=None):
        """The ids among ``subscriber_ids`` with a recorded click on an email of ``campaign``
        (of its ``step`` only, if given)."""

    @abstractmethod
    def step_outcomes(self, campaign, step):
        """{subscriber id: the set of event types recorded} for every sent email of
        ``campaign``/``step``."""

    # --- the sunset rule (store/sql/engagement.py) -------------------------------------------
    @abstractmethod
    def engagement(self, subscriber_ids, *, question, uncounted_campaigns=(), uncounted_steps=()):
        """{subscriber id: {"engaged_at", "asked", "ask", "unclicked"}}: her latest click, the
        sunset questions she has had, and her emails sent since she last clicked or was asked
        (see store/sql/engagement.py for what counts)."""
