"""``drip admin ...``: the dashboard's password."""

from __future__ import annotations

import sys

import click

from ..web.admin import auth
from .common import DripGroup, now_option, pass_state, resolve_now


@click.group("admin", cls=DripGroup)
def admin_group():
    """The dashboard at DRIP_BASE_URL/admin (off until a password is set).

    \b
    Example:
      drip admin set-password
    """


@admin_group.command("set-password")
@click.option("--user", "name", default=auth.DEFAULT_USER, show_default=True,
              help="The name to log in with.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of asking.")
@now_option
@pass_state
def set_password(state, name, password_stdin, now):
    """Set the dashboard password for a name (asked twice, never shown), which turns the
    dashboard on. Setting it again replaces it and logs that name out everywhere. Only a
    hash of it (argon2id) is stored.

    \b
    Example:
      drip admin set-password
      drip admin set-password --user assistant
      printf '%s\\n' "$PASSWORD" | drip admin set-password --password-stdin
    """
    name = auth.check_name(name)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input (give it on the first line)")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Again")
    drip = state.drip
    stored = auth.set_password(drip.store, name, password, now=resolve_now(now))
    message = f"Password set for {stored}; the dashboard is at {drip.settings.base_url}/admin"
    if not drip.settings.admin_enabled:
        message += " (but DRIP_ADMIN=off keeps it off)"
    click.echo(message)


COMMANDS = [admin_group]
