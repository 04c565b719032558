"""A loopback server that speaks Postmark's batch and message-search API and records what
it receives, so a harness can compare the ledger with what the provider really got.

It runs in a thread of the harness process; the `drip` processes it serves are the ones
that get killed. ``faults`` (a seeded random.Random and a table of odds) makes it answer
500, 503, 429 with and without Retry-After, answer too slowly, drop the connection
after reading the request, or send malformed JSON — sometimes after having accepted the
batch, as a real provider can.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

FAULTS = ("500", "503", "429", "429-retry-after", "slow", "drop", "drop-after-accept", "bad-json")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A killed `drip` process resets its connection: expected here, not worth a traceback.
        pass


class PostmarkRecorder:
    def __init__(self, *, latency=0.0, rng=None, odds=None, slow_seconds=2.0):
        self.latency = latency
        self.rng = rng
        self.odds = odds or {}
        self.slow_seconds = slow_seconds
        self.lock = threading.Lock()
        self.received = Counter()        # delivery id -> times accepted
        self.subjects = {}               # delivery id -> the Subject it was accepted with
        self.arrived = {}                # delivery id -> when (time.time()) it was first accepted
        self.faults = Counter()          # fault name -> times injected
        self.requests = 0
        self.next_id = 0
        self.stop = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                wanted = query.get("metadata_delivery_id", [None])[0]
                with recorder.lock:
                    count = recorder.received.get(wanted, 0)
                messages = [{"MessageID": f"pm-found-{wanted}"}] if count else []
                self._json(200, {"TotalCount": len(messages), "Messages": messages})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = recorder._pick_fault()
                if recorder.latency:
                    time.sleep(recorder.latency)
                if fault in ("500", "503"):
                    return self._json(int(fault), {"ErrorCode": 100, "Message": "server error"})
                if fault == "429":
                    return self._json(429, {"ErrorCode": 429, "Message": "rate limited"})
                if fault == "429-retry-after":
                    return self._json(429, {"ErrorCode": 429, "Message": "slow down"},
                                      {"Retry-After": "120"})
                if fault == "drop":
                    return self._drop()
                items = json.loads(body)
                answer = recorder._accept(items)
                if fault == "drop-after-accept":
                    return self._drop()
                if fault == "slow":
                    recorder.stop.wait(recorder.slow_seconds)
                if fault == "bad-json":
                    return self._raw(200, b'[{"ErrorCode": 0, "Message": "OK"')
                self._json(200, answer)

            def _drop(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _json(self, status, body, headers=None):
                self._raw(status, json.dumps(body).encode(), headers)

            def _raw(self, status, data, headers=None):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass   # the client went away (killed, or timed out)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _pick_fault(self):
        with self.lock:
            self.requests += 1
            if not self.rng:
                return None
            roll = self.rng.random()
            for name in FAULTS:
                roll -= self.odds.get(name, 0.0)
                if roll < 0:
                    self.faults[name] += 1
                    return name
        return None

    def _accept(self, items):
        answer = []
        with self.lock:
            for item in items:
                delivery_id = (item.get("Metadata") or {}).get("delivery_id")
                self.received[delivery_id] += 1
                self.subjects[delivery_id] = item.get("Subject")
                self.arrived.setdefault(delivery_id, time.time())
                self.next_id += 1
                answer.append({"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{self.next_id}",
                               "To": item.get("To")})
        return answer

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
