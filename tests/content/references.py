"""Screenshots compared with the reference images stored in tests/content/reference/.

A reference is the screenshot reduced to grey and downscaled (so it stays small in the
repository); the comparison reduces the new screenshot the same way and allows a small
difference (anti-aliasing, a font hinting change), not a moved block or a missing picture.

To accept new references after a deliberate change, run the tests with
DRIP_UPDATE_REFERENCES=1 (scripts/update-references.sh), look at the new files, and commit
them. Set DRIP_SCREENSHOTS=folder to keep the full screenshots to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

REFERENCES = Path(__file__).parent / "reference"
UPDATE = os.environ.get("DRIP_UPDATE_REFERENCES") == "1"
MEAN_TOLERANCE = 2.5        # mean absolute difference per pixel, of 255
CHANGED_TOLERANCE = 0.015   # share of pixels that differ by more than CHANGED_LEVEL
CHANGED_LEVEL = 64
GREYS = 16                  # levels kept in a stored reference (a 4-bit palette PNG)


def reduce(image, factor):
    """``image`` in grey, ``factor`` times smaller, on ``GREYS`` levels."""
    grey = image.convert("L")
    size = (max(1, round(grey.width / factor)), max(1, round(grey.height / factor)))
    small = grey.resize(size, Image.Resampling.BOX)
    step = 256 // GREYS
    return small.point(lambda v: min(255, (v // step) * step + step // 2))


def keep(image, name):
    """Save the full screenshot under DRIP_SCREENSHOTS, when set, to look at."""
    folder = os.environ.get("DRIP_SCREENSHOTS")
    if folder:
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)


def difference(image, name, *, factor):
    """None when ``image`` matches reference ``name`` (a path under reference/, no
    suffix) within the tolerance, else what differs. With DRIP_UPDATE_REFERENCES=1 the
    reference is written instead."""
    keep(image, name)
    reduced = reduce(image, factor)
    path = REFERENCES / f"{name}.png"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        reduced.convert("P", palette=Image.Palette.ADAPTIVE, colors=GREYS).save(
            path, optimize=True, bits=4)
        return None
    if not path.is_file():
        return (f"{name}: no reference image {path.relative_to(REFERENCES.parent)}; run the "
                "tests with DRIP_UPDATE_REFERENCES=1 to make it, look at it, and commit it")
    with Image.open(path) as stored:
        reference = stored.convert("L")
    if reference.size != reduced.size:
        return (f"{name}: {reduced.size[0]}x{reduced.size[1]} (reduced), the reference is "
                f"{reference.size[0]}x{reference.size[1]}: the layout changed")
    diff = ImageChops.difference(reduced, reference)
    mean = ImageStat.Stat(diff).mean[0]
    changed = sum(diff.histogram()[CHANGED_LEVEL:]) / (diff.width * diff.height)
    if mean > MEAN_TOLERANCE or changed > CHANGED_TOLERANCE:
        return (f"{name}: differs from its reference (mean difference {mean:.2f}, "
                f"{changed:.1%} of pixels changed; allowed {MEAN_TOLERANCE} and "
                f"{CHANGED_TOLERANCE:.1%})")
    return None
