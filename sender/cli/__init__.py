"""The ``drip`` command line: a thin layer over the library.

Each command parses its options, calls one library function and prints the
result. ``DripError`` becomes exit code 1 with its message; click answers bad
usage with exit code 2. Commands live in one module per area beside this one and
are listed in ``LAZY_COMMANDS``: a command's module is imported only when that command
runs (or its own help is asked for), so ``drip --help`` starts without loading Jinja,
the HTTP client or the database layer.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from .common import DripGroup, State, load_env_file

# name: (module beside this one, the command's attribute, the start of its short help).
# tests/test_cli_startup.py checks each against the command itself.
LAZY_COMMANDS = {
    "admin": ("admin", "admin_group", "The dashboard at DRIP_BASE_URL/admin"),
    "assets": ("content", "assets_group", "The pictures in templates/images/, made ready for email."),
    "backup": ("database", "backup", "Copy the SQLite database to FILE, safely"),
    "broadcast": ("broadcast", "broadcast_group", "One-off emails to a segment, written in Markdown"),
    "campaigns": ("sending", "campaigns_command", "List the campaigns and their steps"),
    "check": ("content", "check_command", "Check every campaign and template"),
    "doctor": ("doctor", "doctor", "Check that the sending domain is ready for Gmail, Yahoo and Outlook"),
    "enroll": ("enroll", "enroll_command", "Put existing subscribers into CAMPAIGN"),
    "events": ("web", "events_group", "Delivery events reported by the email provider."),
    "guide": ("content", "guide_group", "The pelvic floor guide (templates/guide/)."),
    "migrate": ("database", "migrate", "Upgrade the database to this drip's schema"),
    "plan": ("sending", "plan_command", "What goes out in the next N days, to whom"),
    "preview": ("content", "preview_command", "Render every email of every campaign"),
    "report": ("web", "report", "Per campaign and step: sent, delivered, opened, clicked"),
    "resolve": ("sending", "resolve", "Decide about deliveries a crash left unconfirmed"),
    "send": ("sending", "send", "Send every email that is due, through DRIP_PROVIDER."),
    "serve": ("web", "serve", "Serve the signup form, confirm and unsubscribe links"),
    "simulate": ("sending", "simulate", "The exact send times for a hypothetical subscriber"),
    "status": ("sending", "status", "Counts by state, the next due email, recent failures"),
    "subscribers": ("subscribers", "subscribers_group", "Add, list and manage subscribers."),
    "templates": ("templates", "templates_command", "Show everything an email template can use"),
    "why": ("why", "why_command", "Why each email of one subscriber went, waits or will not go."),
    "worker": ("sending", "worker", "Keep sending: sleep until the next due email, send, repeat."),
}
# Modules that add commands to a group defined elsewhere: `lists` adds import, export
# and delete to `subscribers`.
_EXTENDS = {"subscribers": ("lists",)}


class LazyGroup(DripGroup):
    """The top-level group: lists every command from ``LAZY_COMMANDS`` and imports a
    command's module only when the command is looked up to run."""

    warnings_to_log = False      # set by main(): the `drip` program, not a test's CliRunner

    def list_commands(self, ctx):
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        if self.warnings_to_log:
            _warnings_to_log()   # a command is about to run: before its module is imported
        if name in self.commands or name not in LAZY_COMMANDS:
            return self.commands.get(name)
        module, attribute, _ = LAZY_COMMANDS[name]
        command = getattr(importlib.import_module(f".{module}", __name__), attribute)
        for extra in _EXTENDS.get(name, ()):
            importlib.import_module(f".{extra}", __name__)
        self.commands[name] = command
        return command

    def format_commands(self, ctx, formatter):
        """The command list, from the table: no command module is imported for it."""
        summaries = {name: summary for name, (_, _, summary) in LAZY_COMMANDS.items()}
        summaries.update({name: command.get_short_help_str(limit=200)
                          for name, command in self.commands.items()})
        rows = [(name, summaries[name]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env-file", default=".env", show_default=True, is_eager=True,
              expose_value=False, callback=load_env_file,
              help="Settings file to load; values already in the environment win.")
@click.option("--debug", is_flag=True, help="Log what happens, with secrets masked.")
@click.version_option(package_name="drip")
@click.pass_context
def cli(ctx, debug):
    """drip: email drip campaigns from files in git.

    \b
    Example:
      drip init
      drip subscribers add ana@example.com --name Ana --confirmed --consent "signup form"
      drip plan --days 60
      drip send
    """
    state = ctx.ensure_object(State)
    state.debug = debug
    ctx.call_on_close(state.close)


@cli.command()
@click.option("--path", "path", default=".env", show_default=True, type=click.Path(),
              help="Where to write the settings file.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path, force):
    """Write a starter .env with example values and a fresh random secret, and create the
    database (DRIP_DATABASE, by default drip.db in this folder). The other commands never
    create a database, so one run from the wrong folder cannot look like a lost list.

    \b
    Example:
      drip init && $EDITOR .env
    """
    from dotenv import dotenv_values

    from ..config import env_file_text

    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists already; use --force to overwrite it "
                                   "(`drip migrate` creates just the database)")
    target.write_text(env_file_text(), encoding="utf-8")
    target.chmod(0o600)
    from .. import backup
    written = {k: v for k, v in dotenv_values(target).items() if v}
    made = backup.migrate_database(backup.database_setting({**written, **os.environ}))
    click.echo(f"Wrote {target}. Edit DRIP_FROM, DRIP_POSTAL_ADDRESS and DRIP_BASE_URL, "
               "then run `drip subscribers add`.")
    click.echo(f"{'Created' if made.created else 'Upgraded' if made.applied else 'Kept'} the "
               f"database {made.database}.")


def _warnings_to_log():
    """Route Python's warnings through logging from here on. Done as the first command is
    looked up, before its module is imported: `drip --help` and `drip --version` run no
    command and so start without the logging package."""
    import logging

    logging.captureWarnings(True)


def main():
    cli.warnings_to_log = True
    cli.own_process = True      # `drip send` and `drip worker` tune the collector (sending.py)
    cli(prog_name="drip")
