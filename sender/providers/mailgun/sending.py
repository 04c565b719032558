"""Mailgun: ``POST /v3/{domain}/messages``, a multipart form, Basic auth ``api:KEY``.

The region is the base URL (MAILGUN_API_URL: https://api.mailgun.net or
https://api.eu.mailgun.net). Batch sending (repeated ``to`` with
``recipient-variables``) needs one body for everyone; drip renders each email
for its reader, so each message is one request, with several in flight.

Native scheduling with ``o:deliverytime`` (RFC 2822). Mailgun can only cancel
all of a domain's queued mail, never one message, so ``cancel_scheduled``
returns False and the horizon is kept to one hour: an unsubscribe can then
trail at most one already-held email.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

from ..base import ACCEPTED, SCHEDULED, SendResult
from ..http import HttpProvider, failure, http_client

TAG_MAX = 128


class MailgunProvider(HttpProvider):
    name = "mailgun"
    batch_size = 50
    key_setting = "MAILGUN_API_KEY"
    default_concurrency = 4
    max_schedule_ahead = timedelta(hours=1)   # the API allows 3 days; nothing can be cancelled

    def __init__(self, http, *, domain):
        super().__init__(http)
        self.domain = domain

    def fields(self, message):
        fields = [("from", str(message.sender)), ("to", str(message.to)),
                  ("subject", message.subject), ("text", message.text), ("html", message.html),
                  ("h:Message-Id", message.message_id)]
        if message.reply_to and message.reply_to != message.sender:
            fields.append(("h:Reply-To", str(message.reply_to)))
        fields += [(f"h:{k}", v) for k, v in message.headers.items()]
        if message.tag:
            fields.append(("o:tag", "".join(c if c.isascii() and c.isprintable() else "_"
                                            for c in message.tag)[:TAG_MAX]))
        fields += [(f"v:{k}", str(v)) for k, v in message.metadata.items() if v not in (None, "")]
        if message.send_at:
            fields.append(("o:deliverytime", format_datetime(message.send_at, usegmt=True)))
        return fields

    def send_request(self, group):
        (message,) = group
        files = [(k, (None, v)) for k, v in self.fields(message)]
        files += [("attachment", (a.filename, a.data, a.content_type)) for a in message.attachments]
        answer = self.http.request("POST", f"/v3/{self.domain}/messages", files=files)
        if not answer.ok:
            return [failure(message, answer, self.http.error_message(answer))]
        mid = answer.body.get("id") if isinstance(answer.body, dict) else None
        outcome = SCHEDULED if message.send_at else ACCEPTED
        return [SendResult(message.delivery_id, outcome, provider_message_id=mid)]


def build(settings, *, extra_headers=None):
    """The provider as configured: Basic auth ``api:KEY``, the region in the API URL."""
    key = settings.require("MAILGUN_API_KEY")
    domain = settings.require("MAILGUN_DOMAIN")
    return MailgunProvider(http_client(settings, MailgunProvider, "MAILGUN_API_URL",
                                       auth=("api", key), extra_headers=extra_headers),
                           domain=domain)
