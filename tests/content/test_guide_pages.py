"""The guide PDF as a reader sees it: its pages drawn by pdftoppm (poppler-utils) and
measured, its fonts and pictures read with pypdf.

- no page is under a third full, except the cover;
- every font is embedded, and it is the shipped one (Lato), so the PDF looks the same
  wherever it is built and opened;
- every picture images.toml places in the guide is in its section, the cover has its
  picture and the coach's photo, and the summary for the fridge is one page, the last;
- the contents page's numbers are the pages the sections start on;
- each page matches its reference image (tests/content/reference/guide/).

The figures (pages, how full each one is) are printed with -s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from sender.config import Settings
from sender.drip import Drip
from sender.guide import build_guide
from tests.conftest import REPO, base_env

from .conftest import needs_shipped
from .references import difference

PDFTOPPM = shutil.which("pdftoppm")
DPI = 40
TOP, BOTTOM = 0.85, 0.9        # inches: the page margins, where the running header and number sit
INK = 200                      # a grey level below this is ink
LEAST_FILL = 1 / 3

pytestmark = [
    needs_shipped,
    pytest.mark.skipif(not PDFTOPPM, reason="pdftoppm not installed (Debian package poppler-utils; "
                                            "scripts/install-test-tools.sh installs it)"),
]


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    """(PdfReader, [page images], named destinations {id: page number}) of the shipped guide."""
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:
        pytest.skip(f"WeasyPrint cannot load its system libraries ({exc})")
    root = tmp_path_factory.mktemp("guide")
    for folder in ("campaigns", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    drip = Drip(Settings.from_env(base_env(root, DRIP_COACH_CITY="Redmond, WA")))
    try:
        built = build_guide(drip, root / "out", today=date(2026, 3, 2))
    finally:
        drip.close()
    subprocess.run([PDFTOPPM, "-r", str(DPI), "-gray", "-png", str(built.pdf), str(root / "page")],
                   check=True, timeout=120)
    pages = []
    for path in sorted(root.glob("page-*.png")):
        with Image.open(path) as opened:
            pages.append(opened.convert("L"))
    reader = PdfReader(built.pdf)
    destinations = {name: reader.get_destination_page_number(dest) + 1
                    for name, dest in reader.named_destinations.items()}
    assert len(pages) == len(reader.pages) == built.pages
    return reader, pages, destinations


def fill(page):
    """(how much of the text area's height holds something, share of it that is ink)."""
    top, bottom = round(TOP * DPI), page.height - round(BOTTOM * DPI)
    body = page.crop((0, top, page.width, bottom))
    mask = body.point(lambda v: 255 if v < INK else 0)
    box = mask.getbbox()
    if box is None:
        return 0.0, 0.0
    ink = mask.histogram()[255] / (body.width * body.height)
    return (box[3] - box[1]) / body.height, ink


def test_no_page_but_the_cover_is_under_a_third_full(guide):
    _reader, pages, _dests = guide
    figures = [fill(page) for page in pages]
    print(f"\nguide: {len(pages)} pages; text area filled (height, ink):")
    print("  " + ", ".join(f"{n}: {h:.0%} {i:.1%}" for n, (h, i) in enumerate(figures, 1)))
    sparse = [f"page {n}: {h:.0%} full" for n, (h, _i) in enumerate(figures, 1)
              if n > 1 and h < LEAST_FILL]
    assert not sparse, "pages under a third full: " + ", ".join(sparse)
    assert figures[0][1] > 0.15, "the cover should be a designed page, not a line of text"
    assert len(pages) <= 24


def _fonts(reader):
    for number, page in enumerate(reader.pages, 1):
        resources = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            yield number, str(font.get("/BaseFont")), described.get("/FontDescriptor")


def test_every_font_is_embedded_and_is_the_shipped_one(guide):
    reader, _pages, _dests = guide
    found = list(_fonts(reader))
    assert found, "no fonts in the PDF"
    for number, name, descriptor in found:
        descriptor = descriptor.get_object()
        assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), \
            f"page {number}: {name} is not embedded"
        assert "+Lato" in name, f"page {number}: {name} is a system font, not the shipped Lato"


def _sections():
    source = (REPO / "templates/guide/guide.html").read_text()
    return re.findall(r'\{"id": "([^"]+)", "file": "[^"]+", "title": "([^"]+)"', source)


def test_every_picture_is_in_the_sections_images_toml_names(guide):
    _reader, pages, dests = guide
    order = [section for section, _title in _sections()]
    starts = [dests[s] for s in order]
    ranges = {s: (start, (starts[i + 1] if i + 1 < len(starts) else len(pages)))
              for i, (s, start) in enumerate(zip(order, starts, strict=True))}
    shown = {}
    for name, page in dests.items():
        match = re.fullmatch(r"picture-(.+)-(\d+)", name)
        if match:
            shown.setdefault(match[1], []).append(page)
    listed = tomllib.loads((REPO / "templates/images/images.toml").read_text())["images"]
    missing = []
    for entry in listed:
        stem = Path(entry["file"]).stem
        for section in entry.get("guide", []):
            first, last = ranges[section]
            if not any(first <= page <= last for page in shown.get(stem, [])):
                missing.append(f"{stem} in {section} (pages {first}-{last}; shown on {shown.get(stem)})")
    assert not missing, "pictures missing from the guide: " + "; ".join(missing)
    illustrations = {Path(e["file"]).stem for e in listed if not e.get("placeholder")}
    assert illustrations <= set(shown), illustrations - set(shown)
    assert {"posture-sway-vs-stacked", "coach-photo"} <= {n for n, p in shown.items() if 1 in p}


def test_the_summary_for_the_fridge_is_the_last_page_and_fits_on_it(guide):
    reader, pages, dests = guide
    assert dests["on-your-fridge"] == len(pages)
    text = reader.pages[-1].extract_text()
    for words in ("Your week on one page", "Mon", "Sun", "Hip thrust", "Stop signs", "911"):
        assert words in text, words


def test_the_contents_give_the_page_each_section_starts_on(guide):
    reader, _pages, dests = guide
    lines = [re.sub(r"\s+", " ", line).strip() for line in reader.pages[1].extract_text().splitlines()]
    numbers = {}
    for line in lines:
        match = re.fullmatch(r"(.+?)[ .]*\.{3,}[ .]*(\d+)|(.+?) (\d+)", line)
        if match:
            numbers[(match[1] or match[3]).strip(" .")] = int(match[2] or match[4])
    for section, title in _sections():
        title = title.replace("&amp;", "&")
        assert numbers.get(title) == dests[section], (title, numbers.get(title), dests[section])


def test_the_pages_look_like_their_references(guide):
    _reader, pages, _dests = guide
    problems = [difference(page, f"guide/page-{number:02d}", factor=2)
                for number, page in enumerate(pages, 1)]
    stored = sorted((Path(__file__).parent / "reference" / "guide").glob("page-*.png"))
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)
    assert len(stored) == len(pages), f"{len(stored)} reference pages for a {len(pages)}-page guide"
