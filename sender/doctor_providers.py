"""The doctor asks the provider, with read-only calls, whether the key works and what it
thinks of the sending domain. What to ask each one is in its folder
(``sender/providers/<name>/doctor.py``); this runs it and words what stops it: a key the
provider refuses, or a provider that cannot be asked at all.
"""

from __future__ import annotations

from .doctor_report import FAIL, Check
from .errors import ConfigError, ProviderError
from .providers import get_provider, registry
from .providers.doctor import refused


def provider_checks(settings, ctx):
    name = ctx.provider
    try:
        provider = get_provider(settings)
    except (ConfigError, ProviderError) as exc:
        return [Check("provider", FAIL, f"{name} key", str(exc), "Set it in .env.")]
    try:
        doctor = registry.part(name, "doctor")
        return doctor.checks(provider, settings, ctx) if doctor else []
    except ProviderError as exc:
        if exc.status in (401, 403):
            return [refused(name, exc, getattr(provider, "key_setting", ""))]
        # No answer, or an answer that is not about the key: say so, not "the key".
        url = getattr(getattr(provider, "http", None), "base_url", "")
        return [Check("provider", FAIL, f"{name} reachable",
                      f"{name} could not be asked at {url or 'its API'}: {exc}.",
                      f"Check the network and {name.upper()}_API_URL; try again later if "
                      f"{name} is having trouble.")]
    finally:
        provider.close()
