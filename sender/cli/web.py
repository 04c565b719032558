"""The web endpoints and what they collect: serve, report, events sync."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from .. import events_sync
from .. import report as report_lib
from ..ports import check_free
from .common import echo_json, json_option, now_option, pass_state, resolve_now


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8025, show_default=True,
              help="Port to listen on.")
@pass_state
def serve(state, host, port):
    """Serve the signup form, confirm and unsubscribe links, and provider webhooks.

    For local use and testing; in production run the same app under a WSGI server,
    e.g. `waitress-serve --call sender.web:create_app`, behind HTTPS.

    \b
    Example:
      drip serve --port 8025
    """
    from werkzeug.serving import run_simple

    from ..web import create_app
    from ..web.app import MaskedRequestHandler

    state.drip.store.schema_version()   # the database must be there: never made anew here
    check_free(host, port)
    app = create_app(state.drip.settings)
    click.echo(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)")

    def stop(signum, frame):
        raise KeyboardInterrupt   # Werkzeug's server stops on it, as on Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False,
                   request_handler=MaskedRequestHandler)
    finally:
        # Emails queued by the last requests go out before the process ends (what is left
        # after the wait stays scheduled for `drip send`).
        app.close(timeout=30)


@click.command()
@json_option
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="Write a page with a funnel chart of each sequence to this file.")
@now_option
@pass_state
def report(state, as_json, html_file, now):
    """Per campaign and step: sent, delivered, opened, clicked, bounced, complained,
    unsubscribed, and how many left the sequence after each email; then each campaign's
    complaint and hard-bounce rates beside the brake's limits.

    \b
    Example:
      drip report
      drip report --html report.html
    """
    data = report_lib.build(state.drip, now=resolve_now(now))
    if html_file:
        Path(html_file).write_text(report_lib.html(data), encoding="utf-8")
        if not as_json:
            click.echo(f"Wrote {html_file}")
    if as_json:
        echo_json(data)
    elif not html_file:
        click.echo(report_lib.text(data))


@click.group("events")
def events_group():
    """Delivery events reported by the email provider."""


@events_group.command("sync")
@click.option("--provider", type=click.Choice(events_sync.SYNCABLE),
              help="Provider to pull from (default: DRIP_PROVIDER).")
@click.option("--stream", help="Postmark message stream whose suppressions to pull "
              "(default: POSTMARK_MESSAGE_STREAM, else broadcast).")
@now_option
@json_option
@pass_state
def events_sync_command(state, provider, stream, now, as_json):
    """Pull bounces, complaints and unsubscribes from the provider's suppression lists
    and apply them: for when the /events webhook cannot be hosted.

    \b
    Example:
      drip events sync --provider postmark
    """
    result = events_sync.sync(state.drip, provider, now=resolve_now(now), stream=stream)
    if as_json:
        echo_json(result.to_dict())
        return
    found = ", ".join(f"{n} {k}" for k, n in sorted(result.found.items())) or "nothing"
    click.echo(f"{result.provider}: listed {found}; {result.recorded} new, "
               f"{result.suppressed} suppressed, {result.unsubscribed} unsubscribed, "
               f"{result.unknown} not our subscribers")


COMMANDS = [serve, report, events_group]
