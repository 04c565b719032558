"""The loopback provider APIs the tests and the benchmarks share, and message builders.

``FakeApi`` is a small HTTP server on 127.0.0.1 that records every request and answers
from a script, then from ``speaks(name)``: answers in the style of each provider's real
API. No pytest here, so that ``benchmarks/providers.py`` runs with only the bench extras
(``pip install -e '.[bench]'``); the fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sender.message import Attachment, OutgoingMessage, address
from sender.providers.http import HttpClient

KEYS = {"postmark": "pm-secret-token-123", "sendgrid": "SG.secret-key-123",
        "mailgun": "key-secret-123", "resend": "re_secret_123"}
NOW = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc=None, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- a loopback server in the style of each provider's API ------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes
    client: tuple = ()      # the (host, port) it came from: one per connection

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)
    drop: bool = False        # close the connection without answering
    hold: bool = False        # answer nothing until the test ends (a timeout)
    raw: bytes | None = None  # a body sent as is (malformed JSON)


class FakeApi:
    """Records every request; answers from ``script`` (a list of Reply, used in order) and
    then from ``default(seen)``."""

    def __init__(self):
        self.requests = []
        self.script = []
        self.default = lambda seen: Reply(200, {})
        self.release = threading.Event()
        self.latency = 0.0
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length),
                            self.client_address)
                with api.lock:
                    api.requests.append(seen)
                    reply = api.script.pop(0) if api.script else None
                reply = reply or api.default(seen)
                if api.latency:
                    time.sleep(api.latency)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.hold:
                    api.release.wait(10)
                    self.close_connection = True
                    return
                data = reply.raw if reply.raw is not None else (
                    b"" if reply.body is None else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def speaks(name):
    """A default answer in the style of each provider's real API."""
    counter = iter(range(1, 10**9))

    def postmark(seen):
        if seen.path.startswith("/messages/outbound"):
            return Reply(200, {"TotalCount": 0, "Messages": []})
        items = seen.json()
        return Reply(200, [{"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{next(counter)}",
                            "To": item["To"]} for item in items])

    def sendgrid(seen):
        if seen.path == "/v3/mail/batch":
            return Reply(201, {"batch_id": f"batch{next(counter)}"})
        if seen.path == "/v3/user/scheduled_sends":
            return Reply(201, {"batch_id": seen.json()["batch_id"], "status": "cancel"})
        return Reply(202, None, {"X-Message-Id": f"sg-{next(counter)}"})

    def mailgun(seen):
        return Reply(200, {"id": f"<mg-{next(counter)}@mg.example.com>", "message": "Queued."})

    remembered = {}   # Idempotency-Key -> (body, reply), as Resend keeps them for 24 h

    def resend(seen):
        if seen.path.endswith("/cancel"):
            return Reply(200, {"object": "email", "id": seen.path.split("/")[2]})
        key = next((v for k, v in seen.headers.items() if k.lower() == "idempotency-key"), None)
        if key is not None and key in remembered:
            body, reply = remembered[key]
            if body != seen.body:
                return Reply(409, {"statusCode": 409, "name": "invalid_idempotent_request",
                                   "message": "Same idempotency key used with a different "
                                              "request payload."})
            return reply
        body = seen.json()
        if isinstance(body, list):
            reply = Reply(200, {"data": [{"id": f"re-{next(counter)}"} for _ in body]})
        else:
            reply = Reply(200, {"id": f"re-{next(counter)}"})
        if key is not None:
            remembered[key] = (seen.body, reply)
        resend.delivered.extend(body if isinstance(body, list) else [body])
        return reply

    resend.delivered = []    # each email Resend accepted for delivery, once

    return {"postmark": postmark, "sendgrid": sendgrid, "mailgun": mailgun, "resend": resend}[name]


# --- building providers and messages ---------------------------------------------------------
class Sleeps(list):
    """A sleep that records and returns at once: no real waiting in tests."""

    def __call__(self, seconds):
        self.append(seconds)


def make_provider(name, base_url, *, extra_headers=None, sleep=None, timeout=5.0, retries=2,
                  rate_limit=None, concurrency=1, key=None):
    from sender.providers.mailgun.sending import MailgunProvider
    from sender.providers.postmark.sending import PostmarkProvider
    from sender.providers.resend.sending import ResendProvider
    from sender.providers.sendgrid.sending import SendGridProvider

    key = key or KEYS[name]
    kwargs = dict(key_setting={"postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY",
                               "mailgun": "MAILGUN_API_KEY", "resend": "RESEND_API_KEY"}[name],
                  secrets=[key], timeout=timeout, retries=retries, rate_limit=rate_limit,
                  concurrency=concurrency, extra_headers=extra_headers,
                  sleep=sleep if sleep is not None else Sleeps())
    if name == "postmark":
        return PostmarkProvider(HttpClient(name, base_url, headers={"X-Postmark-Server-Token": key},
                                           **kwargs))
    if name == "sendgrid":
        return SendGridProvider(HttpClient(name, base_url, headers={"Authorization": f"Bearer {key}"},
                                           **kwargs))
    if name == "mailgun":
        return MailgunProvider(HttpClient(name, base_url, auth=("api", key), **kwargs),
                               domain="mg.example.com")
    return ResendProvider(HttpClient(name, base_url, headers={"Authorization": f"Bearer {key}"},
                                     **kwargs))


def make_message(n=1, *, delivery_id="auto", send_at=None, attachments=(), email=None):
    delivery_id = n if delivery_id == "auto" else delivery_id
    return OutgoingMessage(
        delivery_id=delivery_id,
        message_id=f"<course.one.uid{n}@example.com>",
        sender=address("coach@example.com", "Coach Example"),
        reply_to=address("reply@example.com"),
        to=address(email or f"reader{n}@example.org", f"Reader {n}"),
        subject=f"Week {n}: gentle start",
        html=f"<p>Hello reader {n}</p><p><a href='https://mail.example.com/unsubscribe/t{n}'>"
             "Unsubscribe</a></p>",
        text=f"Hello reader {n}\n\nUnsubscribe: https://mail.example.com/unsubscribe/t{n}\n",
        date=NOW,
        headers={"List-Unsubscribe": f"<https://mail.example.com/unsubscribe/t{n}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        tag="course/one",
        metadata={"delivery_id": str(delivery_id or ""), "campaign": "course", "step": "one"},
        attachments=list(attachments),
        send_at=send_at,
    )


PDF = Attachment("guide.pdf", "application/pdf", b"%PDF-1.4 tiny guide\n%%EOF\n")
