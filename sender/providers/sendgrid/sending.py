"""SendGrid v3: ``POST /v3/mail/send``, one message per request, several in flight.

``personalizations`` batch up to 1000 recipients only when they share one
subject and body; every drip email is rendered for its reader (name, the
unsubscribe link and its List-Unsubscribe header), so each message is its own
request with one personalization, and throughput comes from requests in
flight (DRIP_CONCURRENCY). A 202 carries the message id in ``X-Message-Id``.

Native scheduling: ``send_at`` (unix seconds, at most 72 h ahead) with a fresh
``batch_id`` per message (``POST /v3/mail/batch``), so one message can be
cancelled (``POST /v3/user/scheduled_sends {batch_id, status: cancel}``, no
later than 10 minutes before its time). The ledger keeps ``batch_id:message_id``.
SendGrid accepts a suppressed address and drops it later: that comes back as an
event, not in the send answer.
"""

from __future__ import annotations

import base64
from datetime import timedelta

from ..base import ACCEPTED, SCHEDULED, SendResult
from ..http import HttpProvider, failure, http_client

CATEGORY_MAX = 255


class SendGridProvider(HttpProvider):
    name = "sendgrid"
    batch_size = 50
    key_setting = "SENDGRID_API_KEY"
    default_concurrency = 4
    max_schedule_ahead = timedelta(hours=72)
    can_cancel = True

    def payload(self, message, batch_id=None):
        personalization = {
            "to": [_mail_to(message.to)],
            "custom_args": {k: str(v) for k, v in message.metadata.items() if v not in (None, "")},
        }
        body = {
            "personalizations": [personalization],
            "from": _mail_to(message.sender),
            "subject": message.subject,
            "content": [{"type": "text/plain", "value": message.text},
                        {"type": "text/html", "value": message.html}],
            "headers": dict(message.headers),
            "tracking_settings": {"subscription_tracking": {"enable": False}},
        }
        if message.reply_to and message.reply_to != message.sender:
            body["reply_to"] = _mail_to(message.reply_to)
        if message.tag:
            body["categories"] = [message.tag[:CATEGORY_MAX]]
        if message.attachments:
            body["attachments"] = [{"content": base64.b64encode(a.data).decode("ascii"),
                                    "type": a.content_type, "filename": a.filename,
                                    "disposition": "attachment"} for a in message.attachments]
        if message.send_at:
            body["send_at"] = int(message.send_at.timestamp())
            body["batch_id"] = batch_id
        return body

    def send_request(self, group):
        (message,) = group
        batch_id = None
        if message.send_at:
            made = self.http.request("POST", "/v3/mail/batch")
            batch_id = made.body.get("batch_id") if isinstance(made.body, dict) else None
            if not made.ok or not batch_id:
                return [failure(message, made, self.http.error_message(made)
                                or "no batch_id to make the scheduled send cancellable")]
        answer = self.http.request("POST", "/v3/mail/send", json=self.payload(message, batch_id))
        if not answer.ok:
            return [failure(message, answer, self.http.error_message(answer))]
        mid = answer.headers.get("X-Message-Id") or answer.headers.get("x-message-id")
        if batch_id:
            return [SendResult(message.delivery_id, SCHEDULED,
                               provider_message_id=f"{batch_id}:{mid or ''}")]
        return [SendResult(message.delivery_id, ACCEPTED, provider_message_id=mid)]

    def cancel_scheduled(self, delivery):
        batch_id = (delivery.provider_message_id or "").partition(":")[0]
        if not batch_id:
            return False
        answer = self.http.request("POST", "/v3/user/scheduled_sends",
                                   json={"batch_id": batch_id, "status": "cancel"})
        return answer.ok


def _mail_to(addr):
    entry = {"email": addr.addr_spec}
    if addr.display_name:
        entry["name"] = addr.display_name
    return entry


def build(settings, *, extra_headers=None):
    """The provider as configured: the API key as a bearer token."""
    key = settings.require("SENDGRID_API_KEY")
    return SendGridProvider(http_client(settings, SendGridProvider, "SENDGRID_API_URL",
                                        headers={"Authorization": f"Bearer {key}"},
                                        extra_headers=extra_headers))
