"""The small family of errors drip raises.

Every message says what went wrong and how to fix it. The CLI turns a
``DripError`` into exit code 1 (a failure the user can fix); click itself
answers bad usage with exit code 2.
"""

import os


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


class ImageError(DripError):
    """A picture could not be listed, found or converted; the message says which and why."""


_UNKNOWN = object()


class DatabaseMissing(DripError):
    """DRIP_DATABASE names a SQLite file that is not there. Only `drip init` and `drip
    migrate` create one: anything else would look like every subscriber was lost (drip run
    from the wrong folder). ``explain`` adds which settings file was read."""

    def __init__(self, path):
        self.path = str(path)
        super().__init__(self.explain())

    def explain(self, env_file=None, env_loaded=False, setting=_UNKNOWN):
        """The message with where drip looked. ``setting`` is DRIP_DATABASE as it was given
        (None or "": not set), which only the caller that read the settings knows."""
        folder = os.getcwd()
        where = os.path.abspath(self.path)
        if setting is _UNKNOWN:
            named = "DRIP_DATABASE named it"
        else:
            named = (f"DRIP_DATABASE is {setting}" if setting
                     else "DRIP_DATABASE is not set (drip.db)")
        lines = [f"no database at {where}", f"{named}, looked for from the folder {folder}"]
        if env_file is not None:
            env_path = os.path.abspath(env_file)
            lines[-1] += (f", with the settings loaded from {env_path}." if env_loaded
                          else f"; no settings file {env_path} was found.")
        else:
            lines[-1] += "."
        lines += ["If the project is elsewhere, run drip from its folder, give its settings "
                  "with --env-file PATH/.env, or set DRIP_DATABASE to its database file.",
                  "To start a new, empty database here, run `drip migrate` (`drip init` also "
                  "writes a starter .env). Nothing was created."]
        return "\n  ".join(lines)


class HeaderInjection(InvalidInput):
    """A value bound for an email header could break out of it (a line break or other
    control character, or '=?', which opens an encoded word), or a built message's header
    block is not the one we meant to send. ``reason`` is the why, without the value."""

    def __init__(self, message, *, reason=None):
        self.reason = reason or message
        super().__init__(message)


class ProviderError(DripError):
    """The email provider failed in a way that stops the run (bad key, bad config)."""

    def __init__(self, message, *, status=None, body=None):
        self.status = status
        self.body = body
        super().__init__(message)
