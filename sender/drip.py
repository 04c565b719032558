"""``Drip``: the settings plus the store, campaigns, templates and provider, opened lazily.

The CLI builds one per command; tests build one around a temporary folder.
"""

from __future__ import annotations

from functools import cached_property

from .campaigns import load_campaigns
from .providers import get_provider
from .render import make_environment
from .store import open_store
from .tokens import Signer


class Drip:
    def __init__(self, settings, *, store=None, provider=None):
        self.settings = settings
        if store is not None:
            self.store = store
        if provider is not None:
            self.provider = provider

    @cached_property
    def store(self):
        return open_store(self.settings.database)

    @cached_property
    def campaigns(self):
        return load_campaigns(self.settings.campaigns_dir, templates_dir=self.settings.templates_dir)

    @cached_property
    def templates(self):
        return make_environment(self.settings.templates_dir)

    @cached_property
    def signer(self):
        return Signer(self.settings.secret_key)

    @cached_property
    def provider(self):
        return get_provider(self.settings)

    def close(self):
        if "provider" in self.__dict__:
            self.provider.close()
        if "store" in self.__dict__:
            self.store.close()
