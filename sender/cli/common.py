"""Pieces every command module shares: the state object, common options, output helpers.

`drip --help` imports this module, so what only a running command needs (the settings, the
.env reader, logging, the time parser) is imported where it is used.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import click
from click.core import ParameterSource


class DripGroup(click.Group):
    """Turns a DripError raised anywhere below into a clear message and exit code 1."""

    def invoke(self, ctx):
        from ..config import secrets_masker
        from ..errors import DatabaseMissing, DripError

        try:
            return super().invoke(ctx)
        except DripError as exc:     # masked: a message may quote a setting or an answer
            text = str(exc)
            state = ctx.find_object(State)
            if isinstance(exc, DatabaseMissing) and state is not None:
                text = exc.explain(state.env_file, state.env_loaded,
                                   setting=os.environ.get("DRIP_DATABASE"))
            raise click.ClickException(secrets_masker(os.environ)(text)) from None
        except OSError as exc:
            # A file or folder named on the command line or in a setting that cannot be
            # read or written (no such folder, a file where a folder should be, no
            # permission, a full disk): the path and the reason, not a traceback.
            if exc.filename is None:
                raise
            raise click.ClickException(f"{exc.filename}: {file_problem(exc)}") from None


def file_problem(exc):
    """What went wrong with a path, in words, and what to check."""
    reason = (exc.strerror or str(exc)).lower()
    hints = {errno.ENOENT: "check the path; the folder must exist",
             errno.ENOTDIR: "a part of the path is a file, not a folder",
             errno.EACCES: "check the permissions of the file and its folder",
             errno.EPERM: "check the permissions of the file and its folder",
             errno.EROFS: "the file system is read-only",
             errno.ENOSPC: "free some disk space"}
    hint = hints.get(exc.errno)
    return f"{reason} ({hint})" if hint else reason


# Commands that send to subscribers (`drip send` unless --dry-run, `drip worker`, `drip
# serve`): with a real provider they refuse to start while a setting holds an example value.
SENDING_COMMANDS = ("send", "worker", "serve")


def sends_to_subscribers(ctx):
    """Whether the command running in ``ctx`` sends email to subscribers."""
    if ctx is None or ctx.parent is None or ctx.parent.parent is not None:
        return False        # only the top-level commands named above
    return ctx.info_name in SENDING_COMMANDS and not ctx.params.get("dry_run")


class State:
    def __init__(self):
        self.debug = False
        self.env_file = None       # the settings file looked for, and whether it was there
        self.env_loaded = False
        self.paths = {}            # path settings made absolute from the settings file's folder
        self._drip = None

    @property
    def drip(self):
        if self._drip is None:
            from ..config import Settings
            from ..errors import ConfigError
            from ..logging_setup import configure_logging

            try:
                settings = Settings.from_env({**os.environ, **self.paths})
            except ConfigError as exc:
                if self.env_loaded:
                    raise
                looked = (self.env_file or Path(".env")).resolve()
                raise ConfigError(
                    f"{exc}\nNo settings file was found at {looked}. If this is an existing "
                    "project, run drip in its folder (where its .env is) or name the file with "
                    "--env-file PATH/.env; `drip init` is only for starting a new project "
                    "here.") from None
            configure_logging(debug=self.debug, masker=settings.masker())
            ctx = click.get_current_context(silent=True)
            if sends_to_subscribers(ctx):
                settings.refuse_example_values(f"drip {ctx.info_name}")
            from ..drip import Drip  # not at import time: `drip --help` needs none of it

            self._drip = Drip(settings, create_database=False)   # init and migrate create it
        return self._drip

    def close(self):
        if self._drip is not None:
            self._drip.close()


pass_state = click.make_pass_decorator(State, ensure=True)


def load_env_file(ctx, param, value):
    # Loaded once, before any command reads settings; the real environment wins. The default
    # .env may be absent (the settings can all come from the environment); a file named
    # with --env-file must be there.
    path = Path(value) if value else None
    given = ctx.get_parameter_source(param.name) not in (None, ParameterSource.DEFAULT)
    if given and path is not None and not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise click.BadParameter(f"{path.resolve()} {what}; name the settings file (e.g. "
                                 "--env-file /srv/drip/.env), or leave the option out to use "
                                 ".env in this folder")
    state = ctx.ensure_object(State)
    state.env_file = path
    state.env_loaded = path is not None and path.is_file()
    if state.env_loaded:
        from dotenv import load_dotenv

        from_environment = {name for name in PATH_SETTINGS if os.environ.get(name)}
        load_dotenv(path, override=False)
        state.paths = _paths_from(path.resolve().parent, skip=from_environment)
    return value


# Settings that name files or folders: relative values in a settings file are relative to
# that file's folder (the project folder), wherever drip is run from.
PATH_SETTINGS = ("DRIP_DATABASE", "DRIP_OUTBOX_DIR", "DRIP_CAMPAIGNS_DIR", "DRIP_TEMPLATES_DIR",
                 "DRIP_GUIDE_BUILD_DIR")


def _paths_from(folder, *, skip):
    """{setting: absolute path} for the path settings whose value (from the settings file, or
    the default) is relative: relative to ``folder``, the settings file's folder."""
    from ..config import SETTINGS_BY_NAME

    paths = {}
    for name in PATH_SETTINGS:
        if name in skip or name not in SETTINGS_BY_NAME:
            continue
        value = os.environ.get(name) or SETTINGS_BY_NAME[name].default
        if not value or "://" in value or value == ":memory:" or Path(value).is_absolute():
            continue
        paths[name] = str(folder / value)
    return paths


def now_option(fn):
    return click.option(
        "--now", "now", metavar="TIME",
        help="Act as if it were this time (ISO 8601, e.g. 2026-03-09T09:00Z). Default: now.",
    )(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def resolve_now(value):
    from ..schedule import parse_instant

    return parse_instant(value) if value else datetime.now(UTC).replace(microsecond=0)


def echo_json(data):
    import json

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


