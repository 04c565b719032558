"""Composing one message: the template context, the rendered parts and our headers."""

from __future__ import annotations

import secrets
import weakref
from dataclasses import asdict

from . import step_render, step_rules, sunset_email
from .errors import InvalidInput
from .guide import attaches_guide, guide_attachment
from .identity import feedback_id, list_id, stream_of
from .message import OutgoingMessage, address
from .render import render_email, render_string
from .tokens import CONFIRM, UNSUBSCRIBE

SAMPLE_UID = "preview"
# What every email rendered with a Settings object shares, made once per Settings.
_SHARED = weakref.WeakKeyDictionary()
_STEP_HEADERS = {}          # static key -> (stream, List-Id, Feedback-ID); bounded
_STEP_HEADERS_KEPT = 1024


def unsubscribe_url(drip, subscriber):
    return f"{drip.settings.base_url}/unsubscribe/{drip.signer.make(UNSUBSCRIBE, subscriber.uid)}"


def confirm_url(drip, subscriber, *, now=None):
    token = drip.signer.make(CONFIRM, subscriber.uid, now=now)
    return f"{drip.settings.base_url}/confirm/{token}"


def template_context(drip, subscriber, campaign, step, *, is_test=False, now=None):
    """Everything a template may use. The names are the contract with templates/. The
    subject is hers: of an A/B step, the variant she is given (``step_rules``)."""
    settings = drip.settings
    step = step_rules.chosen_step(campaign, step, subscriber)
    context = {
        **personal_context(drip, subscriber, campaign, now=now),
        "coach": asdict(settings.coach),
        "guide_url": settings.guide_url,
        "postal_address": settings.postal_address,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "step": {"id": step.id, "number": step.number, "total": len(campaign.steps)},
        "is_test": is_test,
    }
    label = f"{campaign.path}: step {step.id!r}"
    context["subject"] = render_string(drip.templates, step.subject, context,
                                       label=f"{label} subject").strip()
    context["preheader"] = render_string(drip.templates, step.preheader, context,
                                         label=f"{label} preheader").strip()
    return context


def _shared(settings):
    """(the context every email with ``settings`` shares, a hashable fingerprint of it)."""
    found = _SHARED.get(settings)
    if found is None:
        coach = asdict(settings.coach)
        found = _SHARED[settings] = (
            {"coach": coach, "guide_url": settings.guide_url,
             "postal_address": settings.postal_address},
            (tuple(coach.items()), settings.guide_url, settings.postal_address,
             settings.guide_attach, str(settings.sender)))
    return found


def static_context(drip, campaign, step, *, is_test=False):
    """The part of ``template_context`` every email of a step shares (no subject or
    preheader: they are rendered from it), and a key that identifies it."""
    shared, fingerprint = _shared(drip.settings)
    context = {
        **shared,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "step": {"id": step.id, "number": step.number, "total": len(campaign.steps)},
        "is_test": is_test,
    }
    key = (campaign.id, campaign.name, campaign.entry_on, len(campaign.steps), step.id,
           step.number, step.template, step.subject, step.preheader,
           getattr(step, "attach_guide", None), is_test, fingerprint)
    return context, key


def personal_context(drip, subscriber, campaign, *, now):
    """The part of ``template_context`` that is this subscriber's."""
    context = {
        "subscriber": {
            "email": subscriber.email,
            "name": subscriber.name,
            "first_name": subscriber.first_name,
            "fields": dict(subscriber.fields),
            "tags": list(subscriber.tags),
        },
        "unsubscribe_url": unsubscribe_url(drip, subscriber),
    }
    if campaign.entry_on == "signup":
        context["confirm_url"] = confirm_url(drip, subscriber, now=now)
    elif sunset_email.is_question(campaign):
        context["keep_url"] = sunset_email.keep_url(drip, subscriber, now=now)
    return context


def _step_headers(key, campaign, step, sender):
    found = _STEP_HEADERS.get(key)
    if found is None:
        stream = stream_of(campaign, step)
        found = (stream, list_id(campaign, sender), feedback_id(campaign, step, stream, sender))
        if len(_STEP_HEADERS) >= _STEP_HEADERS_KEPT:
            _STEP_HEADERS.clear()
        _STEP_HEADERS[key] = found
    return found


def message_id(campaign, step, subscriber, sender):
    """Unique per delivery and the same on every retry of it."""
    return f"<{campaign.id}.{step.id}.{subscriber.uid}@{sender.domain}>"


def compose(drip, subscriber, campaign, step, *, now, delivery_id=None, is_test=False):
    """Render and assemble the message for one delivery (or a test send).

    The step is rendered once and filled in for this subscriber (``step_render``); when it
    cannot be, this email is rendered from its full context (``template_context``,
    ``render_email``), which gives the same bytes, only slower."""
    if subscriber.problem:
        raise InvalidInput(f"{subscriber.problem}; fix the subscriber's row")
    settings = drip.settings
    # Her subject of an A/B step: the step's key names it, so each variant renders once.
    step = step_rules.chosen_step(campaign, step, subscriber)
    static, key = static_context(drip, campaign, step, is_test=is_test)
    personal = personal_context(drip, subscriber, campaign, now=now)
    rendered = step_render.render(drip.templates, static, personal, template=step.template,
                                  subject=step.subject, preheader=step.preheader,
                                  label=f"{campaign.path}: step {step.id!r}", key=key)
    if rendered is None:
        context = template_context(drip, subscriber, campaign, step, is_test=is_test, now=now)
        rendered = render_email(drip.templates, step.template, context)
    subject = f"[TEST] {rendered.subject}" if is_test else rendered.subject
    mid = message_id(campaign, step, subscriber, settings.sender)
    if is_test:
        mid = f"<test.{secrets.token_hex(8)}.{mid[1:]}"
    stream, list_header, feedback = _step_headers(key, campaign, step, settings.sender)
    return OutgoingMessage(
        delivery_id=delivery_id,
        message_id=mid,
        sender=settings.sender,
        reply_to=settings.reply_to,
        to=address(subscriber.email, subscriber.name),
        subject=subject,
        html=rendered.html,
        text=rendered.text,
        encoded_bodies=rendered.encoded_bodies,
        date=now,
        headers={
            "List-Unsubscribe": f"<{personal['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": list_header,
            "Feedback-ID": feedback,
        },
        stream=stream,
        tag=f"{campaign.id}/{step.id}",
        metadata={"delivery_id": str(delivery_id or ""), "campaign": campaign.id,
                  "step": step.id},
        attachments=[guide_attachment(drip)]
        if settings.guide_attach and attaches_guide(campaign, step) else [],
    )
