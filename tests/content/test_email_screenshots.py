"""Every email, with its pictures, in headless Chromium at desktop (600 px) and phone (375 px)
width: the whole page is captured and compared with its reference image
(tests/content/reference/emails/), every picture has loaded at the size the email gives it,
and the HTML stays well under Gmail's clip.

The emails are the preview's files (``drip preview``), whose pictures load from the
``assets/`` folder beside them: the same files `drip serve` and `drip assets publish` give.
DRIP_UPDATE_REFERENCES=1 writes new references; DRIP_SCREENSHOTS=folder keeps the
full-size screenshots to look at.
"""

from __future__ import annotations

import base64
import io
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from sender.preview import build_site
from sender.samples import SAMPLES
from tests.chromium import needs_chromium, start_chromium
from tests.conftest import REPO, base_env

from .conftest import needs_shipped
from .references import difference

WIDTHS = (600, 375)
GMAIL_CLIP = 102 * 1024
WELL_UNDER = 60 * 1024          # each email's HTML: well under the clip
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)

pytestmark = [needs_shipped, needs_chromium]


@pytest.fixture(scope="module")
def emails(tmp_path_factory):
    """(site folder, [email file names for the first sample subscriber])."""
    from sender.config import Settings
    from sender.drip import Drip

    root = tmp_path_factory.mktemp("emails")
    for folder in ("campaigns", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    drip = Drip(Settings.from_env(base_env(root, DRIP_COACH_CITY="Redmond, WA")))
    try:
        build_site(drip, root / "site", now=NOW, samples=SAMPLES[:1])
        names = [f"{c.id}.{s.id}.{SAMPLES[0].key}" for c in drip.campaigns for s in c.steps]
    finally:
        drip.close()
    return root / "site", names


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chrome"), "--hide-scrollbars",
                            "--force-device-scale-factor=1", "--font-render-hinting=none")
    yield driver
    driver.quit()


PICTURES = """
return Array.from(document.images).map(img => [img.getAttribute('src'), img.complete,
    img.naturalWidth, img.getAttribute('width'), Math.round(img.getBoundingClientRect().width)]);
"""


def _full_page(browser, path, width):
    """The whole page at ``width`` px, and its pictures as the browser loaded them."""
    browser.set_window_size(width, 900)
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return window.innerWidth") == width
    pictures = browser.execute_script(PICTURES)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    with Image.open(io.BytesIO(base64.b64decode(shot["data"]))) as image:
        return image.convert("RGB"), pictures


def test_every_email_looks_like_its_reference_at_both_widths(emails, browser):
    folder, names = emails
    assert len(names) >= 11
    problems, figures = [], []
    for name in names:
        for width in WIDTHS:
            image, pictures = _full_page(browser, folder / f"{name}.html", width)
            assert image.width == width
            for src, complete, natural, attribute, shown in pictures:
                if not (complete and natural > 0):
                    problems.append(f"{name} at {width} px: the picture {src} did not load")
                elif shown > int(attribute) or shown > width:
                    problems.append(f"{name} at {width} px: {src} is {shown} px wide")
            figures.append(f"{name.rsplit('.', 1)[0]}@{width}: {image.height} px, {len(pictures)} pictures")
            found = difference(image, f"emails/{name.rsplit('.', 1)[0]}-{width}", factor=3)
            if found:
                problems.append(found)
    print("\n" + "\n".join(figures))
    assert not problems, "\n".join(problems)


def test_the_illustrated_emails_show_their_pictures(emails, browser):
    folder, _names = emails
    page = folder / f"glute-progression.foundation.{SAMPLES[0].key}.html"
    _image, pictures = _full_page(browser, page, 600)
    sources = [Path(src).name.split(".")[0] for src, *_ in pictures]
    assert sources == ["logo", "glute-bridge", "clamshell", "heel-slide"]
    assert all(src.startswith("assets/") for src, *_ in pictures)
    assert [shown for *_, shown in pictures][1:] == [536, 536, 536]


def test_every_email_is_well_under_gmails_clip(emails):
    folder, names = emails
    sizes = {name: (folder / f"{name}.html").stat().st_size for name in names}
    print("\n" + ", ".join(f"{n.split('.')[1]}: {s / 1024:.1f} KB" for n, s in sizes.items()))
    assert max(sizes.values()) < WELL_UNDER < GMAIL_CLIP, sizes
