"""The ``drip`` command line: a thin layer over the library.

Each command parses its options, calls one library function and prints the
result. ``DripError`` becomes exit code 1 with its message; click answers bad
usage with exit code 2. Commands live in one module per area beside this one
and are registered at the bottom.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
from dotenv import dotenv_values

from .. import backup
from ..config import env_file_text
from .common import DripGroup, State, load_env_file


@click.group(cls=DripGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists already; use --force to overwrite it "
                                   "(`drip migrate` creates just the database)")
    target.write_text(env_file_text(), encoding="utf-8")
    target.chmod(0o600)
    written = {k: v for k, v in dotenv_values(target).items() if v}
    made = backup.migrate_database(backup.database_setting({**written, **os.environ}))
    click.echo(f"Wrote {target}. Edit DRIP_FROM, DRIP_POSTAL_ADDRESS and DRIP_BASE_URL, "
               "then run `drip subscribers add`.")
    click.echo(f"{'Created' if made.created else 'Upgraded' if made.applied else 'Kept'} the "
               f"database {made.database}.")




def _register():
    # lists adds import, export and delete to the `subscribers` group.
    from . import lists, sending, subscribers, web  # noqa: F401

    cli.add_command(subscribers.subscribers_group)
    for command in sending.COMMANDS + web.COMMANDS:
        cli.add_command(command)
    from . import content  # preview, check, guide build
    content.register(cli)
    from . import database  # backup, migrate
    for command in database.COMMANDS:
        cli.add_command(command)
    from .doctor import doctor  # the sending domain, links and provider, checked
    cli.add_command(doctor)
    from .enroll import enroll_command
    cli.add_command(enroll_command)
    from .admin import admin_group  # the dashboard's password
    cli.add_command(admin_group)


_register()


def main():
    logging.captureWarnings(True)
    cli(prog_name="drip")
