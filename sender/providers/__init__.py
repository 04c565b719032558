"""Email providers, one module each, behind the interface in ``base``."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Provider, SendResult
from .outbox import OutboxProvider

__all__ = ["Provider", "SendResult", "OutboxProvider", "get_provider"]


def get_provider(settings, name=None):
    """The provider named by DRIP_PROVIDER (or ``name``), configured from settings."""
    name = name or settings.provider
    if name == "outbox":
        return OutboxProvider(settings.outbox_dir)
    raise ConfigError(f"DRIP_PROVIDER: provider {name!r} is not available in this version")
