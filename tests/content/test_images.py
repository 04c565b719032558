"""The shipped pictures in templates/images/ match their list, images.toml: every file listed with
alt text and its real size, small, self-contained SVG (no bitmaps, no web fonts), and placed in
emails and guide sections that exist."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import REPO

MAX_BYTES = 20_000
GENERIC_FONTS = {"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui"}
SVG = "{http://www.w3.org/2000/svg}"


def image_problems(templates: Path) -> list[str]:
    """Every problem with templates/images/ and its images.toml, as 'file: what is wrong'."""
    folder = templates / "images"
    listed = tomllib.loads((folder / "images.toml").read_text(encoding="utf-8"))["images"]
    guide = (templates / "guide" / "guide.html").read_text(encoding="utf-8")
    sections = set(re.findall(r'"id": "([^"]+)"', guide))
    problems = []
    names = [entry.get("file", "?") for entry in listed]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name}: listed more than once in images.toml")
    files = {p.name for p in folder.iterdir() if p.suffix.lower() in (".svg", ".png", ".jpg", ".jpeg")}
    for name in sorted(files - set(names)):
        problems.append(f"{name}: not listed in images.toml")
    for entry in listed:
        name = entry.get("file", "?")
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: listed in images.toml but there is no such file")
            continue
        alt = entry.get("alt", "").strip()
        if not alt:
            problems.append(f"{name}: no alt text")
        elif not entry.get("placeholder") and len(alt.split()) < 12:
            problems.append(f"{name}: the alt text should describe the position in words ({alt!r})")
        for email in entry.get("emails", []):
            if not (templates / "emails" / f"{email}.html").is_file():
                problems.append(f"{name}: emails: no template emails/{email}.html")
        for section in entry.get("guide", []):
            if section not in sections:
                problems.append(f"{name}: guide: no section {section!r} in guide/guide.html")
        if path.stat().st_size > MAX_BYTES:
            problems.append(f"{name}: {path.stat().st_size} bytes, over {MAX_BYTES}")
        if path.suffix == ".svg":
            problems += [f"{name}: {p}" for p in svg_problems(path, entry)]
    return problems


def svg_problems(path: Path, entry: dict) -> list[str]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return [f"not well-formed SVG ({exc})"]
    text = path.read_text(encoding="utf-8")
    problems = []
    size = (root.get("width"), root.get("height"))
    if size != (str(entry.get("width")), str(entry.get("height"))):
        problems.append(f"images.toml says {entry.get('width')}x{entry.get('height')}, the SVG is "
                        f"{size[0]}x{size[1]}")
    if root.get("viewBox") != f"0 0 {size[0]} {size[1]}":
        problems.append(f"viewBox {root.get('viewBox')!r} does not match width and height")
    if root.find(f".//{SVG}image") is not None or "data:" in text:
        problems.append("embeds a bitmap or a data: URL")
    if "@font-face" in text or "@import" in text:
        problems.append("loads a font or a stylesheet")
    for family in re.findall(r"font-family\s*[:=]\s*[\"']?([^;\"'}]+)", text):
        if {f.strip().strip("'\"") for f in family.split(",")} - GENERIC_FONTS:
            problems.append(f"font-family {family.strip()!r}: use a generic family (sans-serif)")
    return problems


def test_the_shipped_images_match_images_toml():
    assert image_problems(REPO / "templates") == []


def test_image_problems_are_reported(tmp_path):
    templates = tmp_path / "templates"
    (templates / "images").mkdir(parents=True)
    (templates / "guide").mkdir()
    (templates / "emails" / "glute").mkdir(parents=True)
    (templates / "emails" / "glute" / "01-a.html").write_text("<p>Hi</p>")
    (templates / "guide" / "guide.html").write_text('{% set sections = [{"id": "walking"}] %}')
    good = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5" viewBox="0 0 10 5">'
            '<text style="font-family:sans-serif">A</text></svg>')
    (templates / "images" / "good.svg").write_text(good)
    (templates / "images" / "bad.svg").write_text(
        good.replace('height="5"', 'height="6"').replace("sans-serif", "Lato, sans-serif")
        .replace("</svg>", '<image href="data:image/png;base64,AAAA"/></svg>'))
    (templates / "images" / "stray.png").write_bytes(b"\x89PNG")
    (templates / "images" / "images.toml").write_text(
        '[[images]]\nfile = "good.svg"\nalt = "Side view: lying on her back, knees bent, feet flat, '
        'hips lifted in one line"\nwidth = 10\nheight = 5\nemails = ["glute/01-a"]\nguide = ["walking"]\n'
        '[[images]]\nfile = "bad.svg"\nalt = "A woman"\nwidth = 10\nheight = 5\n'
        'emails = ["glute/99-none"]\nguide = ["nowhere"]\n'
        '[[images]]\nfile = "gone.svg"\nalt = "x"\nwidth = 1\nheight = 1\n')
    assert image_problems(templates) == [
        "stray.png: not listed in images.toml",
        "bad.svg: the alt text should describe the position in words ('A woman')",
        "bad.svg: emails: no template emails/glute/99-none.html",
        "bad.svg: guide: no section 'nowhere' in guide/guide.html",
        "bad.svg: images.toml says 10x5, the SVG is 10x6",
        "bad.svg: viewBox '0 0 10 5' does not match width and height",
        "bad.svg: embeds a bitmap or a data: URL",
        "bad.svg: font-family 'Lato, sans-serif': use a generic family (sans-serif)",
        "gone.svg: listed in images.toml but there is no such file",
    ]
