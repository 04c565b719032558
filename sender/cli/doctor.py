"""`drip doctor`: the sending domain, the links and the provider, checked before a send."""

from __future__ import annotations

import click

from .. import doctor as doctor_lib
from ..dns_checks import Dns
from .common import echo_json, json_option, pass_state

LABELS = {doctor_lib.OK: "ok  ", doctor_lib.WARN: "warn", doctor_lib.FAIL: "FIX ",
          doctor_lib.SKIP: "skip"}


def _nameserver(value):
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    if not port.isdigit() and port:
        raise click.BadParameter(f"{value!r}: write HOST or HOST:PORT, e.g. 127.0.0.1:5353",
                                 param_hint="--dns-server")
    return host or value, int(port or 53)


@click.command()
@click.option("--dns-server", metavar="HOST[:PORT]",
              help="Ask this DNS server instead of the system's (e.g. 1.1.1.1).")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
              help="Also trust the CAs in this PEM file for DRIP_BASE_URL (a private CA).")
@click.option("--no-web", is_flag=True, help="Skip the HTTPS and unsubscribe checks.")
@click.option("--no-provider", is_flag=True, help="Skip the calls to the provider's API.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for each answer.")
@json_option
@pass_state
def doctor(state, dns_server, ca_bundle, no_web, no_provider, timeout, as_json):
    """Check that the sending domain is ready for Gmail, Yahoo and Outlook: SPF, DKIM,
    DMARC and MX of the From domain, that From, Reply-To, the Return-Path and
    DRIP_BASE_URL agree, that DRIP_BASE_URL answers over HTTPS with a valid certificate
    and one-click unsubscribe works, and what the provider says about the key and the
    domain (read-only). Each problem comes with the record to add. Exit 1 when
    something needs fixing.

    \b
    Example:
      drip doctor
      drip doctor --json
    """
    settings = state.drip.settings
    if dns_server:
        host, port = _nameserver(dns_server)
        lookup = Dns(nameserver=host, port=port, timeout=timeout)
    else:
        lookup = Dns(timeout=timeout)
    report = doctor_lib.diagnose(settings, lookup=lookup, web=not no_web,
                                 provider=not no_provider, ca_bundle=ca_bundle, timeout=timeout)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(f"drip doctor: {settings.sender.domain} through {settings.provider}\n")
        for check in report.checks:
            click.echo(f"{LABELS[check.status]}  {check.title}")
            click.echo(f"      {check.detail}")
            if check.fix and check.status in (doctor_lib.FAIL, doctor_lib.WARN):
                click.echo(f"      To fix: {check.fix}")
        counts = report.to_dict()["counts"]
        click.echo(f"\n{counts['fail']} to fix, {counts['warn']} to consider, {counts['ok']} ok"
                   + (f", {counts['skip']} not checked" if counts["skip"] else ""))
    if not report.ok:
        raise SystemExit(1)
