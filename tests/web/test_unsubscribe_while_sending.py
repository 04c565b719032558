"""A one-click unsubscribe while a `drip send` waits on a provider that hangs: the database is
not held across the network call, so the unsubscribe answers at once and is applied. The
message already in the hanging request was handed over before she unsubscribed; nothing of
hers is handed over after her unsubscribe committed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import requests

from sender import dispatch, subscribers
from sender.config import Settings
from sender.drip import Drip
from sender.tokens import UNSUBSCRIBE
from tests.providers.loopback import FakeApi, speaks
from tests.web.conftest import START


def test_unsubscribe_answers_while_the_provider_hangs(start_server, make_drip):
    api = FakeApi()
    postmark = speaks("postmark")
    arrived, release = threading.Event(), threading.Event()

    def hang_then_answer(seen):
        if seen.path == "/email/batch":
            arrived.set()
            release.wait(60)
        return postmark(seen)

    api.default = hang_then_answer
    server = start_server(DRIP_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="pm-hang",
                          POSTMARK_API_URL=api.url, DRIP_HTTP_TIMEOUT="45", DRIP_MIN_GAP="0",
                          DRIP_SEND_WINDOW="always")
    try:
        sender = make_drip(server.env)
        ana = subscribers.add_subscriber(sender, "ana@example.com", now=START,
                                         confirmed=True).subscriber
        bo = subscribers.add_subscriber(sender, "bo@example.com", now=START,
                                        confirmed=True).subscriber
        result = {}

        def send():
            # Its own connection, opened and closed in its own thread, as a sender process has.
            drip = Drip(Settings.from_env(server.env))
            try:
                result["report"] = dispatch.send_due(drip, now=START)
            finally:
                drip.close()

        sending = threading.Thread(target=send)
        sending.start()
        assert arrived.wait(30), "the provider never got the batch"
        # The provider is holding the batch (both welcome emails). Ana unsubscribes now.
        token = make_drip(server.env).signer.make(UNSUBSCRIBE, ana.uid)
        began = time.monotonic()
        answer = requests.post(f"{server.url}/unsubscribe/{token}",
                               data={"List-Unsubscribe": "One-Click"}, timeout=30)
        took = time.monotonic() - began
        assert answer.status_code == 200 and took < 2.0, (answer.status_code, took)
        check = make_drip(server.env)
        assert check.store.get_subscriber(id=ana.id).status == "unsubscribed"
        release.set()
        sending.join(30)
        assert result["report"].sent == 2       # handed over before she unsubscribed
        batches = [r for r in api.requests if r.path == "/email/batch"]
        assert len(batches) == 1
        # Nothing more for Ana, ever; Bo's sequence goes on.
        later = dispatch.send_due(make_drip(server.env), now=START + timedelta(days=30))
        assert later.sent >= 1
        to = [item["To"] for r in api.requests if r.path == "/email/batch" for item in r.json()]
        assert sum("ana@example.com" in t for t in to) == 1
        ana_rows = {d.step: d.state for d in check.store.deliveries(subscriber_id=ana.id)}
        assert set(ana_rows.values()) <= {"sent", "cancelled"}
        assert subscribers.get(check, "bo@example.com").status == "active"
        assert bo.id != ana.id
    finally:
        release.set()
        api.close()
