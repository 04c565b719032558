"""What every email template may use besides its context: ``image()``, ``brand`` and
``guide_attached()``, given to the Jinja environment as globals (so the layout, the
bodies and the macros they import all see them).

* ``{{ image("glute-bridge") }}``: the picture's ``<img>`` for email: the 2x file at its
  versioned URL, shown at its email width, with its width, height and alt text from
  ``templates/images/images.toml``; ``image("logo", width=160)`` shows it narrower.
  ``has_image("logo")`` says whether there is such a picture (a slot the layout may fill).
* ``brand``: the coach's colours and font (``config.Brand``), checked when the settings load.
* ``guide_attached()``: whether this email carries the guide PDF (DRIP_GUIDE_ATTACH and the
  step's ``attach_guide``), so the welcome email can say "attached" only when it is.
"""

from __future__ import annotations

import jinja2
from markupsafe import Markup, escape

from . import images
from .guide import attaches_guide


def template_globals(settings, campaigns=lambda: None):
    """The globals for an environment rendering with ``settings``; ``campaigns()`` gives
    the loaded campaigns (for ``guide_attached``)."""

    def image(name, width=None):
        try:
            picture = images.load_catalog(settings.templates_dir).get(name)
        except images.ImageError as exc:
            raise jinja2.TemplateRuntimeError(str(exc)) from None
        return email_img(settings, picture, width)

    def has_image(name):
        return name in images.load_catalog(settings.templates_dir).pictures

    @jinja2.pass_context
    def guide_attached(context):
        if not settings.guide_attach:
            return False
        found = campaigns()
        campaign = found.get(context["campaign"]["id"]) if found is not None else None
        step = campaign.step(context["step"]["id"]) if campaign is not None else None
        return True if step is None else attaches_guide(campaign, step)

    return {"image": image, "has_image": has_image, "brand": settings.brand,
            "guide_attached": guide_attached}


def email_img(settings, picture, width=None):
    """The ``<img>`` tag of ``picture`` in an email, ``width`` px wide at most (its email
    width by default); it shrinks with a phone's screen."""
    shown = min(int(width or picture.email_width), picture.email_width)
    height = max(1, round(picture.height * shown / picture.width))
    return Markup(
        f'<img src="{escape(images.url_for(settings, picture))}" width="{shown}" '
        f'height="{height}" alt="{escape(picture.alt)}" '
        f'style="display:block;width:100%;max-width:{shown}px;height:auto;border:0;">')
