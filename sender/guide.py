"""The pelvic floor guide: ``templates/guide/guide.html`` -> a standalone HTML page and a PDF.

The PDF is drawn by WeasyPrint from the same HTML and CSS (print media: the
stylesheet's ``@page`` rules give the page numbers, ``target-counter()`` the
table of contents). WeasyPrint needs Pango from the system; when it is missing
the error says what to install.

``guide_attachment`` is what the welcome email attaches when
``DRIP_GUIDE_ATTACH`` is on: the PDF is built once into ``DRIP_GUIDE_BUILD_DIR``
and reused until a guide template or a setting it shows changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

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


class GuideError(DripError):
    """The guide could not be built (a missing system library, a template error)."""


@dataclass(frozen=True)
class GuideBuild:
    html: Path
    pdf: Path
    pages: int


def guide_context(settings, *, for_print, today=None):
    return {
        "coach": asdict(settings.coach),
        "postal_address": settings.postal_address,
        "generated_on": (today or date.today()).strftime("%B %-d, %Y"),
        "for_print": for_print,
    }


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
    output = Path(output or drip.settings.get("DRIP_GUIDE_BUILD_DIR"))
    output.mkdir(parents=True, exist_ok=True)
    screen = render_guide_html(drip, for_print=False, today=today)
    printed = render_guide_html(drip, for_print=True, today=today)
    pdf, pages = html_to_pdf(printed, base_url=Path(drip.settings.templates_dir) / "guide")
    (output / HTML_NAME).write_text(screen, encoding="utf-8")
    (output / PDF_NAME).write_bytes(pdf)
    (output / "guide.key").write_text(guide_key(drip), encoding="utf-8")
    return GuideBuild(html=output / HTML_NAME, pdf=output / PDF_NAME, pages=pages)


def guide_key(drip):
    """A hash of everything the PDF shows: the guide templates and the settings they use."""
    digest = hashlib.sha256()
    templates = Path(drip.settings.templates_dir)
    files = sorted((templates / "guide").rglob("*")) + [templates / n for n in _SHARED_TEMPLATES]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(templates)).encode() + b"\0" + path.read_bytes())
    context = guide_context(drip.settings, for_print=True, today=date(2000, 1, 1))
    digest.update(json.dumps({k: context[k] for k in ("coach", "postal_address")},
                             sort_keys=True).encode())
    return digest.hexdigest()


# The PDF's bytes per Settings object: a `drip send` run (or a web server process) hashes
# the guide templates once, not once for every welcome email it composes.
_memory = weakref.WeakKeyDictionary()


def guide_pdf(drip):
    """The guide PDF's bytes, built at most once per change of the guide (see module doc)."""
    if drip.settings in _memory:
        return _memory[drip.settings]
    key = guide_key(drip)
    output = Path(drip.settings.get("DRIP_GUIDE_BUILD_DIR"))
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
