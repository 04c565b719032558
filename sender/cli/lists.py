"""``drip subscribers import|export|delete``: whole lists in and out, erasure on request.

The commands join the ``subscribers`` group from ``cli/subscribers.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import columns, erasure, lists
from ..segments import HELP as SEGMENT_HELP
from ..segments import combine
from .common import echo_json, json_option, now_option, pass_state, resolve_now
from .subscribers import subscribers_group


@subscribers_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--consent", required=True,
              help="How these people agreed to hear from you, recorded with each, e.g. "
                   "'signup form on the old site, 2024-2026'.")
@click.option("--consent-text", help="The wording they agreed to, if you have it.")
@click.option("--map", "maps", multiple=True, metavar="'HEADER=TARGET'",
              help="Say what a column is: email, name, first_name, last_name, timezone, tags, "
                   "signed_up, status, skip, or a field name (field:NAME). Repeat for several.")
@click.option("--encoding", help="The file's encoding when it is not UTF-8, e.g. cp1252.")
@click.option("--enroll", "enroll_in", multiple=True, metavar="CAMPAIGN",
              help="Enrol the imported people in this campaign (its tags and segment apply). "
                   "Without it nobody is enrolled. Repeat for several.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@now_option
@json_option
@pass_state
def subscribers_import(state, path, consent, consent_text, maps, encoding, enroll_in, dry_run,
                       now, as_json):
    """Import subscribers from a CSV file (comma or semicolon separated, UTF-8 with or
    without a byte-order mark, or --encoding).

    Columns are matched by their header: email, name (or first and last name), time
    zone, tags (separated by spaces, commas or semicolons), signed_up (a date),
    status; exports from Kit, Mailchimp, MailerLite and Substack are understood as
    they are. Any other column becomes a field. --dry-run shows what each column
    becomes. Bad rows are reported with their line number and the rest imports;
    people already on the list are left as they are, so running the same import
    again changes nothing. Exit code 1 when any row was rejected.

    \b
    Example:
      drip subscribers import old-list.csv --consent "signup form, old site" --dry-run
      drip subscribers import old-list.csv --consent "signup form, old site" \\
          --map "E-mail Address=email" --map "Stage=field:stage" --enroll course
    """
    drip = state.drip
    show_bar = sys.stderr.isatty() and not as_json
    size = os.path.getsize(path)

    def report_error(problem):
        if not as_json:
            click.echo(f"{Path(path).name}: {problem}", err=True)

    stopped = None
    with click.progressbar(length=size, label="Importing", file=sys.stderr,
                           hidden=not show_bar) as bar:
        try:
            report = lists.import_csv(
                drip, path, consent=consent, consent_text=consent_text, now=resolve_now(now),
                mapping=lists.parse_map(maps), encoding=encoding, dry_run=dry_run,
                enroll_in=enroll_in, progress=bar.update, on_error=report_error)
        except lists.ImportStopped as exc:   # part saved: say what, then fail with its message
            report, stopped = exc.report, exc
    if as_json:
        echo_json({**report.to_dict(), "mapping": [
            {"column": header, "becomes": text} for header, text in columns.describe(report.columns)]})
    else:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
    if stopped:
        raise stopped
    if not as_json:
        if dry_run:
            _echo_mapping(report.columns)
        verb = "would import" if dry_run else "imported"
        click.echo(f"{report.rows} rows: {report.imported} {verb}, {report.existing} already on "
                   f"the list, {report.rejected} rejected"
                   + (f", {report.enrolled} enrolments" if report.enrolled else ""))
        if report.rejected > len(report.errors):
            click.echo(f"(the first {len(report.errors)} rejections are kept in --json)", err=True)
    if report.rejected:
        raise SystemExit(1)


def _echo_mapping(found):
    described = columns.describe(found)
    width = max((len(header) for header, _ in described), default=0)
    click.echo("Columns:")
    for header, text in described:
        click.echo(f"  {header.ljust(width)} -> {text}")


@subscribers_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True, help="CSV for spreadsheets, JSONL for programs.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write to this file instead of standard output.")
@click.option("--segment", help=f"Only subscribers in this segment, {SEGMENT_HELP}.")
@click.option("--status", help="Only this status (a shortcut for status:NAME).")
@click.option("--tag", help="Only subscribers with this tag (a shortcut for tag:NAME).")
@click.option("--email", help="Everything stored about this one person, as JSON "
                              "(a data-access request).")
@pass_state
def subscribers_export(state, fmt, output, segment, status, tag, email):
    """Export subscribers as CSV (default) or JSONL. In CSV, values a spreadsheet would
    run as a formula (starting with = + - @) get an apostrophe in front.

    \b
    Example:
      drip subscribers export -o list.csv --segment "tag:postpartum and status:active"
      drip subscribers export --email ana@example.com -o ana.json
    """
    drip = state.drip
    if email:
        if segment or status or tag:
            raise click.UsageError("--email exports one person; leave out --segment, --status "
                                   "and --tag")
        data = lists.person_data(drip, email)
        with click.open_file(output, "w", encoding="utf-8") as out:
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    chosen = combine(segment, status=status, tag=tag)
    write = lists.export_csv if fmt == "csv" else lists.export_jsonl
    if output == "-":
        write(drip, sys.stdout, chosen)
        return
    # newline="" lets the csv module write its own CRLF line ends.
    with open(output, "w", encoding="utf-8", newline="" if fmt == "csv" else None) as out:
        count = write(drip, out, chosen)
    click.echo(f"{count} subscribers written to {output}", err=True)


@subscribers_group.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@now_option
@json_option
@pass_state
def subscribers_delete(state, email, yes, now, as_json):
    """Erase a person on request: their data, history and outbox copies go; only a
    one-way hash of the address is kept so no later import or add mails them.
    Cannot be undone (export their data first if they asked for it).

    \b
    Example:
      drip subscribers export --email ana@example.com -o ana.json
      drip subscribers delete ana@example.com --yes
    """
    if not yes:
        click.confirm(f"Erase {email} and everything stored about them?", abort=True)
    result = erasure.erase(state.drip, email, now=resolve_now(now))
    if as_json:
        echo_json({"email": result.email, "found": result.found, "deleted": result.deleted,
                   "files_removed": result.files_removed})
        return
    if result.found:
        d = result.deleted
        click.echo(f"Erased {result.email}: {d['deliveries']} deliveries, {d['enrollments']} "
                   f"enrolments, {d['events']} events, {result.files_removed} outbox files; "
                   "only a one-way hash is kept")
    else:
        click.echo(f"{result.email} was not on the list; recorded so that no import or add "
                   "mails them")
