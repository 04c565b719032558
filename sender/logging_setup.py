"""Logging for the CLI: quiet by default, detailed with --debug, secrets always masked."""

from __future__ import annotations

import logging
import re

MASK = "********"
_AUTH_HEADER = re.compile(r"(?i)((?:authorization|x-postmark-server-token|api-key)\"?'?\s*[:=]\s*"
                          r"\"?'?)(?:basic |bearer )?[^\s\"',}]+")


def mask(text, secrets):
    """``text`` with every secret value and every credential header value masked."""
    text = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)


class MaskSecrets(logging.Filter):
    def __init__(self, secrets):
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record):
        record.msg = mask(record.getMessage(), self.secrets)
        record.args = ()
        return True


def configure_logging(*, debug, secrets):
    logger = logging.getLogger("drip")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskSecrets(secrets))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False
    return logger
