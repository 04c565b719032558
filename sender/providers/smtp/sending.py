"""SMTP through the standard library, for any provider that offers it.

SMTP_SECURITY is ``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or
``none`` (a local relay); it logs in when SMTP_USERNAME is set. Every connection
greets the server with EHLO (HELO when EHLO is refused), and again after STARTTLS. The
connection is kept open across batches and reopened once if the server drops it. Each
message goes as its full MIME form (``as_bytes()``), our Message-ID included; one
that the last header check refuses is rejected before the server sees anything.
A 5xx for a recipient rejects the message and suppresses the address; a 4xx is
retried later. A connection lost during DATA is an unknown outcome (settled by a
decision, never resent blindly). SMTP cannot hold messages for later or be asked
after a crash.
"""

from __future__ import annotations

import smtplib
import ssl

from ...errors import HeaderInjection, ProviderError
from ...logging_setup import Masker
from ..base import ACCEPTED, REJECTED, RETRY, UNKNOWN, Provider, SendResult
from .settings import SECURITY


class SmtpProvider(Provider):
    name = "smtp"
    batch_size = 50

    def handoff_chunks(self, messages):
        """One message at a time: SMTP sends them one after another on one connection."""
        return [[m] for m in messages]

    def __init__(self, host, port, *, security="starttls", username=None, password=None,
                 timeout=30.0, ssl_context=None):
        if security not in SECURITY:
            raise ProviderError(f"SMTP_SECURITY: {security!r} is not one of {', '.join(SECURITY)}")
        self.host, self.port, self.security = host, int(port), security
        self.username, self.password, self.timeout = username, password, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.mask = Masker([password], users=[username])   # a server's reply may echo the login
        self._conn = None

    def _connect(self):
        conn = None
        try:
            if self.security == "tls":
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=self.ssl_context)
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            # Greet first, on every connection: servers that require it (Postfix with
            # smtpd_helo_required) answer 503 to MAIL otherwise. smtplib greets only on its
            # way to STARTTLS or a login. EHLO, or HELO when EHLO is refused.
            conn.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                conn.starttls(context=self.ssl_context)
                conn.ehlo_or_helo_if_needed()   # STARTTLS starts a new session (RFC 3207)
            if self.username:
                conn.login(self.username, self.password or "")
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _open(self):
        try:
            return self._connect(), None
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"smtp: {self.host} refused the login ({exc.smtp_code}); "
                                "check SMTP_USERNAME and SMTP_PASSWORD", status=exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ProviderError(f"smtp: {self.host} does not support {exc}; check SMTP_SECURITY "
                                "and SMTP_USERNAME") from None
        except ssl.SSLError as exc:
            raise ProviderError(f"smtp: TLS with {self.host}:{self.port} failed ({exc.reason}); "
                                "check SMTP_SECURITY and SMTP_PORT") from None
        except (OSError, smtplib.SMTPException) as exc:
            return None, self.mask(f"smtp: cannot reach {self.host}:{self.port} "
                                   f"({type(exc).__name__}: {exc})")

    def verify(self):
        """Connect, greet and log in, then quit, sending nothing (`drip doctor`): None when
        that worked, else what went wrong. A refused login raises ProviderError."""
        conn, error = self._open()
        if conn is None:
            return error
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        return None

    def send(self, messages):
        if any(m.send_at for m in messages):
            raise ProviderError("smtp cannot hold messages for later; run drip send from cron or "
                                "drip worker instead")
        results = []
        for message in messages:
            try:
                data = message.as_bytes()   # the last guard runs before the server sees anything
            except HeaderInjection as exc:
                results.append(SendResult(message.delivery_id, REJECTED, error=str(exc)))
                continue
            results.append(self._send_one(message, data))
        return results

    def _send_one(self, message, data, reconnect=True):
        if self._conn is None:
            self._conn, error = self._open()
            if self._conn is None:
                return SendResult(message.delivery_id, RETRY, error=error)
        conn = self._conn
        # The envelope (MAIL, RCPT) is sent step by step so that a dropped connection can be
        # told apart: before DATA nothing was taken and sending again is safe; during DATA
        # the server may have queued it, so the outcome is unknown and never resent blindly.
        try:
            code, text = conn.mail(message.sender.addr_spec)
            if code != 250:
                conn.rset()
                return self._refused(message, code, text)
            code, text = conn.rcpt(message.to.addr_spec)
            if code not in (250, 251):
                conn.rset()
                return self._refused(message, code, text)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            if reconnect:       # typically an idle connection the server had closed
                return self._send_one(message, data, reconnect=False)
            return SendResult(message.delivery_id, RETRY, error=f"smtp: connection lost ({exc})")
        try:
            code, text = conn.data(data)
        except smtplib.SMTPDataError as exc:
            return self._refused(message, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult(message.delivery_id, UNKNOWN,
                              error=f"smtp: connection lost during DATA ({exc}); it may have "
                                    "been sent")
        if code != 250:
            conn.rset()
            return self._refused(message, code, text)
        return SendResult(message.delivery_id, ACCEPTED, provider_message_id=message.message_id)

    def _refused(self, message, code, text):
        detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        error = self.mask(f"smtp {code}: {detail}")
        if 400 <= code < 500:
            return SendResult(message.delivery_id, RETRY, error=error)
        return SendResult(message.delivery_id, REJECTED, error=error, suppress=code in (550, 551, 553))

    def _drop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn = None

    def close(self):
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self._drop()


def build(settings, *, extra_headers=None):
    """The SMTP provider as configured (``extra_headers`` are for API providers)."""
    return SmtpProvider(settings.require("SMTP_HOST"), settings.value("SMTP_PORT"),
                        security=settings.value("SMTP_SECURITY"),
                        username=settings.value("SMTP_USERNAME"),
                        password=settings.value("SMTP_PASSWORD"), timeout=settings.http_timeout)
