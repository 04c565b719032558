"""Email providers, one folder each (``registry`` lists them), behind the interface in
``base``; the HTTP layer they share is ``http``, the webhook helpers ``webhook``, the doctor's
``checks``.

``get_provider`` builds the one named by DRIP_PROVIDER from settings; a missing key is a
ConfigError that names the variable. Importing this package loads no provider code.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import registry

__all__ = ["get_provider"]


def get_provider(settings, name=None, *, extra_headers=None):
    """The provider named by DRIP_PROVIDER (or ``name``), configured from settings.

    ``extra_headers`` go on every API request (tests use it for Prism's ``Prefer``).
    """
    name = name or settings.provider
    sending = registry.part(name, "sending")
    if sending is None:
        raise ConfigError(f"DRIP_PROVIDER: provider {name!r} is not available in this version")
    return sending.build(settings, extra_headers=extra_headers)
