"""Drawing a picture: for email, an SVG through cairosvg (which needs the Cairo library) or
a PNG or JPG resized with Pillow, then compressed to fit its budget (PNGs reduced to a
palette, JPGs saved at the best quality that fits); for the guide, an SVG made fit to
sit inside an HTML page (``inline_svg``). Which pictures there are, and their file names,
is ``images.py``'s.
"""

from __future__ import annotations

import io
import re

from .errors import ImageError

SVG_COLOURS = 64            # line drawings: a small palette, no dithering
PNG_COLOURS = 256
JPEG_QUALITIES = (85, 78, 70, 62, 55)
INSTALL_HINT = ("cairosvg needs the Cairo library to draw SVG pictures. On Debian or Ubuntu: "
                "apt-get install libcairo2; on macOS: brew install cairo")


def draw(picture, width):
    """The bytes of ``picture`` drawn ``width`` pixels wide, within its budget."""
    image = _draw_svg(picture, width) if picture.is_svg else _open_raster(picture, width)
    return _encode(picture, image)


def _cairosvg():
    try:
        import cairosvg
    except OSError as exc:       # cairocffi cannot load libcairo
        raise ImageError(f"cannot draw SVG pictures: {exc}. {INSTALL_HINT}") from None
    except ImportError as exc:
        raise ImageError(f"cannot draw SVG pictures: {exc}. Install drip with its dependencies "
                         "(pip install -e .), which include cairosvg.") from None
    return cairosvg


def _draw_svg(picture, width):
    from PIL import Image

    try:
        png = _cairosvg().svg2png(bytestring=picture.path.read_bytes(), output_width=width)
    except ImageError:
        raise
    except Exception as exc:    # noqa: BLE001 - a broken SVG fails in many ways inside cairosvg
        raise ImageError(f"{picture.path}: cannot draw this SVG ({exc})") from None
    return Image.open(io.BytesIO(png))


def _open_raster(picture, width):
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(picture.path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{picture.path}: not a picture Pillow can read ({exc})") from None
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def _encode(picture, image):
    from PIL import Image

    out = io.BytesIO()
    if picture.ext == "jpg":
        image = image.convert("RGB")
        for quality in JPEG_QUALITIES:
            out = io.BytesIO()
            image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
            if out.tell() <= picture.budget:
                break
        return out.getvalue()
    image = image.convert("RGBA")
    if picture.is_svg:
        palette = image.quantize(SVG_COLOURS, method=Image.Quantize.FASTOCTREE,
                                 dither=Image.Dither.NONE)
    else:
        palette = image.quantize(PNG_COLOURS, method=Image.Quantize.FASTOCTREE)
    palette.save(out, "PNG", optimize=True)
    return out.getvalue()


def inline_svg(picture, *, font_family="sans-serif", element_id=None):
    """The SVG itself, to put inside an HTML page (the guide): its ids and styles made its
    own (so two pictures never clash, and its CSS touches nothing else on the page), its
    generic font replaced by ``font_family``, its alt text as its label, and ``element_id``
    as the id of the picture (the PDF keeps it as a named destination)."""
    text = picture.path.read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>|<!--.*?-->", "", text, flags=re.S).strip()
    scope = f"picture-{picture.name}"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{scope}-{m[1]}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{scope}-{m[1]})", text)
    text = re.sub(r"<style>(.*?)</style>", lambda m: f"<style>{_scoped(m[1], scope)}</style>",
                  text, flags=re.S)
    text = re.sub(r"font-family\s*:\s*sans-serif", f"font-family:{font_family}", text)
    root = re.search(r"<svg\b[^>]*>", text)
    if root is None:
        raise ImageError(f"{picture.path}: no <svg> element")
    label = str(picture.alt).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    tag = re.sub(r'\s(?:id|role|aria-labelledby|aria-label|class)="[^"]*"', "", root[0])
    named = f' id="{element_id}"' if element_id else ""
    tag = tag.replace("<svg", f'<svg{named} class="picture {scope}" role="img" aria-label="{label}"', 1)
    return text[:root.start()] + tag + text[root.end():]


def _scoped(css, scope):
    """Every rule of ``css`` limited to the elements inside ``.scope``."""
    def rule(match):
        selectors = ",".join(f".{scope} {s.strip()}" for s in match[1].split(",") if s.strip())
        return f"{selectors}{{{match[2]}}}"
    return re.sub(r"([^{}]+)\{([^{}]*)\}", rule, css)
