"""The coach's brand (DRIP_BRAND_*) in the emails and the guide, as on her web pages: the
main colour on buttons, links and the band at the top, the second on headings, her font
first with the email-safe fonts after it; the defaults keep the emails' own look."""

from __future__ import annotations

import re

from sender.compose import compose
from sender.guide import render_guide_html
from sender.samples import SAMPLES
from tests.conftest import base_env

from .conftest import needs_shipped
from .test_guide import NOW

BRAND = {"DRIP_BRAND_COLOR": "#0a7b83", "DRIP_BRAND_ACCENT": "#c2185b", "DRIP_BRAND_FONT": "Trebuchet MS"}


def _welcome_html(drip):
    welcome = drip.campaigns.get("welcome")
    return compose(drip, SAMPLES[0].subscriber, welcome, welcome.steps[0], now=NOW).html


@needs_shipped
def test_the_emails_carry_the_brand(shipped, make_drip):
    html = _welcome_html(make_drip(base_env(shipped, **BRAND)))
    [button] = re.findall(r'<a class="button"[^>]*style="([^"]*)"', html)
    assert "background-color: #0a7b83" in button and "color: #ffffff" in button
    assert re.search(r'<h2 style="[^"]*color: #c2185b', html)
    assert re.search(r'<body style="[^"]*font-family: &quot;Trebuchet MS&quot;, Helvetica, Arial, '
                     r'sans-serif|<body style="[^"]*font-family: \'Trebuchet MS\', Helvetica, Arial, '
                     r'sans-serif', html), re.search(r"<body[^>]*>", html)[0]
    assert "border-top: 6px solid #0a7b83" in html
    assert "#8a4a36" not in html and "#5b2f22" not in html


@needs_shipped
def test_the_default_brand_is_the_emails_own_look(shipped, make_drip):
    html = _welcome_html(make_drip(base_env(shipped)))
    assert "background-color: #8a4a36" in html and "color: #5b2f22" in html
    assert "font-family: Helvetica, Arial, sans-serif" in html


@needs_shipped
def test_the_guide_carries_the_brand_and_embeds_its_font(shipped, make_drip):
    drip = make_drip(base_env(shipped, **BRAND))
    printed = render_guide_html(drip, for_print=True)
    assert "background-color: #0a7b83" in printed and "color: #c2185b" in printed
    assert re.search(r'@font-face \{\s*font-family: "Lato";\s*font-weight: 400;\s*font-style: normal;\s*'
                     r'src: url\("file://[^"]+/Lato-Regular\.ttf"\)', printed)
    assert 'font-family: "Trebuchet MS", "Lato", Helvetica' in printed      # headings
    screen = render_guide_html(drip, for_print=False)
    assert "@font-face {" not in screen and "file://" not in screen
