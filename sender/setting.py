"""One setting of the table (``sender/settings_table.py``): its name, help, example, default,
and how its text becomes a value.

Its own module so that each provider folder can declare its settings
(``sender/providers/<name>/settings.py``) without importing the configuration. The parsers a
declaration names are in ``sender/setting_values.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, InvalidInput


def how_to_set(name):
    return f"set {name} in .env (see .env.example) or in the environment"


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    example: str = ""
    default: str | None = None
    required: bool = False
    secret: bool = False
    group: str = "Core"
    login: bool = False     # a user name that travels beside a secret: masked with it
    # Text to value: raises InvalidInput (or ValueError) saying what is wrong, with an
    # example. None: the value is the text as given. Never quote a secret's text.
    parse: Callable[[str], Any] | None = None
    # The provider whose folder declares it (the registry fills it in): parsed at start only
    # when DRIP_PROVIDER names that provider, else when something asks for it.
    provider: str = ""

    def value_of(self, text):
        """``text`` (the default when it is empty) parsed; None when both are empty. A bad
        value is a ConfigError naming the setting, what is wrong and how to set it."""
        if text is None or text == "":
            text = self.default
        if text is None or text == "":
            return None
        if self.parse is None:
            return text
        try:
            return self.parse(text)
        except (InvalidInput, ConfigError, ValueError) as exc:
            raise ConfigError(f"{self.name}: {exc} ({how_to_set(self.name)})") from None
