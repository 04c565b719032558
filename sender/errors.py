"""The small family of errors drip raises.

Every message says what went wrong and how to fix it. The CLI turns a
``DripError`` into exit code 1 (a failure the user can fix); click itself
answers bad usage with exit code 2.
"""


class DripError(Exception):
    """A failure the user can fix; the message says how."""


class ConfigError(DripError):
    """A setting is missing or invalid."""


class CampaignError(DripError):
    """A campaign file is invalid. ``problems`` lists every one found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class TemplateError(DripError):
    """A template failed to load or render; the message names the template and line."""


class NotFound(DripError):
    """A subscriber, delivery or other record does not exist."""


class InvalidInput(DripError):
    """A value given by the user (an address, a time, a field) is not acceptable."""


class HeaderInjection(InvalidInput):
    """A value bound for an email header contains CR or LF."""


class ProviderError(DripError):
    """The email provider failed in a way that stops the run (bad key, bad config)."""

    def __init__(self, message, *, status=None, body=None):
        self.status = status
        self.body = body
        super().__init__(message)
