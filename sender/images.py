"""Pictures: ``templates/images/`` made ready for email, at URLs that carry their version.

``images.toml`` in that folder lists each picture (``file``, ``alt``, ``width``, ``height``;
optionally ``email_width``, the width it takes in an email, ``budget_kb`` and
``placeholder``). A picture is known by its file's stem: ``image("glute-bridge")`` in a
template is ``glute-bridge.svg`` (or ``.png``, ``.jpg``).

For email each picture is drawn at 1x and 2x its email width: an SVG through cairosvg
(which needs the Cairo library), a PNG or JPG resized with Pillow; PNGs are reduced to a
palette, JPGs saved at the best quality that fits the budget. An email shows the 2x file
at its 1x width, so it is sharp on every screen. File names carry a hash of the source
and of how it is converted (``glute-bridge.3f9c2a71d0@2x.png``), so a URL always means the
same picture and can be cached for good: ``drip serve`` answers ``/assets/<name>``
(``sender/web/assets.py``), or ``drip assets publish DIR`` writes them for another host
named by ``DRIP_ASSET_URL``.

This module lists the pictures, names their files and publishes them; drawing them (and
an SVG inlined into the guide) is ``image_render.py``'s.
"""

from __future__ import annotations

import hashlib
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImageError
from .image_render import INSTALL_HINT, draw, inline_svg  # noqa: F401 - images.inline_svg

CATALOG = "images.toml"
FOLDER = "images"
EMAIL_COLUMN = 536          # px: the email layout's column (600) less its side padding (2 x 32)
SCALES = (1, 2)
BUDGET_KB = 60              # the 2x file of a picture, unless its entry sets budget_kb
CONVERSION = "drip-images-1"   # change it when the conversion changes: every URL changes too
SUFFIXES = (".svg", ".png", ".jpg", ".jpeg")
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
_NAME = re.compile(r"^(?P<stem>[A-Za-z0-9_-]+)\.(?P<digest>[0-9a-f]{10})(?P<x2>@2x)?\.(?P<ext>png|jpg)$")


@dataclass(frozen=True)
class Picture:
    name: str                   # the file's stem
    path: Path
    alt: str
    width: int                  # the source's own size
    height: int
    email_width: int
    budget: int                 # bytes, for the 2x file
    placeholder: bool = False
    line: int = 0               # where its entry starts in images.toml
    emails: tuple = ()
    guide: tuple = ()

    @property
    def email_height(self):
        return max(1, round(self.height * self.email_width / self.width))

    @property
    def is_svg(self):
        return self.path.suffix.lower() == ".svg"

    @property
    def ext(self):
        return "jpg" if self.path.suffix.lower() in (".jpg", ".jpeg") else "png"

    def digest(self):
        """A hash of the source file and of how it is converted (memoised per file version)."""
        stat = self.path.stat()
        key = (str(self.path), stat.st_size, stat.st_mtime_ns, self.email_width)
        with _lock:
            found = _digests.get(key)
        if found is None:
            hashed = hashlib.sha256(f"{CONVERSION}\0{self.email_width}\0".encode())
            hashed.update(self.path.read_bytes())
            found = hashed.hexdigest()[:10]
            with _lock:
                _digests[key] = found
        return found

    def filename(self, scale=2):
        return f"{self.name}.{self.digest()}{'@2x' if scale == 2 else ''}.{self.ext}"


@dataclass
class Catalog:
    """The pictures of one templates folder, and what is wrong with its list."""

    folder: Path
    pictures: dict = field(default_factory=dict)     # name -> Picture
    problems: list = field(default_factory=list)     # (path, line, message)

    def get(self, name):
        picture = self.pictures.get(name)
        if picture is None:
            known = ", ".join(sorted(self.pictures)) or "none"
            raise ImageError(f"no picture {name!r} in {self.folder / CATALOG} (known: {known}); "
                             "add the file to the folder and an [[images]] entry for it")
        return picture

    def __iter__(self):
        return iter(self.pictures.values())


_lock = threading.Lock()
_digests = {}
_catalogs = {}
_renders = {}


def load_catalog(templates_dir):
    """The Catalog of ``templates_dir/images`` (read again only when a file there changed)."""
    folder = Path(templates_dir) / FOLDER
    stamp = _stamp(folder)
    with _lock:
        cached = _catalogs.get(str(folder))
    if cached and cached[0] == stamp:
        return cached[1]
    catalog = _read_catalog(folder)
    with _lock:
        _catalogs[str(folder)] = (stamp, catalog)
    return catalog


def _stamp(folder):
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                            for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


def _read_catalog(folder):
    catalog = Catalog(folder)
    listing = folder / CATALOG
    if not listing.is_file():
        for path in sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES):
            catalog.problems.append((path, 0, f"not listed in {CATALOG}: add an [[images]] entry "
                                              "with its alt text, width and height"))
        return catalog
    text = listing.read_text(encoding="utf-8")
    try:
        entries = tomllib.loads(text).get("images", [])
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        catalog.problems.append((listing, int(line[1]) if line else 0, f"not valid TOML: {exc}"))
        return catalog
    starts = [number for number, row in enumerate(text.splitlines(), 1) if row.strip() == "[[images]]"]
    listed = set()
    for index, entry in enumerate(entries):
        line = starts[index] if index < len(starts) else 0
        picture, problems = _picture(folder, entry, line)
        catalog.problems += [(listing, line, message) for message in problems]
        if picture is not None:
            listed.add(picture.path.name)
            if picture.name in catalog.pictures:
                catalog.problems.append((listing, line, f"{picture.name}: listed more than once"))
            catalog.pictures[picture.name] = picture
    for path in sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES):
        if path.name not in listed:
            catalog.problems.append((path, 0, f"not listed in {CATALOG}: add an [[images]] entry "
                                              "with its alt text, width and height"))
    return catalog


def _picture(folder, entry, line):
    """(Picture or None, [problems]) for one [[images]] entry."""
    name = entry.get("file")
    if not isinstance(name, str) or not name:
        return None, ["an [[images]] entry without file = \"...\""]
    path = folder / name
    if Path(name).name != name or path.suffix.lower() not in SUFFIXES:
        return None, [f"{name}: file must be an .svg, .png or .jpg in {folder}"]
    if not path.is_file():
        return None, [f"{name}: listed, but there is no such file in {folder}"]
    problems = []
    alt = entry.get("alt")
    if not isinstance(alt, str) or not alt.strip():
        problems.append(f"{name}: no alt text: add alt = \"...\" saying in words what the "
                        "picture shows (emails show it when images are off)")
        alt = ""
    numbers = {}
    for key in ("width", "height", "email_width", "budget_kb"):
        value = entry.get(key, {"budget_kb": BUDGET_KB}.get(key))
        if key == "email_width" and value is None:
            value = min(numbers.get("width") or EMAIL_COLUMN, EMAIL_COLUMN)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(f"{name}: {key} must be a whole number above 0"
                            + (" (pixels)" if key != "budget_kb" else " (KB)"))
            value = None
        numbers[key] = value
    if None in numbers.values():
        return None, problems
    picture = Picture(
        name=path.stem, path=path, alt=" ".join(alt.split()), width=numbers["width"],
        height=numbers["height"], email_width=numbers["email_width"],
        budget=numbers["budget_kb"] * 1024, placeholder=bool(entry.get("placeholder", False)),
        line=line, emails=tuple(entry.get("emails", ())), guide=tuple(entry.get("guide", ())))
    return picture, problems


# --- converting -------------------------------------------------------------------------
def render(picture, scale=2):
    """The bytes of ``picture`` drawn for email at ``scale`` x its email width (memoised)."""
    key = (str(picture.path), picture.digest(), scale)
    with _lock:
        found = _renders.get(key)
    if found is not None:
        return found
    data = draw(picture, picture.email_width * scale)
    with _lock:
        _renders[key] = data
    return data


# --- URLs and the files to publish ------------------------------------------------------
def asset_base(settings):
    """Where the pictures are fetched from: DRIP_ASSET_URL, else `drip serve`'s /assets."""
    return settings.asset_url or f"{settings.base_url.rstrip('/')}/assets"


def url_for(settings, picture, scale=2):
    return f"{asset_base(settings)}/{picture.filename(scale)}"


def find_file(catalog, filename):
    """(picture, scale, current) for a published file name: ``current`` is False when the
    name is an older version of a picture that still exists. None when nothing matches."""
    match = _NAME.match(filename)
    if not match or match["stem"] not in catalog.pictures:
        return None
    picture = catalog.pictures[match["stem"]]
    scale = 2 if match["x2"] else 1
    if match["ext"] != picture.ext:
        return picture, scale, False
    return picture, scale, match["digest"] == picture.digest()


@dataclass(frozen=True)
class Published:
    path: Path
    picture: Picture
    scale: int
    bytes: int

    def to_dict(self):
        return {"path": str(self.path), "picture": self.picture.name, "scale": self.scale,
                "bytes": self.bytes, "budget": self.picture.budget if self.scale == 2 else None}


def publish(settings, output):
    """Write every picture at 1x and 2x into ``output`` under its versioned name (files
    already there are left as they are: one name, one content). A list of Published."""
    catalog = load_catalog(settings.templates_dir)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for picture in catalog:
        for scale in SCALES:
            data = render(picture, scale)
            target = output / picture.filename(scale)
            if not (target.is_file() and target.read_bytes() == data):
                partial = target.with_name(f".{target.name}.partial")
                partial.write_bytes(data)
                partial.replace(target)
            written.append(Published(target, picture, scale, len(data)))
    return written


def problems(settings, *, used=()):
    """What `drip check` reports about the pictures, as (path, line, message, rule): the
    list itself, a picture without alt text, a file missing or that cannot be converted, a
    2x file over its budget, pictures that do not load over HTTPS, and, unless
    DRIP_ALLOW_EXAMPLE_VALUES, a placeholder among the ``used`` names."""
    catalog = load_catalog(settings.templates_dir)
    found = [(path, line, message, "image") for path, line, message in catalog.problems]
    listing = catalog.folder / CATALOG
    base = asset_base(settings)
    if catalog.pictures and not base.startswith("https://"):
        setting = "DRIP_ASSET_URL" if settings.asset_url else "DRIP_BASE_URL"
        found.append((listing, 0, f"pictures would load from {base}, not over HTTPS: email "
                                  f"clients block or flag them; set {setting} to an https:// "
                                  "address", "image-url"))
    missing_library = False
    for picture in catalog:
        if missing_library and picture.is_svg:
            continue
        try:
            size = len(render(picture, 2))
        except ImageError as exc:
            missing_library = INSTALL_HINT in str(exc)      # said once, not for every SVG
            where = catalog.folder if missing_library else picture.path
            found.append((where, 0, str(exc).removeprefix(f"{picture.path}: "), "image"))
            continue
        if size > picture.budget:
            found.append((listing, picture.line,
                          f"{picture.path.name}: its email file ({picture.email_width * 2} px "
                          f"wide) is {size / 1024:.0f} KB, over its {picture.budget // 1024} KB "
                          "budget: use a smaller or simpler picture (or raise budget_kb)",
                          "image-budget"))
        if picture.placeholder and picture.name in used and not settings.allow_example_values:
            found.append((picture.path, 0, "still the placeholder, and emails show it: replace "
                                           f"it with your own (see {catalog.folder / 'README.md'})",
                          "image-placeholder"))
    return found
