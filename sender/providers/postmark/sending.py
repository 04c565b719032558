"""Postmark: ``POST /email/batch`` (500 messages), on two message streams.

Campaign (marketing) mail goes on the Broadcasts stream (POSTMARK_MESSAGE_STREAM), the
confirmation and welcome emails on a Transactional one (POSTMARK_TRANSACTIONAL_STREAM,
Postmark's default ``outbound``), each message naming its own stream.

A batch answers 200 even when items fail, so each item's own ``ErrorCode`` is
read: 300 (invalid address) and 406 (inactive recipient: bounced, complained
or unsubscribed at Postmark) reject the message and suppress the address; 10
(bad token) and account-level codes stop the run. Postmark cannot hold
messages for later. A delivery a crash left unconfirmed is looked up by its
metadata (``GET /messages/outbound?metadata_delivery_id=...``), in each of the two streams
(a search names one stream, and Postmark reads no stream as ``outbound``).
"""

from __future__ import annotations

import base64
import json
from json.encoder import encode_basestring_ascii as _quote

from ...errors import ProviderError
from ...identity import TRANSACTIONAL
from ..base import (
    ACCEPTED,
    RECONCILED_NOT_SENT,
    RECONCILED_SENT,
    RECONCILED_UNKNOWN,
    REJECTED,
    RETRY,
    SendResult,
)
from ..http import HttpProvider, failure, http_client
from . import AUTH_HEADER

SUPPRESS_CODES = {300: "invalid email address", 406: "inactive recipient"}
# Codes that make every further send fail: stop the run instead of failing 10,000 times.
STOP_CODES = {10: "bad or missing server token", 400: "sender signature not found",
              401: "sender signature not confirmed", 405: "not allowed to send",
              412: "account pending approval"}
TAG_MAX = 1000
METADATA_MAX_FIELDS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 10, 20, 80


class PostmarkProvider(HttpProvider):
    name = "postmark"
    batch_size = 500
    key_setting = "POSTMARK_SERVER_TOKEN"
    default_concurrency = 1

    def __init__(self, http, *, message_stream="broadcast", transactional_stream="outbound"):
        super().__init__(http)
        self.message_stream = message_stream
        self.transactional_stream = transactional_stream or "outbound"

    def stream_for(self, message):
        return self.transactional_stream if message.stream == TRANSACTIONAL else self.message_stream

    def requests_for(self, messages):
        return [messages[i:i + self.batch_size] for i in range(0, len(messages), self.batch_size)]

    def payload(self, message):
        """The message as Postmark's JSON object (``item_json``, read back)."""
        return json.loads(self.item_json(message))

    def item_json(self, message):
        """The message as one item of a batch, written as JSON text directly: each value
        quoted and escaped by the ``json`` module's own C function, the keys and structure
        fixed. A batch of 500 is then one join, instead of 500 nests of dicts and lists that
        the encoder walks value by value (a tenth of a worker's CPU went on that)."""
        headers = ",".join(f'{{"Name":{_quote(name)},"Value":{_quote(value)}}}' for name, value
                           in (("Message-ID", message.message_id), *message.headers.items()))
        parts = [f'{{"From":{_quote(str(message.sender))},"To":{_quote(str(message.to))},'
                 f'"Subject":{_quote(message.subject)},"HtmlBody":{_quote(message.html)},'
                 f'"TextBody":{_quote(message.text)},"Headers":[{headers}],'
                 f'"MessageStream":{_quote(self.stream_for(message))},"TrackOpens":false']
        if message.reply_to and message.reply_to != message.sender:
            parts.append(f',"ReplyTo":{_quote(str(message.reply_to))}')
        if message.tag:
            parts.append(f',"Tag":{_quote(message.tag[:TAG_MAX])}')
        metadata = {k[:METADATA_KEY_MAX]: str(v)[:METADATA_VALUE_MAX]
                    for k, v in message.metadata.items() if v not in (None, "")}
        if metadata:
            parts.append(',"Metadata":{' + ",".join(
                f"{_quote(k)}:{_quote(v)}" for k, v in list(metadata.items())[:METADATA_MAX_FIELDS])
                + "}")
        if message.attachments:
            parts.append(',"Attachments":[' + ",".join(
                f'{{"Name":{_quote(a.filename)},"ContentType":{_quote(a.content_type)},'
                f'"Content":"{base64.b64encode(a.data).decode("ascii")}"}}'
                for a in message.attachments) + "]")
        parts.append("}")
        return "".join(parts)

    def send_request(self, group):
        body = "[" + ",".join(self.item_json(m) for m in group) + "]"
        answer = self.http.request("POST", "/email/batch", data=body.encode("ascii"),
                                   headers={"Content-Type": "application/json"})
        body = answer.body
        if answer.status == 422 and isinstance(body, dict):
            self._check_stop(body, answer.status, answer.text)
            return [failure(m, answer, self.http.error_message(answer)) for m in group]
        if not answer.ok:
            return [failure(m, answer, self.http.error_message(answer)) for m in group]
        if not isinstance(body, list) or len(body) != len(group):
            # A 200 means Postmark took the batch; without readable items we cannot say
            # which went out, and sending again could duplicate: record them as accepted.
            note = "postmark answered 200 with an unreadable body"
            return [SendResult(m.delivery_id, ACCEPTED, error=note) for m in group]
        results, stop = [], None
        for message, item in zip(group, body, strict=True):
            try:
                results.append(self._item(message, item, answer))
            except ProviderError as exc:
                stop = exc
                results.append(SendResult(message.delivery_id, RETRY, error=str(exc)))
        if stop is not None:
            if not any(r.outcome == ACCEPTED for r in results):
                raise stop
            # Others in this batch went out: record them, and stop at the next call.
            self._stopped = stop
        return results

    def _item(self, message, item, answer):
        code = item.get("ErrorCode", 0) if isinstance(item, dict) else 0
        if code == 0:
            return SendResult(message.delivery_id, ACCEPTED,
                              provider_message_id=item.get("MessageID"))
        text = self.http.mask(str(item.get("Message", ""))) if isinstance(item, dict) else ""
        self._check_stop(item, answer.status, answer.text)
        return SendResult(message.delivery_id, REJECTED,
                          error=f"postmark ErrorCode {code}: {text}",
                          suppress=code in SUPPRESS_CODES)

    def _check_stop(self, body, status, text):
        code = body.get("ErrorCode")
        if code in STOP_CODES:
            check = "POSTMARK_SERVER_TOKEN" if code == 10 else "the sender signature and account"
            raise ProviderError(f"postmark: {STOP_CODES[code]} (ErrorCode {code}: "
                                f"{self.http.mask(body.get('Message', ''))}); check {check}",
                                status=status, body=text)

    def reconcile(self, delivery, message_id):
        # Sent only if found in one of the streams; not sent only if both answer "none".
        verdicts = []
        for stream in dict.fromkeys((self.message_stream, self.transactional_stream)):
            answer = self.http.request("GET", "/messages/outbound", retries=1, params={
                "count": 1, "offset": 0, "metadata_delivery_id": str(delivery.id),
                "messagestream": stream})
            if not answer.ok or not isinstance(answer.body, dict):
                verdicts.append(RECONCILED_UNKNOWN)
                continue
            found = answer.body.get("Messages") or []
            if found and isinstance(found[0], dict):
                return RECONCILED_SENT, found[0].get("MessageID")
            verdicts.append(RECONCILED_NOT_SENT if answer.body.get("TotalCount") == 0
                            else RECONCILED_UNKNOWN)
        if all(v == RECONCILED_NOT_SENT for v in verdicts):
            return RECONCILED_NOT_SENT, None
        return RECONCILED_UNKNOWN, None


def build(settings, *, extra_headers=None):
    """The provider as configured: the server token goes in Postmark's own header."""
    token = settings.require("POSTMARK_SERVER_TOKEN")
    http = http_client(settings, PostmarkProvider, "POSTMARK_API_URL",
                       headers={AUTH_HEADER: token}, extra_headers=extra_headers)
    return PostmarkProvider(http, message_stream=settings.value("POSTMARK_MESSAGE_STREAM"),
                            transactional_stream=settings.value("POSTMARK_TRANSACTIONAL_STREAM"))
