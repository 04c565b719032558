"""``drip backup`` and ``drip migrate``: the database itself."""

from __future__ import annotations

import click

from .. import backup as backup_lib
from .common import echo_json, json_option


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@json_option
def backup(file, force, as_json):
    """Copy the SQLite database to FILE, safely while senders, workers and the web server
    run (SQLite's online backup: what was committed when it started). FILE is one
    self-contained file. To restore, stop drip and copy it over the database file (see the
    README). For PostgreSQL use pg_dump.

    \b
    Example:
      drip backup backups/drip-$(date +%F).db
    """
    made = backup_lib.backup(backup_lib.database_setting(), file, force=force)
    if as_json:
        echo_json(made.to_dict())
        return
    click.echo(f"Backed up {made.source} to {made.target} ({made.bytes:,} bytes, schema "
               f"version {made.version}).")


@click.command()
@json_option
def migrate(as_json):
    """Upgrade the database to this drip's schema and say which migrations ran; creates
    the database when it does not exist yet. (Every command also upgrades the database it
    opens; run this after installing a new drip, or to start a new database.)

    \b
    Example:
      drip backup before-upgrade.db && drip migrate
    """
    done = backup_lib.migrate_database(backup_lib.database_setting())
    if as_json:
        echo_json(done.to_dict())
        return
    if done.created:
        click.echo(f"Created {done.database}.")
    for name in done.applied:
        click.echo(f"Applied {name}")
    state = "now at" if done.applied else "up to date at"
    click.echo(f"{done.database}: {state} schema version {done.version}.")


COMMANDS = [backup, migrate]
