"""Logging for the CLI: quiet by default, detailed with --debug, secrets always masked.

``Masker`` is the one place secrets are masked: every log line, every provider answer
quoted in an error, and every error the CLI prints goes through one, built from the
configured secrets with every form they could take (``secret_forms``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote, quote_plus

from .providers.registry import auth_headers

MASK = "********"
# Credential headers: the common ones, and those a provider declares in its folder.
_HEADERS = "|".join(re.escape(h.lower()) for h in ("authorization", "api-key", *auth_headers()))
_AUTH_HEADER = re.compile(rf"(?i)((?:{_HEADERS})\"?'?\s*[:=]\s*"
                          r"\"?'?)(?:basic |bearer )?[^\s\"',}]+")
MIN_DERIVED = 6      # shorter encoded forms are left alone: masking them would garble any text


def secret_forms(secrets, users=()):
    """Every form in which one of ``secrets`` could show up in text, longest first.

    A provider's error answer, a library's message or a debug log may carry a key as it is
    or encoded: base64 (standard and URL-safe, with and without padding) of the key alone,
    of ``user:key`` (an HTTP Basic Authorization header, such as Mailgun's ``api:KEY``) and
    of ``\\0user\\0key`` (SMTP AUTH PLAIN), for each of ``users``; percent- and form-encoded
    (in a URL or a form body); JSON-escaped, with or without ``\\/``; hex (lower and upper
    case) of the key, of ``user:key`` and of ``\\0user\\0key``. A ``Basic`` or ``Bearer``
    header value is covered through its token.
    """
    users = [u for u in users if u]
    forms = set()
    for secret in (s for s in secrets if s):
        found = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
                 json.dumps(secret)[1:-1]}
        for value in (secret, *(f"{u}:{secret}" for u in users), *(f"\0{u}\0{secret}" for u in users)):
            for coded in (base64.b64encode(value.encode()), base64.urlsafe_b64encode(value.encode())):
                found.update({coded.decode("ascii"), coded.decode("ascii").rstrip("=")})
            found.update({value.encode().hex(), value.encode().hex().upper()})
        forms.update(f for f in found if f == secret or len(f) >= MIN_DERIVED)
    forms |= {f.replace("/", "\\/") for f in forms}
    return sorted(forms, key=lambda f: (-len(f), f))


class Masker:
    """Callable: ``text`` with every form of ``secrets`` (see ``secret_forms``) and every
    credential header value masked."""

    def __init__(self, secrets=(), users=()):
        self.forms = secret_forms(secrets, users)
        self._pattern = re.compile("|".join(map(re.escape, self.forms))) if self.forms else None

    def __call__(self, text):
        text = str(text)
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)


class MaskSecrets(logging.Filter):
    """Masks a record's message, and the traceback or stack it carries, with ``masker``."""

    def __init__(self, masker):
        super().__init__()
        self.masker = masker

    def filter(self, record):
        record.msg = self.masker(record.getMessage())
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker(record.exc_text)
        if record.stack_info:
            record.stack_info = self.masker(record.stack_info)
        return True


def configure_logging(*, debug, masker):
    logger = logging.getLogger("drip")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskSecrets(masker))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False
    return logger
