"""Composing one message: the template context, the rendered parts and our headers."""

from __future__ import annotations

import secrets
from dataclasses import asdict

from .guide import attaches_guide, guide_attachment
from .identity import feedback_id, list_id, stream_of
from .message import OutgoingMessage, address
from .render import render_email, render_string
from .tokens import CONFIRM, UNSUBSCRIBE

SAMPLE_UID = "preview"


def unsubscribe_url(drip, subscriber):
    return f"{drip.settings.base_url}/unsubscribe/{drip.signer.make(UNSUBSCRIBE, subscriber.uid)}"


def confirm_url(drip, subscriber, *, now=None):
    token = drip.signer.make(CONFIRM, subscriber.uid, now=now)
    return f"{drip.settings.base_url}/confirm/{token}"


def template_context(drip, subscriber, campaign, step, *, is_test=False, now=None):
    """Everything a template may use. The names are the contract with templates/."""
    settings = drip.settings
    context = {
        "subscriber": {
            "email": subscriber.email,
            "name": subscriber.name,
            "first_name": subscriber.first_name,
            "fields": dict(subscriber.fields),
            "tags": list(subscriber.tags),
        },
        "coach": asdict(settings.coach),
        "guide_url": settings.guide_url,
        "unsubscribe_url": unsubscribe_url(drip, subscriber),
        "postal_address": settings.postal_address,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "step": {"id": step.id, "number": step.number, "total": len(campaign.steps)},
        "is_test": is_test,
    }
    if campaign.entry_on == "signup":
        context["confirm_url"] = confirm_url(drip, subscriber, now=now)
    label = f"{campaign.path}: step {step.id!r}"
    context["subject"] = render_string(drip.templates, step.subject, context,
                                       label=f"{label} subject").strip()
    context["preheader"] = render_string(drip.templates, step.preheader, context,
                                         label=f"{label} preheader").strip()
    return context


def message_id(campaign, step, subscriber, sender):
    """Unique per delivery and the same on every retry of it."""
    return f"<{campaign.id}.{step.id}.{subscriber.uid}@{sender.domain}>"


def compose(drip, subscriber, campaign, step, *, now, delivery_id=None, is_test=False):
    """Render and assemble the message for one delivery (or a test send)."""
    settings = drip.settings
    context = template_context(drip, subscriber, campaign, step, is_test=is_test, now=now)
    rendered = render_email(drip.templates, step.template, context)
    subject = f"[TEST] {rendered.subject}" if is_test else rendered.subject
    mid = message_id(campaign, step, subscriber, settings.sender)
    if is_test:
        mid = f"<test.{secrets.token_hex(8)}.{mid[1:]}"
    stream = stream_of(campaign, step)
    return OutgoingMessage(
        delivery_id=delivery_id,
        message_id=mid,
        sender=settings.sender,
        reply_to=settings.reply_to,
        to=address(subscriber.email, subscriber.name),
        subject=subject,
        html=rendered.html,
        text=rendered.text,
        date=now,
        headers={
            "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": list_id(campaign, settings.sender),
            "Feedback-ID": feedback_id(campaign, step, stream, settings.sender),
        },
        stream=stream,
        tag=f"{campaign.id}/{step.id}",
        metadata={"delivery_id": str(delivery_id or ""), "campaign": campaign.id,
                  "step": step.id},
        attachments=[guide_attachment(drip)]
        if settings.guide_attach and attaches_guide(campaign, step) else [],
    )
