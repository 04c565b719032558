"""The preview site in a real browser: headless Chromium takes screenshots of the index and of
two emails at phone (375 px) and desktop (600 px) width; each must show something (not blank)
and nothing may be wider than the window. Then every email is measured the same way.

Set DRIP_SCREENSHOTS=folder to keep the PNGs and look at them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from sender.preview import build_site
from sender.samples import SAMPLES
from tests.chromium import needs_chromium, start_chromium
from tests.conftest import FIXTURES, base_env

from .conftest import SHIPPED, needs_shipped

WIDTHS = (375, 600)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The preview of the shipped content (the fixture project when there is none)."""
    from sender.config import Settings
    from sender.drip import Drip

    root = tmp_path_factory.mktemp("content")
    source = Path(__file__).parents[2] if SHIPPED else FIXTURES / "project"
    for folder in ("campaigns", "templates"):
        shutil.copytree(source / folder, root / folder)
    drip = Drip(Settings.from_env(base_env(root)))
    try:
        build_site(drip, root / "site")
        names = [f"{c.id}.{s.id}" for c in drip.campaigns for s in c.steps]
    finally:
        drip.close()
    return root / "site", names


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chrome"), "--hide-scrollbars")
    yield driver
    driver.quit()


def _open(browser, path, width, height=900):
    browser.set_window_size(width, height)
    browser.get(path.resolve().as_uri())
    inner = browser.execute_script("return window.innerWidth")
    assert inner == width, f"the window is {inner} px wide, not {width}"
    return browser.execute_script("return document.documentElement.scrollWidth")


def _blankness(png):
    """(distinct colours, share of pixels that differ from the commonest colour)."""
    with Image.open(png) as opened:
        image = opened.convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height)
    commonest = max(count for count, _colour in colours)
    return len(colours), 1 - commonest / (image.width * image.height)


def _two_emails(names):
    wanted = [n for n in names if n.startswith("welcome.")][:1]
    wanted += [n for n in names if n not in wanted and not n.startswith("confirmation.")][-1:]
    return wanted


@pytest.mark.parametrize("width", WIDTHS)
def test_screenshots_of_the_index_and_two_emails_render(site, browser, width, tmp_path):
    folder, names = site
    keep = Path(os.environ["DRIP_SCREENSHOTS"]) if os.environ.get("DRIP_SCREENSHOTS") else tmp_path
    keep.mkdir(parents=True, exist_ok=True)
    pages = ["index"] + [f"{name}.{SAMPLES[0].key}" for name in _two_emails(names)]
    assert len(pages) == 3
    for page in pages:
        scroll = _open(browser, folder / f"{page}.html", width)
        png = keep / f"{page}-{width}.png"
        browser.save_screenshot(str(png))
        with Image.open(png) as image:
            assert image.width == width
        colours, ink = _blankness(png)
        assert colours >= 16 and ink >= 0.02, f"{png.name} looks blank ({colours} colours, {ink:.1%} ink)"
        assert scroll <= width, f"{page}.html is {scroll} px wide in a {width} px window"


@needs_shipped
def test_no_email_is_wider_than_a_phone_or_the_desktop_column(site, browser):
    folder, names = site
    too_wide = []
    for name in names:
        for sample in (SAMPLES[0], SAMPLES[2]):   # a short and a long name
            for width in WIDTHS:
                scroll = _open(browser, folder / f"{name}.{sample.key}.html", width)
                if scroll > width:
                    too_wide.append(f"{name}.{sample.key}.html: {scroll} px in a {width} px window")
    assert not too_wide, "emails wider than the window:\n" + "\n".join(too_wide)
