"""Whole lists: CSV import, CSV/JSONL export, one person's data, erasure on request.

Import streams the file through the csv module in batches, so memory does not
grow with the file; every rejected row is reported with its line number and
reason and the rest imports; re-running the same file changes nothing (people
already on the list are left as they are).

Erasure keeps only a one-way hash of the address in the ``erased`` table. The
hash is HMAC-SHA256 under a key derived from DRIP_SECRET_KEY, not a plain
SHA-256: addresses are easy to guess, so a plain hash of ``ana@example.com``
can be confirmed by anyone who gets a copy of the database (or a backup) by
hashing candidate addresses, which would undo the erasure. With a keyed hash
the table alone reveals nothing. The cost: the check only works with the key
that made the hash; each record keeps a short key id, and ``import`` warns
when records were made with a different DRIP_SECRET_KEY.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import itertools
import json
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import subscribers as subscriber_ops
from .errors import DripError, InvalidInput
from .message import check_header_value, normalize_email
from .models import Consent, iso
from .schedule import zone
from .segments import select
from .sequence import enroll

BATCH = 1000
MAX_ERRORS_KEPT = 200
MAX_FIELD_LENGTH = 1000
# Targets a column can map to; anything else becomes a custom field of that name.
_ALIASES = {
    "email": {"email", "e mail", "email address", "mail"},
    "name": {"name", "full name"},
    "timezone": {"timezone", "time zone", "tz"},
    "tags": {"tags", "tag"},
    "signed_up": {"signed up", "signup date", "created at", "subscribed at", "joined"},
    "status": {"status"},
}
# Columns drip sets itself (they appear in an export); an import does not take them over.
IGNORED_COLUMNS = {"uid", "id", "consent source", "consent at", "consent text", "consent ip",
                   "confirmed at", "withdrawn at", "paused at", "updated at"}
_TARGETS = set(_ALIASES) | {"skip"}
_ACTIVE_WORDS = {"", "active", "subscribed", "confirmed"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TAG_SPLIT = re.compile(r"[,;|\s]+")


class ImportFailed(DripError):
    """The file cannot be imported at all (no email column, wrong encoding, ...)."""


# --- erasure hashes ------------------------------------------------------------------------
def _erasure_key(secret):
    return hmac.new(secret.encode(), b"drip erasure v1", hashlib.sha256).digest()


def erasure_key_id(secret):
    """A short, public fingerprint of the key that makes erasure hashes."""
    return hashlib.sha256(_erasure_key(secret)).hexdigest()[:12]


def erasure_hash(secret, email):
    """The one-way hash kept for an erased (normalised) address."""
    return hmac.new(_erasure_key(secret), email.encode(), hashlib.sha256).hexdigest()


def is_erased(drip, email):
    """Whether this normalised address was erased on request."""
    digest = erasure_hash(drip.settings.secret_key, email)
    return bool(drip.store.erased_hashes([digest]))


def erased_with_other_key(drip):
    """How many erasure records were made with a different DRIP_SECRET_KEY (they cannot be
    checked any more)."""
    current = erasure_key_id(drip.settings.secret_key)
    return sum(n for key_id, n in drip.store.erased_key_ids().items() if key_id != current)


# --- import --------------------------------------------------------------------------------
@dataclass
class Problem:
    line: int
    reason: str

    def __str__(self):
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    existing: int = 0
    enrolled: int = 0
    rejected: int = 0
    dry_run: bool = False
    columns: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def add_error(self, line, reason):
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(Problem(line, reason))

    def to_dict(self):
        return {"rows": self.rows, "imported": self.imported, "existing": self.existing,
                "enrolled": self.enrolled, "rejected": self.rejected, "dry_run": self.dry_run,
                "columns": self.columns, "warnings": self.warnings,
                "errors": [{"line": p.line, "reason": p.reason}
                           for p in sorted(self.errors, key=lambda p: p.line)]}


def _norm(header):
    return " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())


def _field_key(header):
    """A column header as a field name: 'Due Date' -> 'due_date'."""
    return _norm(header).replace(" ", "_")


def parse_map(pairs):
    """['E-mail Address=email', 'Stage=field:stage', 'Notes=skip'] -> {'e mail address': ...}."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise InvalidInput(f"--map {pair!r} must look like 'Column Header=target', e.g. "
                               "'E-mail Address=email'")
        mapping[_norm(source)] = target.strip()
    return mapping


def map_columns(header, mapping=None):
    """Decide what each column is: a list with one target per column ("email", "name",
    "timezone", "tags", "signed_up", "status", "skip" or ("field", key))."""
    mapping = dict(mapping or {})
    targets, taken = [], {}
    for position, raw in enumerate(header, start=1):
        key = _norm(raw)
        if key in mapping:
            wanted = mapping.pop(key)
            if wanted.startswith("field:"):
                target = ("field", wanted[6:].strip())
            elif wanted.lower() in _TARGETS:
                target = wanted.lower()
            else:
                target = ("field", wanted)
        elif key.startswith("field:"):
            target = ("field", _field_key(raw.strip()[6:]))
        elif key in IGNORED_COLUMNS or not key:
            target = "skip"
        else:
            target = next((t for t, names in _ALIASES.items() if key in names),
                          ("field", _field_key(raw)))
        if target != "skip":
            label = target if isinstance(target, str) else f"field {target[1]}"
            if isinstance(target, tuple) and not target[1]:
                raise ImportFailed(f"column {position} ({raw!r}) needs a field name")
            if label in taken:
                raise ImportFailed(f"columns {taken[label]} and {position} ({raw!r}) both map to "
                                   f"{label}; use --map '{raw.strip()}=skip' or rename one")
            taken[label] = position
        targets.append(target)
    if mapping:
        raise ImportFailed(f"--map names no column in the header: {', '.join(sorted(mapping))} "
                           f"(the columns are: {', '.join(h.strip() for h in header)})")
    if "email" not in targets:
        raise ImportFailed(f"no email column in the header ({', '.join(h.strip() for h in header)}); "
                           "name one with --map, e.g. --map 'E-mail Address=email'")
    return targets


class _CountingReader(io.RawIOBase):
    """Counts bytes read, for a progress bar, while the text layer streams on top."""

    def __init__(self, raw, progress):
        self._raw, self._progress = raw, progress

    def readable(self):
        return True

    def close(self):
        self._raw.close()
        super().close()

    def readinto(self, buffer):
        count = self._raw.readinto(buffer)
        if count and self._progress:
            self._progress(count)
        return count


@contextmanager
def _open_lines(path, encoding, progress):
    """The file's lines as text. For encodings where a newline is one b"\n" byte (UTF-8,
    cp1252, latin-1, ...) each line is decoded on its own, so a bad byte is reported
    with its line number; UTF-16 and UTF-32 go through a text wrapper."""
    encoding = encoding or "utf-8"
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ImportFailed(f"unknown encoding {encoding!r}; try utf-8, latin-1 or cp1252") from None
    if codec == "utf-8":
        codec = "utf-8-sig"   # a byte-order mark (Excel's "CSV UTF-8") is skipped
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    buffered = io.BufferedReader(_CountingReader(raw, progress), buffer_size=1 << 16)
    with buffered:
        if codec.startswith(("utf-16", "utf-32")):
            text = io.TextIOWrapper(buffered, encoding=codec, newline="")
            yield _decoded(text, encoding, wrapped=True)
        else:
            yield _decoded(buffered, encoding, decoder=codecs.getincrementaldecoder(codec)())


def _decoded(lines, encoding, *, decoder=None, wrapped=False):
    number = 0
    try:
        for number, line in enumerate(lines, start=1):  # noqa: B007 - used below
            yield line if wrapped else decoder.decode(line)
    except UnicodeDecodeError as exc:
        raise _decode_failed(number + 1 if wrapped else number, encoding, exc) from None


def _delimiter(header_line):
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Seen:
    """Addresses already read from this file, with their line: a scratch SQLite table on
    disk, so remembering a million addresses costs no memory to speak of."""

    def __init__(self):
        self.conn = sqlite3.connect("")
        self.conn.execute("CREATE TABLE seen (email TEXT PRIMARY KEY, line INTEGER)")

    def first_line(self, email, line):
        """The line that had this address first, or None (and remember it)."""
        row = self.conn.execute("SELECT line FROM seen WHERE email = ?", (email,)).fetchone()
        if row:
            return row[0]
        self.conn.execute("INSERT INTO seen VALUES (?, ?)", (email, line))
        return None

    def close(self):
        self.conn.close()


def import_csv(drip, path, *, consent, now, mapping=None, encoding=None, dry_run=False,
               enroll_in=(), consent_text=None, progress=None, on_error=None):
    """Import subscribers from a CSV file; returns an ImportReport.

    ``consent`` (required) says how these people agreed to hear from the coach; they are
    imported active with that consent source, and enrolled only in the campaigns named
    by ``enroll_in`` (and only where the campaign's tags and segment accept them).
    ``progress(n)`` is called with bytes read; ``on_error(problem)`` with each rejected row.
    """
    if not consent or not consent.strip():
        raise InvalidInput("say how these people consented, e.g. --consent "
                           "'signup form on the old site, 2024-2026'")
    campaigns = [_enrol_target(drip, c) for c in enroll_in]
    report = ImportReport(dry_run=dry_run)
    stale = erased_with_other_key(drip)
    if stale:
        report.warnings.append(f"{stale} erasure record(s) were made with a different "
                               "DRIP_SECRET_KEY and cannot be checked; those people could be "
                               "imported again")
    seen = _Seen()
    batch = []
    context = _Context(drip, report, Consent(source=consent.strip(), at=now, text=consent_text),
                       now, dry_run, campaigns, on_error)
    try:
        with _open_lines(Path(path), encoding, progress) as text:
            header_line = next(text, "")
            if not header_line.strip():
                raise ImportFailed(f"{path} is empty: the first line must name the columns "
                                   "(email, name, ...)")
            reader = csv.reader(itertools.chain([header_line], text),
                                delimiter=_delimiter(header_line))
            header = next(reader)
            targets = map_columns(header, mapping)
            report.columns = {h.strip(): (t if isinstance(t, str) else f"field:{t[1]}")
                              for h, t in zip(header, targets, strict=True)}
            line = 2
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except ImportFailed:
                    context.flush(batch)   # what was read before the bad line stays imported
                    raise
                except csv.Error as exc:
                    report.rows += 1
                    context.error(start, f"not readable as CSV: {exc}")
                    continue
                line = start
                if not row or not any(cell.strip() for cell in row):
                    continue
                report.rows += 1
                try:
                    record = _record(row, header, targets, now, context.zones)
                except InvalidInput as exc:
                    context.error(line, str(exc))
                    continue
                first = seen.first_line(record["email"], line)
                if first is not None:
                    context.error(line, f"{record['email']} is a duplicate of line {first}")
                    continue
                batch.append((line, record))
                if len(batch) >= BATCH:
                    context.flush(batch)
                    batch = []
            context.flush(batch)
    finally:
        seen.close()
    return report


def _decode_failed(line, encoding, exc):
    return ImportFailed(
        f"line {line}: the file is not valid {encoding} ({exc.reason} at byte "
        f"{exc.object[exc.start:exc.start + 1]!r}); give its encoding, e.g. --encoding "
        "cp1252 or --encoding latin-1. Rows before this line were imported; running the "
        "import again after fixing is safe")


def _enrol_target(drip, campaign_id):
    campaign = drip.campaigns.get(campaign_id)
    if campaign is None:
        raise InvalidInput(f"--enroll {campaign_id}: no such campaign (see `drip campaigns`)")
    if campaign.entry_on == "signup":
        raise InvalidInput(f"--enroll {campaign_id}: that is the confirmation campaign; imported "
                           "people are already confirmed")
    return campaign


def _record(row, header, targets, now, zones):
    if len(row) > len(header):
        raise InvalidInput(f"{len(row)} values but the header has {len(header)} columns "
                           "(a value with a comma or semicolon needs quotes)")
    record = {"name": "", "timezone": None, "tags": [], "fields": {}, "created_at": None}
    values = dict.fromkeys(("email", "status"), "")
    for target, raw in zip(targets, row, strict=False):
        value = raw.strip()
        if target == "skip":
            continue
        if isinstance(target, tuple):
            if value:
                if len(value) > MAX_FIELD_LENGTH:
                    raise InvalidInput(f"field {target[1]!r} is longer than {MAX_FIELD_LENGTH} "
                                       "characters")
                check_header_value(f"field {target[1]!r}", value)
                record["fields"][target[1]] = value
        elif target == "name":
            record["name"] = subscriber_ops._clean_name(value)
        elif target == "timezone" and value:
            if value not in zones:
                zone(value)
                zones.add(value)
            record["timezone"] = value
        elif target == "tags" and value:
            record["tags"] = subscriber_ops._clean_tags(t for t in _TAG_SPLIT.split(value) if t)
        elif target == "signed_up" and value:
            record["created_at"] = _signup_time(value, now)
        else:
            values[target] = value
    if not values["email"]:
        raise InvalidInput("the email column is empty")
    record["email"] = normalize_email(values["email"])
    status = values["status"].lower()
    if status not in _ACTIVE_WORDS:
        if status in ("pending", "unconfirmed"):
            raise InvalidInput(f"status is {status!r}: they never confirmed; not imported")
        raise InvalidInput(f"status is {status!r}: only active subscribers are imported (an "
                           "unsubscribed, bounced or complained person must not be mailed)")
    return record


def _signup_time(value, now):
    try:
        if len(value) == 10:
            moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"signup date {value!r} is not a date (2026-01-31 or "
                           "2026-01-31T09:00Z)") from None
    if moment > now:
        raise InvalidInput(f"signup date {value!r} is in the future")
    return moment.astimezone(UTC).replace(microsecond=0)


class _Context:
    """What one import run carries from batch to batch."""

    def __init__(self, drip, report, consent, now, dry_run, campaigns, on_error):
        self.drip, self.report, self.consent, self.now = drip, report, consent, now
        self.dry_run, self.campaigns, self.on_error = dry_run, campaigns, on_error
        self.zones = set()
        self.secret = drip.settings.secret_key

    def error(self, line, reason):
        self.report.add_error(line, reason)
        if self.on_error:
            self.on_error(Problem(line, reason))

    def flush(self, batch):
        if not batch:
            return
        store = self.drip.store
        hashes = {erasure_hash(self.secret, r["email"]): (line, r) for line, r in batch}
        erased = store.erased_hashes(list(hashes))
        existing = store.subscribers_by_email([r["email"] for _, r in batch])
        fresh = []
        for digest, (line, record) in hashes.items():
            if digest in erased:
                self.error(line, f"{record['email']} asked to be erased; not imported")
            elif record["email"] in existing:
                self.report.existing += 1
            else:
                fresh.append({**record, "status": "active", "consent": self.consent})
        if self.dry_run:
            self.report.imported += len(fresh)
            return
        with store.transaction():
            self.report.imported += store.add_subscribers(fresh, now=self.now)
            if not self.campaigns:
                return
            # Enrolling is idempotent, so a re-run (or a later run with --enroll) only
            # enrols who is not in yet; people who ended their subscription never are.
            kept = [r["email"] for _, r in hashes.values()
                    if erasure_hash(self.secret, r["email"]) not in erased]
            for person in store.subscribers_by_email(kept).values():
                if person.status != "active":
                    continue
                for campaign in self.campaigns:
                    if campaign.accepts(person) and enroll(self.drip, person, campaign, self.now):
                        self.report.enrolled += 1


# --- export --------------------------------------------------------------------------------
EXPORT_COLUMNS = ("email", "name", "timezone", "status", "tags", "signed_up", "consent_source",
                  "consent_at", "confirmed_at", "withdrawn_at")


def neutralise(value):
    """Make a value a spreadsheet would run as a formula (=, +, -, @, tab, CR first) plain
    text by putting an apostrophe in front."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _row(person):
    consent = person.consent
    return {"email": person.email, "name": person.name, "timezone": person.timezone or "",
            "status": person.status, "tags": " ".join(person.tags),
            "signed_up": iso(person.created_at), "consent_source": consent.source or "",
            "consent_at": iso(consent.at) or "", "confirmed_at": iso(consent.confirmed_at) or "",
            "withdrawn_at": iso(consent.withdrawn_at) or ""}


def export_csv(drip, out, segment=None):
    """Write the subscribers in ``segment`` (everyone without one) as CSV to ``out``; one
    column per custom field. Two passes over the list, so memory stays flat. Returns the
    number of rows."""
    keys = sorted({k for person in select(drip.store, segment) for k in person.fields})
    columns = list(EXPORT_COLUMNS) + [f"field:{k}" if _norm(k) in _reserved() else k for k in keys]
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for person in select(drip.store, segment):
        base = _row(person)
        writer.writerow([neutralise(base[c]) for c in EXPORT_COLUMNS]
                        + [neutralise(person.fields.get(k, "")) for k in keys])
        count += 1
    return count


def _reserved():
    return {n for names in _ALIASES.values() for n in names} | IGNORED_COLUMNS | {
        _norm(c) for c in EXPORT_COLUMNS}


def export_jsonl(drip, out, segment=None):
    """Write one JSON object per subscriber in ``segment``; returns the number written."""
    count = 0
    for person in select(drip.store, segment):
        out.write(json.dumps(person.to_dict(), ensure_ascii=False) + "\n")
        count += 1
    return count


def person_data(drip, email):
    """Everything stored about one person (a data-access request), as a JSON-able dict."""
    store = drip.store
    person = subscriber_ops.get(drip, email)
    deliveries = list(store.deliveries(subscriber_id=person.id))
    events = {e["id"]: e for e in store.events(subscriber_id=person.id)}
    for delivery in deliveries:
        events.update((e["id"], e) for e in store.events(delivery_id=delivery.id))
    return {
        "subscriber": {**person.to_dict(), "uid": person.uid, "updated_at": iso(person.updated_at)},
        "enrollments": [{"campaign": e.campaign, "enrolled_at": iso(e.enrolled_at),
                         "shift_seconds": e.shift_seconds}
                        for e in store.enrollments(subscriber_id=person.id)],
        "deliveries": [d.to_dict() for d in deliveries],
        "events": [{**e, "occurred_at": iso(e["occurred_at"]),
                    "received_at": iso(e["received_at"])}
                   for _, e in sorted(events.items())],
    }


# --- erasure -------------------------------------------------------------------------------
@dataclass
class Erasure:
    email: str
    found: bool
    deleted: dict
    files_removed: int = 0


def erase(drip, email, *, now):
    """Erase a person on request: their record, enrolments, deliveries and events go, and
    so do the outbox copies of emails sent to them; only the keyed hash of the address
    stays, so no later import or add mails them by accident. Someone not on the list is
    recorded too (they asked never to be mailed)."""
    email = normalize_email(email)
    store = drip.store
    person = store.get_subscriber(email=email)
    files = []
    if person is not None:
        files = [d.provider_message_id for d in store.deliveries(subscriber_id=person.id)
                 if d.provider == "outbox" and d.provider_message_id]
    deleted = store.erase_subscriber(person.id if person else None,
                                     erased_hash=erasure_hash(drip.settings.secret_key, email),
                                     key_id=erasure_key_id(drip.settings.secret_key), now=now)
    removed = 0
    outbox = Path(drip.settings.get("DRIP_OUTBOX_DIR"))
    for name in files:
        path = outbox / Path(name).name
        if path.is_file():
            path.unlink()
            removed += 1
    return Erasure(email, person is not None, deleted, removed)


def check_not_erased(drip, email):
    """Raise InvalidInput when this normalised address was erased on request."""
    if is_erased(drip, email):
        raise InvalidInput(f"{email} asked to be erased; drip will not add them again. If they "
                           "sign up again themselves, their new consent comes through the "
                           "signup form")

