"""A real SMTP server on loopback (aiosmtpd), as strict as Postfix about the greeting.

aiosmtpd already answers MAIL before HELO/EHLO with 503 and starts a fresh session after
STARTTLS (RFC 3207), so a client has to greet again there. ``StrictSMTP`` keeps that
rule with Postfix's wording (``smtpd_helo_required = yes``) whatever aiosmtpd's default
becomes, records every greeting and every command refused for the lack of one, can refuse
EHLO (so that a client must fall back to HELO), and lets a test close every open
connection from the server's side. No pytest here: ``benchmarks/providers.py`` uses it too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, syntax

from .loopback import free_port

NO_GREETING = "503 5.5.1 Error: send HELO/EHLO first"


class Received(NamedTuple):
    mail_from: str
    rcpt_tos: list
    content: bytes
    starttls: bool            # the session was upgraded by STARTTLS (not set for implicit TLS)


class Recorder:
    """An aiosmtpd handler that keeps what the server saw: ``received`` messages,
    ``greetings`` as (HELO or EHLO, after STARTTLS), and ``refused`` commands that came
    before any greeting. ``latency`` seconds pass before each DATA is answered."""

    def __init__(self, latency=0.0):
        self.received = []
        self.greetings = []
        self.refused = []
        self.latency = latency
        self.connections = set()
        self.changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        if self.latency:
            await asyncio.sleep(self.latency)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                      session.ssl is not None))
        return "250 2.0.0 queued"

    def close_connections(self, deadline=5.0):
        """Close every open connection from the server's side, as a server does to an idle
        client; returns once each one is closed."""
        with self.changed:
            open_now = list(self.connections)
        for connection in open_now:
            connection.loop.call_soon_threadsafe(connection.transport.abort)
        end = time.monotonic() + deadline
        with self.changed:
            while any(c in self.connections for c in open_now):
                if not self.changed.wait(end - time.monotonic()):
                    raise TimeoutError("the SMTP server did not close its connections")


class StrictSMTP(SMTP):
    def __init__(self, handler, *, refuse_ehlo=False, **kwargs):
        super().__init__(handler, **kwargs)
        self.refuse_ehlo = refuse_ehlo

    def connection_made(self, transport):
        super().connection_made(transport)       # also called again after STARTTLS
        with self.event_handler.changed:
            self.event_handler.connections.add(self)

    def connection_lost(self, error):
        super().connection_lost(error)
        with self.event_handler.changed:
            self.event_handler.connections.discard(self)
            self.event_handler.changed.notify_all()

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname):
        if self.refuse_ehlo:
            await self.push("502 5.5.2 Error: command not recognized")
            return
        await super().smtp_EHLO(hostname)
        self._greeted("EHLO")

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname):
        await super().smtp_HELO(hostname)
        self._greeted("HELO")

    def _greeted(self, command):
        if self.session.host_name:
            self.event_handler.greetings.append((command, self.session.ssl is not None))

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg):
        if not self.session.host_name:
            self.event_handler.refused.append("MAIL")
            await self.push(NO_GREETING)
            return
        await super().smtp_MAIL(arg)


class StrictController(Controller):
    """A Controller of ``StrictSMTP`` servers on 127.0.0.1 and a free port (``.port``)."""

    def __init__(self, handler, *, refuse_ehlo=False, **options):
        super().__init__(handler, hostname="127.0.0.1", port=free_port(), **options)
        self.refuse_ehlo = refuse_ehlo

    def factory(self):
        return StrictSMTP(self.handler, refuse_ehlo=self.refuse_ehlo, **self.SMTP_kwargs)
