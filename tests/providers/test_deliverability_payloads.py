"""List-Id and Feedback-ID in every provider's payload, and transactional mail on its own
stream where the provider has streams (Postmark): against the loopback API, the SMTP server,
and Prism mocks of the providers' own specs."""

from __future__ import annotations

import json
import re
from email import message_from_bytes, policy

import pytest

from sender import subscribers
from sender.compose import compose
from sender.models import Delivery

from .conftest import NOW, Reply, make_provider
from .smtp_server import Recorder, StrictController
from .test_cli_providers import provider_env
from .test_contract_prism import assert_valid, watch

PROVIDERS = ["postmark", "sendgrid", "mailgun", "resend"]
WELCOME = ('"Welcome" <welcome.example.com>', "welcome:hello:transactional:example")
COURSE = ('"Course" <course.example.com>', "course:one:marketing:example")


def sent_headers(name, seen):
    """[(headers, extra)] for each message in one request: extra is Postmark's stream."""
    if name == "postmark":
        return [({h["Name"]: h["Value"] for h in item["Headers"]}, item["MessageStream"])
                for item in seen.json()]
    if name in ("sendgrid",):
        return [(seen.json()["headers"], None)]
    if name == "resend":
        body = seen.json()
        return [(item["headers"], None) for item in (body if isinstance(body, list) else [body])]
    fields = dict(re.findall(rb'name="h:([^"]+)"\r\n\r\n([^\r]*)\r\n', seen.body))
    return [({k.decode(): v.decode() for k, v in fields.items()}, None)]


@pytest.mark.parametrize("name", PROVIDERS)
def test_each_provider_gets_list_id_feedback_id_and_the_stream(fake_api, run, drip, name):
    api = fake_api(name)
    env = provider_env(name, api.url)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    assert run("send", "--now", "2026-03-09T17:01Z", extra_env=env).exit_code == 0
    welcome = [m for seen in api.requests for m in sent_headers(name, seen)]
    api.requests.clear()
    assert run("send", "--now", "2026-03-12T17:01Z", extra_env=env).exit_code == 0
    course = [m for seen in api.requests for m in sent_headers(name, seen)]
    for got, (list_id, feedback), stream in ((welcome, WELCOME, "outbound"),
                                             (course, COURSE, "broadcast")):
        assert len(got) == 1
        headers, extra = got[0]
        assert headers["List-Id"] == list_id and headers["Feedback-ID"] == feedback
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        if name == "postmark":
            assert extra == stream
    assert {d.state for d in drip.store.deliveries() if d.step in ("hello", "one")} == {"sent"}


def test_postmark_streams_are_settings(fake_api, run, drip):
    api = fake_api("postmark")
    env = {**provider_env("postmark", api.url), "POSTMARK_TRANSACTIONAL_STREAM": "signups",
           "POSTMARK_MESSAGE_STREAM": "newsletter"}
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    subscribers.add_subscriber(drip, "bo@example.com", now=NOW)          # gets the confirmation
    assert run("send", "--now", "2026-03-09T17:01Z", extra_env=env).exit_code == 0
    assert run("send", "--now", "2026-03-12T17:01Z", extra_env=env).exit_code == 0
    streams = sorted((h["Feedback-ID"].split(":")[0], s) for seen in api.requests
                     for h, s in sent_headers("postmark", seen))
    assert streams == [("confirmation", "signups"), ("course", "newsletter"), ("welcome", "signups")]


def test_postmark_recovery_searches_both_streams(fake_api):
    api = fake_api("postmark")
    api.script = [Reply(200, {"TotalCount": 0, "Messages": []}),
                  Reply(200, {"TotalCount": 1, "Messages": [{"MessageID": "pm-77"}]})]
    provider = make_provider("postmark", api.url)
    verdict = provider.reconcile(Delivery(5, 1, "welcome", "hello", NOW, "sending"), "<x@y>")
    assert verdict == ("sent", "pm-77")
    searched = [seen.path for seen in api.requests]
    assert len(searched) == 2
    assert "messagestream=broadcast" in searched[0] and "messagestream=outbound" in searched[1]
    assert all("metadata_delivery_id=5" in path for path in searched)
    api.requests.clear()
    assert provider.reconcile(Delivery(6, 1, "course", "one", NOW, "sending"), "<x@y>")[0] == "not_sent"
    assert len(api.requests) == 2          # not found in either stream: it never went


def test_smtp_message_carries_the_headers(run, drip):
    mailbox = Recorder()
    controller = StrictController(mailbox)
    controller.start()
    try:
        subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
        env = {"DRIP_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port),
               "SMTP_SECURITY": "none"}
        assert run("send", "--now", "2026-03-09T17:01Z", extra_env=env).exit_code == 0
    finally:
        controller.stop()
    (received,) = mailbox.received
    parsed = message_from_bytes(received.content, policy=policy.default)
    assert (parsed["List-Id"], parsed["Feedback-ID"]) == WELCOME


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_composed_messages_pass_each_providers_spec(prism, drip, name):
    person = subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW,
                                        confirmed=True).subscriber
    messages = [compose(drip, person, drip.campaigns.get(c), drip.campaigns.get(c).steps[0], now=NOW,
                        delivery_id=n) for n, c in enumerate(("welcome", "course"), start=1)]
    provider = make_provider(name, prism(name))
    answers = watch(provider)
    provider.send(messages)
    assert_valid(answers)
    bodies = b"".join(a.request.body for a in answers)
    for list_id, feedback in (WELCOME, COURSE):
        assert feedback.encode() in bodies
        assert list_id.split(" ")[1].encode() in bodies
    if name == "postmark":
        streams = [item["MessageStream"] for a in answers for item in json.loads(a.request.body)]
        assert streams == ["outbound", "broadcast"]
