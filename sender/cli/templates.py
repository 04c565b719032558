"""``drip templates``: everything an email template can use, read from the code."""

from __future__ import annotations

import os

import click

from .common import pass_state


@click.command("templates")
@pass_state
def templates_command(state):
    """Show everything an email template can use: the variables, helpers, filters, the
    building blocks in templates/emails/_macros.html and what the layouts read. It is read
    from the code and from this project's templates, so it is always current (the README
    has the same for the shipped templates).

    \b
    Example:
      drip templates
      drip templates | grep subscriber
    """
    from ..template_reference import reference

    folder = {**os.environ, **state.paths}.get("DRIP_TEMPLATES_DIR") or "templates"
    click.echo(reference(folder), nl=False)
