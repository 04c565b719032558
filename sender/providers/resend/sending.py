"""Resend: ``POST /emails/batch`` (100 per request) with an ``Idempotency-Key``.

Resend allows 5 requests a second per team (DRIP_RATE_LIMIT defaults to 5) and
answers 429 ``rate_limit_exceeded`` with ``retry-after``. The batch endpoint
takes neither attachments nor ``scheduled_at``, so such messages go one by one
to ``POST /emails``. Tags allow only ASCII letters, digits, ``_`` and ``-``, so
the campaign, the step and the delivery id are three tags.

Idempotency keys: a single message gets ``drip-{delivery_id}-{message_id}``; a
batch gets one derived from every (delivery id, message id) in it. Within 24 h
Resend answers a repeated key with the first answer instead of sending again,
so the in-process retries of 429, 5xx and timeouts can never double-send.

After a crash: each delivery stores the key of the request it went in when the
hand-off begins (``handoff_keys``), so a recovery rebuilds the identical request
(same members, same bodies: the rendering is deterministic) and sends it again
with the same key within ``replay_window``; Resend answers with the first result
if it had it, and sends it now if it never did. A request that can no longer be
rebuilt identically (older than a day, a subscriber who left, an edited
template) is reported for a decision (``drip resolve``): Resend's emails list
has no tag or metadata filter to ask. A 409 (the key's first request still in
progress, or a different body under the same key) is an unknown outcome,
settled the same way.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, timedelta

from ..base import ACCEPTED, SCHEDULED, UNKNOWN, SendResult
from ..http import HttpProvider, failure, http_client

BATCH_MAX = 100


def idempotency_key(messages):
    """One key per request, from its members and each one's hand-off count: a replay of the
    same request gets the same key; a new hand-off (after a retry, or after mail held for
    later was cancelled by a pause) gets a new one, so Resend never answers it from memory."""
    if len(messages) == 1:
        m = messages[0]
        return f"drip-{m.delivery_id}-{m.attempt}-{m.message_id.strip('<>')}"[:256]
    joined = ",".join(f"{m.delivery_id}-{m.attempt}-{m.message_id}" for m in messages)
    return "drip-batch-" + hashlib.sha256(joined.encode()).hexdigest()


def _tag_value(value):
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(value))[:256]


class ResendProvider(HttpProvider):
    name = "resend"
    batch_size = BATCH_MAX
    key_setting = "RESEND_API_KEY"
    default_rate = 5.0           # Resend allows 5 requests a second per team
    default_concurrency = 1
    max_schedule_ahead = timedelta(days=30)
    can_cancel = True
    # Resend remembers a key for 24 h; an hour of margin for clocks and slow runs.
    replay_window = timedelta(hours=23)

    def handoff_keys(self, messages):
        keys = {}
        for group in self.requests_for(messages):
            key = idempotency_key(group)
            keys.update((id(m), key) for m in group)
        return [keys[id(m)] for m in messages]

    def requests_for(self, messages):
        single = [[m] for m in messages if m.attachments or m.send_at]
        plain = [m for m in messages if not (m.attachments or m.send_at)]
        batches = [plain[i:i + BATCH_MAX] for i in range(0, len(plain), BATCH_MAX)]
        return batches + single

    def payload(self, message):
        body = {
            "from": str(message.sender),
            "to": [str(message.to)],
            "subject": message.subject,
            "html": message.html,
            "text": message.text,
            "headers": dict(message.headers),
        }
        if message.reply_to and message.reply_to != message.sender:
            body["reply_to"] = str(message.reply_to)
        campaign, _, step = message.tag.partition("/")
        tags = {"campaign": campaign, "step": step, **{k: v for k, v in message.metadata.items()
                                                       if k not in ("campaign", "step")}}
        body["tags"] = [{"name": _tag_value(k), "value": _tag_value(v)}
                        for k, v in tags.items() if v not in (None, "")]
        if message.attachments:
            body["attachments"] = [{"filename": a.filename, "content_type": a.content_type,
                                    "content": base64.b64encode(a.data).decode("ascii")}
                                   for a in message.attachments]
        if message.send_at:
            body["scheduled_at"] = message.send_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return body

    def send_request(self, group):
        headers = {"Idempotency-Key": idempotency_key(group)}
        if len(group) == 1 and (group[0].attachments or group[0].send_at):
            answer = self.http.request("POST", "/emails", json=self.payload(group[0]),
                                       headers=headers, idempotent=True)
            ids = [answer.body.get("id")] if answer.ok and isinstance(answer.body, dict) else None
        else:
            answer = self.http.request("POST", "/emails/batch", json=[self.payload(m) for m in group],
                                       headers=headers, idempotent=True)
            data = answer.body.get("data") if isinstance(answer.body, dict) else None
            ids = [d.get("id") if isinstance(d, dict) else None for d in data] \
                if isinstance(data, list) and len(data) == len(group) else None
        if answer.status == 409:
            # The key is known to Resend: the first request with it is still in progress
            # (concurrent_idempotent_requests) or was made with another body
            # (invalid_idempotent_request). Either way the first one may have sent: settle it
            # later with the same key, never mark it failed.
            error = answer.describe(self.http.error_message(answer))
            return [SendResult(m.delivery_id, UNKNOWN, error=error) for m in group]
        if not answer.ok:
            return [failure(m, answer, self.http.error_message(answer)) for m in group]
        if ids is None:
            # A 200 means Resend took the request; sending again could duplicate.
            return [SendResult(m.delivery_id, ACCEPTED, error="resend answered 200 with an "
                               "unreadable body") for m in group]
        return [SendResult(m.delivery_id, SCHEDULED if m.send_at else ACCEPTED,
                           provider_message_id=mid) for m, mid in zip(group, ids, strict=True)]

    def cancel_scheduled(self, delivery):
        if not delivery.provider_message_id:
            return False
        answer = self.http.request("POST", f"/emails/{delivery.provider_message_id}/cancel")
        return answer.ok


def build(settings, *, extra_headers=None):
    """The provider as configured: the API key as a bearer token."""
    key = settings.require("RESEND_API_KEY")
    return ResendProvider(http_client(settings, ResendProvider, "RESEND_API_URL",
                                      headers={"Authorization": f"Bearer {key}"},
                                      extra_headers=extra_headers))
