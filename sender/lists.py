"""Whole lists: CSV import, CSV/JSONL export, one person's data.

Import streams the file through the csv module in batches, so memory does not
grow with the file; every rejected row is reported with its line number and
reason and the rest imports; re-running the same file changes nothing (people
already on the list are left as they are). Each batch is committed on its own (the
first of ``BATCH`` rows, each next one twice as large up to ``MAX_BATCH``), so when the
database stops taking rows part-way (a full disk), ``ImportStopped`` says which lines were
saved and which were not, and re-running the file adds the rest. With ``--enroll`` a batch
is enrolled in bulk (``sequence.enroll_many``).
Addresses erased on request (``erasure.py``) are never imported again; ``import``
warns when erasure records were made with a different DRIP_SECRET_KEY.

The file is read line by line in its encoding by ``csv_lines.py``; each row becomes a
record, checked by the rules the form and the CLI share, in ``csv_rows.py``.
"""

from __future__ import annotations

import csv
import gc
import itertools
import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import columns
from . import subscribers as subscriber_ops
from .columns import ImportFailed, _norm, map_columns, parse_map  # noqa: F401 - lists.parse_map
from .csv_lines import delimiter, open_lines
from .csv_rows import RowReader
from .erasure import erased_with_other_key, erasure_hash
from .errors import DripError, InvalidInput
from .models import Consent, Subscriber, iso
from .segments import select
from .sequence import enroll_many

BATCH = 1000          # rows in the first transaction; each next one is twice as large,
MAX_BATCH = 16000     # up to this: a problem shows early, and a big file goes in big steps
MAX_ERRORS_KEPT = 200
# What each column is (email, name, tags, ...; the headers of Kit, Mailchimp, MailerLite and
# Substack exports included) is decided in columns.py.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportStopped(ImportFailed):
    """The database stopped saving part-way (a full disk, say). The message says which lines
    were saved and which were not; ``report`` holds what was done until then."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


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
    stopped: dict | None = None   # set when the database stopped saving part-way

    def add_error(self, line, reason):
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(Problem(line, reason))

    def to_dict(self):
        return {"rows": self.rows, "imported": self.imported, "existing": self.existing,
                "enrolled": self.enrolled, "rejected": self.rejected, "dry_run": self.dry_run,
                "columns": self.columns, "warnings": self.warnings, "stopped": self.stopped,
                "errors": [{"line": p.line, "reason": p.reason}
                           for p in sorted(self.errors, key=lambda p: p.line)]}


class _Seen:
    """Addresses already read from this file, with their line: a scratch SQLite table on
    disk, so remembering a million addresses costs no memory to speak of. It is asked a
    batch at a time."""

    CHUNK = 500     # addresses in one look-up (under SQLite's limit on parameters)

    def __init__(self):
        self.conn = sqlite3.connect("")
        self.conn.execute("CREATE TABLE seen (email TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def split(self, batch):
        """The rows of ``batch`` ([(line, record)], in line order) whose address is new, and
        the others as (line, address, the line that had it first); the new are remembered.
        They are remembered first: only when fewer were added than the batch has addresses
        (an address met in an earlier batch) is the table asked which, and from which line."""
        first, new, repeated = {}, [], []
        for line, record in batch:
            email = record["email"]
            if email in first:
                repeated.append((line, email, first[email]))
            else:
                first[email] = line
                new.append((line, record))
        if not first:
            return new, repeated
        added = self.conn.executemany("INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING",
                                      first.items()).rowcount
        if added == len(first):
            return new, repeated
        earlier, emails, before = {}, list(first), batch[0][0]
        for start in range(0, len(emails), self.CHUNK):
            chunk = emails[start:start + self.CHUNK]
            earlier.update(self.conn.execute(
                f"SELECT email, line FROM seen WHERE line < ? AND email IN "
                f"({','.join('?' * len(chunk))})", [before, *chunk]))
        repeated = [(line, email, earlier.get(email, at)) for line, email, at in repeated] + [
            (line, r["email"], earlier[r["email"]]) for line, r in new if r["email"] in earlier]
        return [(line, r) for line, r in new if r["email"] not in earlier], repeated

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
    batch, size = [], BATCH
    context = _Context(drip, report, Consent(source=consent.strip(), at=now, text=consent_text),
                       now, dry_run, campaigns, on_error)
    try:
        with _collector_paused(), drip.store.bulk_writes(), \
                open_lines(Path(path), encoding, progress) as text:
            header_line = next(text, "")
            if 1 in text.bad:
                raise ImportFailed(f"line 1 (the header) is {text.bad[1]}; give the file's "
                                   "encoding, e.g. --encoding cp1252 or --encoding latin-1. "
                                   "Nothing was imported")
            if not header_line.strip():
                raise ImportFailed(f"{path} is empty: the first line must name the columns "
                                   "(email, name, ...)")
            reader = csv.reader(itertools.chain([header_line], text),
                                delimiter=delimiter(header_line))
            header = next(reader)
            targets = map_columns(header, mapping)
            read_row = RowReader(header, targets, now)
            report.columns = {h.strip(): (t if isinstance(t, str) else f"field:{t[1]}")
                              for h, t in zip(header, targets, strict=True)}
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    report.rows += 1
                    if not _rejected_undecodable(context, text, reader.line_num):
                        context.error(start, f"not readable as CSV: {exc}")
                    continue
                line = start
                if not row or not "".join(row).strip():      # no value in any cell
                    continue
                report.rows += 1
                if text.bad and _rejected_undecodable(context, text, reader.line_num):
                    continue
                try:
                    record = read_row(row)
                except InvalidInput as exc:
                    context.error(line, str(exc))
                    continue
                batch.append((line, record))
                if len(batch) >= size:
                    context.flush(batch, seen)
                    batch, size = [], min(size * 2, MAX_BATCH)
            if text.bad_count:
                lines_are = "1 line is" if text.bad_count == 1 else f"{text.bad_count} lines are"
                report.warnings.append(
                    f"{lines_are} not valid {text.encoding} (each is listed with its line "
                    "number); if the file was saved in another encoding, run the import again "
                    "with --encoding, e.g. --encoding cp1252: people already imported are left "
                    "as they are")
            context.flush(batch, seen)
    finally:
        seen.close()
    return report


@contextmanager
def _collector_paused():
    """Python's cycle collector off while the file is read: an import makes millions of
    short-lived objects and no cycles, and each pass would walk every live object again.
    Whatever state it was in comes back after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rejected_undecodable(context, text, through):
    """Reject the row that ends on line ``through`` when any of its lines could not be
    decoded (reported at the first such line); True when it was."""
    bad = text.take(through)
    if not bad:
        return False
    (line, why), *more = bad
    also = ""
    if more:
        also = (f" (also line{'s' if len(more) > 1 else ''} "
                f"{', '.join(str(n) for n, _ in more)} of this row)")
    context.error(line, f"{why}; not imported{also}")
    return True


def _enrol_target(drip, campaign_id):
    campaign = drip.campaigns.get(campaign_id)
    if campaign is None:
        raise InvalidInput(f"--enroll {campaign_id}: no such campaign (see `drip campaigns`)")
    if campaign.entry_on == "signup":
        raise InvalidInput(f"--enroll {campaign_id}: that is the confirmation campaign; imported "
                           "people are already confirmed")
    return campaign


class _Context:
    """What one import run carries from batch to batch. Rejected rows are reported at the
    end of their batch, in line order."""

    def __init__(self, drip, report, consent, now, dry_run, campaigns, on_error):
        self.drip, self.report, self.consent, self.now = drip, report, consent, now
        self.dry_run, self.campaigns, self.on_error = dry_run, campaigns, on_error
        self.secret = drip.settings.secret_key
        self.saved_batches = 0
        self.pending = []     # this batch's rejected rows, reported by flush

    def error(self, line, reason):
        self.pending.append(Problem(line, reason))

    def _report_errors(self):
        for problem in sorted(self.pending, key=lambda p: p.line):
            self.report.add_error(problem.line, problem.reason)
            if self.on_error:
                self.on_error(problem)
        self.pending = []

    def flush(self, batch, seen):
        """Save one batch in one transaction. The report counts it only once it is
        committed; if the database refuses it, ImportStopped says what was saved before."""
        batch, repeated = seen.split(batch)
        for line, email, first in repeated:
            self.error(line, f"{email} is a duplicate of line {first}")
        store = self.drip.store
        if batch and store.erased_key_ids():     # hashed only when anyone was ever erased
            hashes = {erasure_hash(self.secret, r["email"]): (line, r) for line, r in batch}
            erased = store.erased_hashes(list(hashes))
            for digest in erased:
                line, record = hashes[digest]
                self.error(line, f"{record['email']} asked to be erased; not imported")
            batch = [row for digest, row in hashes.items() if digest not in erased]
        self._report_errors()
        if not batch:
            return
        if self.dry_run:
            existing = len(store.subscriber_ids([r["email"] for _, r in batch]))
            self.report.imported += len(batch) - existing
            self.report.existing += existing
            return
        consent = self.consent
        records = [record for _, record in batch]
        for record in records:
            record["status"], record["consent"] = "active", consent
        try:
            with store.transaction():
                # Enrolling needs who was on the list already (as stored, left alone); a
                # plain import leaves that to the database (ON CONFLICT DO NOTHING).
                known = store.subscribers_by_email([r["email"] for r in records]) \
                    if self.campaigns else {}
                imported = store.add_subscribers([r for r in records if r["email"] not in known],
                                                 now=self.now)
                enrolled = self._enrol(records, known)
        except DripError as exc:
            raise self._stopped(batch[0][0], exc) from None
        self.report.imported += imported
        self.report.existing += len(batch) - imported
        self.report.enrolled += enrolled
        self.saved_batches += 1

    def _enrol(self, records, known):
        """Enrol the batch's active people in the campaigns asked for. Enrolling is
        idempotent, so a re-run (or a later run with --enroll) only enrols who is not in
        yet; people who ended their subscription never are."""
        if not self.campaigns:
            return 0
        new = [r for r in records if r["email"] not in known]
        ids = self.drip.store.subscriber_ids([r["email"] for r in new])
        people = [p for p in known.values() if p.status == "active"] + [
            Subscriber(id=ids[r["email"]], uid="", email=r["email"], name=r["name"],
                       timezone=r["timezone"], status="active", tags=r["tags"],
                       fields=r["fields"], consent=r["consent"],
                       created_at=r["created_at"] or self.now, updated_at=self.now)
            for r in new if r["email"] in ids]     # as just stored (the uid is not needed)
        people.sort(key=lambda p: p.id)
        return sum(enroll_many(self.drip, [p for p in people if campaign.accepts(p)], campaign,
                               self.now)
                   for campaign in self.campaigns)

    def _stopped(self, line, exc):
        """The database refused the batch that starts on ``line``: every batch before it
        is committed, this one and the rest of the file are not."""
        report = self.report
        reason = _database_reason(self.drip.store, exc)
        advice = ("Free some disk space (or fix what the database reported), then run the same "
                  "import again: people already saved are left as they are and only the rest "
                  "is added")
        if not self.saved_batches:
            message = (f"the import stopped at line {line}: the database could not save the "
                       f"rows from there on ({reason}); nothing was saved. {advice}")
        else:
            people = "1 new subscriber was" if report.imported == 1 else \
                f"{report.imported} new subscribers were"
            extra = "".join([
                f", {report.existing} already on the list" if report.existing else "",
                f", {report.enrolled} enrolments" if report.enrolled else ""])
            message = (f"the import stopped at line {line}: the database could not save the "
                       f"rows from there on ({reason}). {people} saved (lines 2 to {line - 1}"
                       f"{extra}); nothing from line {line} on was imported. {advice}")
        report.stopped = {"line": line, "saved_through_line": line - 1 if self.saved_batches else None,
                          "reason": reason, "message": message}
        return ImportStopped(message, report)


def _database_reason(store, exc):
    """What the database said. The store's own message ends by saying nothing was changed,
    which is true of the one batch but not of the import, so the underlying error is
    used where there is one."""
    cause = exc.__cause__ or exc.__context__
    if cause is None or isinstance(cause, DripError) or not str(cause).strip():
        return str(exc)
    path = getattr(store, "path", None)   # SQLite's file; a PostgreSQL URL is not shown
    return f"database {path}: {str(cause).strip()}" if path else str(cause).strip()


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
    return columns.reserved_headers() | {_norm(c) for c in EXPORT_COLUMNS}


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
