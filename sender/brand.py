"""The coach as the emails and pages show her: ``Coach`` (name, credentials, links) and
``Brand`` (colours, font, logo on the web pages). ``Settings`` builds both from the
DRIP_COACH_* and DRIP_BRAND_* settings."""

from __future__ import annotations

from dataclasses import dataclass

from .setting_values import colour, font, https_url

FALLBACK_FONTS = "Helvetica, Arial, sans-serif"             # the emails' own stack
DARK_TEXT, LIGHT_TEXT = "#1f1a17", "#ffffff"


@dataclass(frozen=True)
class Coach:
    name: str
    credentials: str
    city: str
    signoff: str
    website_url: str
    blog_url: str
    instagram_url: str
    contact_url: str
    booking_url: str


def _luminance(hex_colour):
    digits = hex_colour[1:] if len(hex_colour) == 7 else "".join(c * 2 for c in hex_colour[1:])
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@dataclass(frozen=True)
class Brand:
    """The coach's look on the web pages. Every value is checked on creation, so the pages
    may put them into CSS and HTML as they are."""

    color: str = "#8a4a36"
    accent: str = "#5b2f22"
    font: str = ""
    logo_url: str = ""

    def __post_init__(self):
        for name, check in (("color", colour), ("accent", colour), ("font", font),
                            ("logo_url", https_url)):
            object.__setattr__(self, name, check(getattr(self, name)))

    @property
    def font_stack(self):
        """The CSS font-family: her font first, then the emails' web-safe fonts."""
        return f'"{self.font}", {FALLBACK_FONTS}' if self.font else FALLBACK_FONTS

    @property
    def on_color(self):
        """Text colour for a button in the brand colour: whichever contrasts more."""
        lum = _luminance(self.color)
        return LIGHT_TEXT if (1.05 / (lum + 0.05)) >= (lum + 0.05) / (_luminance(DARK_TEXT) + 0.05) \
            else DARK_TEXT
