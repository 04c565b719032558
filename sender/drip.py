"""``Drip``: the settings plus the store, campaigns, templates and provider, opened lazily.

The CLI builds one per command; tests build one around a temporary folder.
"""

from __future__ import annotations

import logging
from functools import cached_property

from .campaigns import load_campaigns
from .helpers import template_globals
from .providers import get_provider
from .render import make_environment
from .store import open_store
from .tokens import Signer

log = logging.getLogger("drip.campaigns")


class Drip:
    def __init__(self, settings, *, store=None, provider=None, create_database=True):
        self.settings = settings
        # False for the CLI: a missing SQLite file is an error, not a new empty database.
        self.create_database = create_database
        if store is not None:
            self.store = store
        if provider is not None:
            self.provider = provider

    @cached_property
    def store(self):
        return open_store(self.settings.database, create=self.create_database)

    @cached_property
    def campaigns(self):
        # Tolerant: a broken campaign file is logged and its emails wait; the others go on.
        campaigns = load_campaigns(self.settings.campaigns_dir,
                                   templates_dir=self.settings.templates_dir, tolerant=True)
        for problems in campaigns.broken.values():
            for problem in problems:
                log.error("campaign file left out until fixed (its emails wait): %s", problem)
        return campaigns

    @cached_property
    def templates(self):
        return make_environment(self.settings.templates_dir,
                                globals=template_globals(self.settings, lambda: self.campaigns))

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
