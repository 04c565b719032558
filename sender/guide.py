"""The pelvic floor guide: ``templates/guide/guide.html`` -> a standalone HTML page and a PDF.

The PDF is drawn by WeasyPrint from the same HTML and CSS (print media: the
stylesheet's ``@page`` rules give the page numbers, ``target-counter()`` the
table of contents). WeasyPrint needs Pango from the system; when it is missing
the error says what to install.

The guide shows the pictures of ``templates/images/`` with ``{{ image("name") }}``: an SVG
is put into the page itself (crisp at any size, and its labels in the guide's font), a
photo is embedded in the PDF and loads from the pictures' URL on the screen page. The PDF
sets its text in Lato, from the ``font-lato`` package (SIL Open Font License 1.1), which
WeasyPrint embeds, so it looks the same whichever machine builds it; the colours and a
heading font come from the coach's brand (DRIP_BRAND_*).

``guide_attachment`` is what the welcome email attaches when
``DRIP_GUIDE_ATTACH`` is on: the PDF is built once into ``DRIP_GUIDE_BUILD_DIR``
and reused until a guide template or a setting it shows changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import weakref
from dataclasses import asdict, dataclass
from datetime import date
from importlib import metadata, resources
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from . import images
from .errors import DripError
from .message import Attachment
from .render import render_template

log = logging.getLogger(__name__)

GUIDE_TEMPLATE = "guide/guide.html"
PDF_NAME = "guide.pdf"
HTML_NAME = "guide.html"
ATTACHMENT_NAME = "pelvic-floor-guide.pdf"
INSTALL_HINT = (
    "WeasyPrint needs the Pango text libraries. On Debian or Ubuntu: "
    "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 "
    "fonts-dejavu-core; on macOS: brew install pango. "
    "See https://doc.courtbouillon.org/weasyprint/stable/first_steps.html"
)
# Files outside templates/guide/ that the guide may include or import.
_SHARED_TEMPLATES = ("emails/_macros.html",)
FONT_PACKAGE = "font_lato"
FONT_FAMILY = "Lato"
# (file in the package, CSS weight, CSS style)
FONT_FILES = (("Lato-Regular.ttf", 400, "normal"), ("Lato-Italic.ttf", 400, "italic"),
              ("Lato-Bold.ttf", 700, "normal"), ("Lato-BoldItalic.ttf", 700, "italic"),
              ("Lato-Black.ttf", 900, "normal"))


class GuideError(DripError):
    """The guide could not be built (a missing system library, a template error)."""


@dataclass(frozen=True)
class GuideBuild:
    html: Path
    pdf: Path
    pages: int

    def to_dict(self):
        """What was written (absolute paths, sizes in bytes) and the PDF's page count."""
        return {"written": [{"path": str(path.resolve()), "bytes": path.stat().st_size}
                            for path in (self.html, self.pdf)], "pages": self.pages}


def guide_context(settings, *, for_print, today=None):
    fonts = guide_fonts() if for_print else []
    body_font = f'"{FONT_FAMILY}", ' if fonts else ""
    heading_font = f'"{settings.brand.font}", ' if settings.brand.font else ""
    return {
        "coach": asdict(settings.coach),
        "postal_address": settings.postal_address,
        "generated_on": (today or date.today()).strftime("%B %-d, %Y"),
        "for_print": for_print,
        "pdf_file": PDF_NAME,     # beside guide.html, in a build and on `drip serve`
        "brand": settings.brand,
        "fonts": fonts,           # @font-face sources for the PDF (file:// URLs)
        "body_font": f"{body_font}Helvetica, Arial, sans-serif",
        "heading_font": f"{heading_font}{body_font}Helvetica, Arial, sans-serif",
        "image": _guide_image(settings, for_print=for_print,
                              font_family=f"{body_font}Helvetica, Arial, sans-serif"),
    }


def guide_fonts():
    """The shipped font's files as [{family, weight, style, url}] (url: file://), or [] when
    the font package is missing (the PDF then uses the system's fonts, and a warning says so)."""
    try:
        folder = resources.files(FONT_PACKAGE) / "files"
    except ModuleNotFoundError:
        log.warning("the guide's font is missing: pip install font-lato (drip's dependencies "
                    "include it); the PDF uses the system's fonts meanwhile")
        return []
    return [{"family": FONT_FAMILY, "weight": weight, "style": style,
             "url": Path(str(folder / name)).resolve().as_uri()}
            for name, weight, style in FONT_FILES if (folder / name).is_file()]


def _guide_image(settings, *, for_print, font_family):
    """``image(name)`` for the guide: an SVG inline; a photo embedded in the PDF, or from
    the pictures' URL on the screen page. Each one gets the id ``picture-<name>-<n>``
    (the n-th time it is shown), which the PDF keeps as a named destination."""
    shown = {}

    def image(name):
        try:
            picture = images.load_catalog(settings.templates_dir).get(name)
            shown[picture.name] = shown.get(picture.name, 0) + 1
            element_id = f"picture-{picture.name}-{shown[picture.name]}"
            if picture.is_svg:
                return Markup(images.inline_svg(picture, font_family=font_family,
                                                element_id=element_id))
            data = images.render(picture, 2) if for_print else b""
        except images.ImageError as exc:
            raise jinja2.TemplateRuntimeError(str(exc)) from None
        src = (f"data:{images.CONTENT_TYPES[picture.ext]};base64,{base64.b64encode(data).decode()}"
               if for_print else images.url_for(settings, picture))
        return Markup(f'<img id="{escape(element_id)}" class="picture picture-{escape(picture.name)}" '
                      f'src="{escape(src)}" '
                      f'width="{picture.email_width}" height="{picture.email_height}" '
                      f'alt="{escape(picture.alt)}">')

    return image


def render_guide_html(drip, *, for_print, today=None):
    return render_template(drip.templates, GUIDE_TEMPLATE,
                           guide_context(drip.settings, for_print=for_print, today=today))


def _weasyprint():
    try:
        import weasyprint
    except OSError as exc:  # cannot load libpango / libgobject
        raise GuideError(f"cannot make the PDF: {exc}. {INSTALL_HINT}") from None
    except ImportError as exc:
        raise GuideError(f"cannot make the PDF: {exc}. Install drip with its dependencies "
                         "(pip install -e .), which include weasyprint.") from None
    return weasyprint


def html_to_pdf(html, *, base_url):
    """PDF bytes and the page count for an HTML document."""
    weasyprint = _weasyprint()
    # WeasyPrint logs every CSS property it does not know (the screen-only ones)
    # as a warning; they are expected here, so keep them at debug level.
    wp_log = logging.getLogger("weasyprint")
    level = wp_log.level
    wp_log.setLevel(logging.ERROR)
    try:
        document = weasyprint.HTML(string=html, base_url=str(base_url)).render()
        return document.write_pdf(), len(document.pages)
    finally:
        wp_log.setLevel(level)


def build_guide(drip, output=None, *, today=None):
    """Write guide.html (standalone, for the screen) and guide.pdf into ``output``."""
    output = Path(output) if output else drip.settings.guide_build_dir
    output.mkdir(parents=True, exist_ok=True)
    screen = render_guide_html(drip, for_print=False, today=today)
    printed = render_guide_html(drip, for_print=True, today=today)
    pdf, pages = html_to_pdf(printed, base_url=Path(drip.settings.templates_dir) / "guide")
    _write(output / HTML_NAME, screen.encode("utf-8"))
    _write(output / PDF_NAME, pdf)
    _write(output / "guide.key", guide_key(drip).encode("utf-8"))   # last: the files are whole
    return GuideBuild(html=output / HTML_NAME, pdf=output / PDF_NAME, pages=pages)


def _write(path, data):
    """Replace ``path`` whole, so a reader (`drip serve`, another process) never sees half."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def guide_key(drip):
    """A hash of everything the PDF shows: the guide templates, the pictures, the font, and
    the settings they use."""
    digest = hashlib.sha256()
    templates = Path(drip.settings.templates_dir)
    files = sorted((templates / "guide").rglob("*")) + sorted((templates / images.FOLDER).rglob("*")) \
        + [templates / n for n in _SHARED_TEMPLATES]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(templates)).encode() + b"\0" + path.read_bytes())
    settings = drip.settings
    digest.update(json.dumps({"coach": asdict(settings.coach), "postal_address": settings.postal_address,
                              "brand": asdict(settings.brand), "assets": images.asset_base(settings),
                              "font": _font_version()}, sort_keys=True).encode())
    return digest.hexdigest()


def _font_version():
    try:
        return metadata.version(FONT_PACKAGE.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


# The PDF's bytes per Settings object: a `drip send` run (or a web server process) hashes
# the guide templates once, not once for every welcome email it composes.
_memory = weakref.WeakKeyDictionary()


def guide_pdf(drip):
    """The guide PDF's bytes, built at most once per change of the guide (see module doc)."""
    if drip.settings in _memory:
        return _memory[drip.settings]
    key = guide_key(drip)
    output = drip.settings.guide_build_dir
    pdf, stamp = output / PDF_NAME, output / "guide.key"
    if not (pdf.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == key):
        log.info("building the guide PDF into %s", output)
        build_guide(drip, output)
    data = pdf.read_bytes()
    _memory[drip.settings] = data
    return data


def guide_attachment(drip):
    return Attachment(filename=ATTACHMENT_NAME, content_type="application/pdf", data=guide_pdf(drip))


def attaches_guide(campaign, step):
    """Whether this step carries the PDF when DRIP_GUIDE_ATTACH is on: ``attach_guide``
    in the step, or else the first ``welcome/`` email of a campaign entered on confirm."""
    explicit = getattr(step, "attach_guide", None)
    if explicit is not None:
        return explicit
    return campaign.entry_on == "confirm" and step.template.startswith("welcome/")
