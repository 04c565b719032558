"""Pieces every command module shares: the state object, common options, output helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from dotenv import load_dotenv

from ..config import Settings
from ..drip import Drip
from ..errors import DripError
from ..logging_setup import configure_logging
from ..schedule import parse_instant


class DripGroup(click.Group):
    """Turns a DripError raised anywhere below into a clear message and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DripError as exc:
            raise click.ClickException(str(exc)) from None


class State:
    def __init__(self):
        self.debug = False
        self._drip = None

    @property
    def drip(self):
        if self._drip is None:
            settings = Settings.from_env()
            configure_logging(debug=self.debug, secrets=settings.secrets())
            self._drip = Drip(settings)
        return self._drip

    def close(self):
        if self._drip is not None:
            self._drip.close()


pass_state = click.make_pass_decorator(State, ensure=True)


def load_env_file(ctx, param, value):
    # Loaded once, before any command reads settings; the real environment wins.
    if value and Path(value).is_file():
        load_dotenv(value, override=False)
    return value


def now_option(fn):
    return click.option(
        "--now", "now", metavar="TIME",
        help="Act as if it were this time (ISO 8601, e.g. 2026-03-09T09:00Z). Default: now.",
    )(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def resolve_now(value):
    return parse_instant(value) if value else datetime.now(UTC).replace(microsecond=0)


def echo_json(data):
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def echo_table(rows, headers):
    if not rows:
        return
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    click.echo("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def fmt_local(value):
    return value.strftime("%a %Y-%m-%d %H:%M %Z")


def fmt_utc(value):
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


