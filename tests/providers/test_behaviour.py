"""What a spec cannot show, against a loopback server that speaks each provider's API:
batch items failing singly, Retry-After, timeouts, dropped connections, malformed JSON,
a bad key stopping the run, a crash between send and record, and what each request carries."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest

from sender import dispatch, subscribers
from sender.errors import ProviderError
from sender.logging_setup import MASK
from sender.models import Delivery
from sender.providers.base import (
    ACCEPTED,
    RECONCILED_NOT_SENT,
    RECONCILED_SENT,
    RECONCILED_UNKNOWN,
    REJECTED,
    RETRY,
    UNKNOWN,
)
from sender.providers.http import RateLimiter, parse_retry_after
from sender.providers.resend.sending import idempotency_key

from .conftest import KEYS, NOW, PDF, Reply, Sleeps, make_message, make_provider, speaks

PROVIDERS = ["postmark", "sendgrid", "mailgun", "resend"]


def add_people(drip, count, now=NOW):
    for n in range(count):
        subscribers.add_subscriber(drip, f"p{n}@example.com", name=f"P {n}", now=now,
                                   confirmed=True)


def welcome_rows(drip):
    return [d for d in drip.store.deliveries() if d.campaign == "welcome"]


# --- what every request carries ------------------------------------------------------------
def test_postmark_payload_carries_headers_tag_metadata_stream_attachment(fake_api):
    api = fake_api("postmark")
    provider = make_provider("postmark", api.url)
    results = provider.send([make_message(1, attachments=[PDF]), make_message(2)])
    assert [(r.outcome, r.provider_message_id) for r in results] == [(ACCEPTED, "pm-1"),
                                                                      (ACCEPTED, "pm-2")]
    (seen,) = api.requests
    assert seen.path == "/email/batch" and seen.headers["X-Postmark-Server-Token"] == KEYS["postmark"]
    first = seen.json()[0]
    headers = {h["Name"]: h["Value"] for h in first["Headers"]}
    assert headers == {"Message-ID": "<course.one.uid1@example.com>",
                       "List-Unsubscribe": "<https://mail.example.com/unsubscribe/t1>",
                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert first["Tag"] == "course/one" and first["MessageStream"] == "broadcast"
    assert first["Metadata"] == {"delivery_id": "1", "campaign": "course", "step": "one"}
    assert first["From"] == "Coach Example <coach@example.com>"
    assert first["To"] == "Reader 1 <reader1@example.org>"
    assert first["ReplyTo"] == "reply@example.com"
    assert base64.b64decode(first["Attachments"][0]["Content"]) == PDF.data
    assert "Attachments" not in seen.json()[1]


def test_postmark_tag_is_cut_to_its_limit(fake_api):
    api = fake_api("postmark")
    message = make_message(1)
    message.tag = "x" * 1500
    make_provider("postmark", api.url).send([message])
    assert len(api.requests[0].json()[0]["Tag"]) == 1000


def test_postmark_items_written_directly_read_back_as_every_value_was(fake_api):
    """A batch's items are JSON text written directly (``item_json``): every value, however
    hostile, reads back exactly, and the request is plain ASCII JSON, as ``json.dumps``
    makes it."""
    import json

    from sender.message import address

    api = fake_api("postmark")
    hostile = 'Zoë "Q" \\ O\'Brien </script> 李小龍 😀'
    message = make_message(1, attachments=[PDF])
    message.to = address("zoe@example.org", hostile)
    message.subject = hostile
    message.html = f"<p>{hostile}\x00\x1f\ud800\u2028\t\r\n</p>"
    message.text = hostile + "\n\\n"
    message.headers["X-Extra"] = hostile
    message.metadata = {"k" * 30: "v" * 100, "empty": "", "none": None,
                        **{f"m{n}": n for n in range(12)}}
    make_provider("postmark", api.url).send([message, make_message(2)])
    (seen,) = api.requests
    assert seen.body.isascii() and seen.headers["Content-Type"] == "application/json"
    item = seen.json()[0]
    assert item["To"] == str(message.to) and item["Subject"] == hostile
    assert item["HtmlBody"] == message.html and item["TextBody"] == message.text
    assert {h["Name"]: h["Value"] for h in item["Headers"]}["X-Extra"] == hostile
    assert item["Metadata"] == json.loads(json.dumps(
        dict(list({"k" * 20: "v" * 80, **{f"m{n}": str(n) for n in range(12)}}.items())[:10])))
    assert item["Attachments"] == [{"Name": PDF.filename, "ContentType": PDF.content_type,
                                    "Content": base64.b64encode(PDF.data).decode()}]
    assert seen.json()[1]["To"] == "Reader 2 <reader2@example.org>"


def test_sendgrid_payload(fake_api):
    api = fake_api("sendgrid")
    results = make_provider("sendgrid", api.url).send([make_message(1, attachments=[PDF])])
    assert results[0].provider_message_id == "sg-1"
    body = api.requests[0].json()
    assert api.requests[0].headers["Authorization"] == f"Bearer {KEYS['sendgrid']}"
    assert body["personalizations"] == [{"to": [{"email": "reader1@example.org", "name": "Reader 1"}],
                                         "custom_args": {"delivery_id": "1", "campaign": "course",
                                                         "step": "one"}}]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["categories"] == ["course/one"]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert base64.b64decode(body["attachments"][0]["content"]) == PDF.data


def test_mailgun_payload_is_a_multipart_form(fake_api):
    api = fake_api("mailgun")
    results = make_provider("mailgun", api.url).send([make_message(1, attachments=[PDF])])
    assert results[0].provider_message_id == "<mg-1@mg.example.com>"
    seen = api.requests[0]
    assert seen.path == "/v3/mg.example.com/messages"
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(
        f"api:{KEYS['mailgun']}".encode()).decode()
    assert seen.headers["Content-Type"].startswith("multipart/form-data")
    for part in (b'name="h:List-Unsubscribe"\r\n\r\n<https://mail.example.com/unsubscribe/t1>',
                 b'name="o:tag"\r\n\r\ncourse/one', b'name="v:delivery_id"\r\n\r\n1',
                 b'name="h:Reply-To"\r\n\r\nreply@example.com',
                 b'name="attachment"; filename="guide.pdf"', PDF.data):
        assert part in seen.body


def test_resend_payload_tags_and_idempotency_key(fake_api):
    api = fake_api("resend")
    provider = make_provider("resend", api.url)
    messages = [make_message(1), make_message(2)]
    results = provider.send(messages)
    assert [r.provider_message_id for r in results] == ["re-1", "re-2"]
    seen = api.requests[0]
    assert seen.path == "/emails/batch"
    assert seen.headers["Idempotency-Key"] == idempotency_key(messages)
    first = seen.json()[0]
    assert first["tags"] == [{"name": "campaign", "value": "course"},
                             {"name": "step", "value": "one"},
                             {"name": "delivery_id", "value": "1"}]
    assert first["headers"]["List-Unsubscribe"] == "<https://mail.example.com/unsubscribe/t1>"
    assert idempotency_key([messages[0]]) == "drip-1-0-course.one.uid1@example.com"


def test_resend_batches_of_at_most_100(fake_api):
    api = fake_api("resend")
    results = make_provider("resend", api.url).send([make_message(n) for n in range(1, 251)])
    assert [len(r.json()) for r in api.requests] == [100, 100, 50]
    assert len({r.headers["Idempotency-Key"] for r in api.requests}) == 3
    assert all(r.outcome == ACCEPTED for r in results)


# --- Postmark batch items failing singly -----------------------------------------------------
def test_postmark_batch_items_fail_singly_and_bad_addresses_are_suppressed(fake_api, env, make_drip):
    api = fake_api("postmark")
    api.script = [Reply(200, [
        {"ErrorCode": 0, "Message": "OK", "MessageID": "pm-ok"},
        {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked "
                                      "as inactive."},
        {"ErrorCode": 300, "Message": "Invalid 'To' address: 'p2@example.com'."},
        {"ErrorCode": 411, "Message": "The 'Metadata' field is invalid"},
    ])]
    drip = make_drip(env, provider=make_provider("postmark", api.url))
    add_people(drip, 4)
    report = dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    assert (report.sent, report.failed) == (1, 3)
    rows = {d.subscriber_id: d for d in welcome_rows(drip)}
    assert rows[1].state == "sent" and rows[1].provider_message_id == "pm-ok"
    assert rows[2].state == "failed" and "ErrorCode 406" in rows[2].last_error
    assert rows[3].state == "failed" and "ErrorCode 300" in rows[3].last_error
    assert rows[4].state == "failed" and "ErrorCode 411" in rows[4].last_error
    status = {s.email: s.status for s in drip.store.list_subscribers()}
    assert status == {"p0@example.com": "active", "p1@example.com": "bounced",
                      "p2@example.com": "bounced", "p3@example.com": "active"}
    assert len(api.requests) == 1


def test_postmark_bad_token_in_an_item_stops_the_run(fake_api, env, make_drip):
    api = fake_api("postmark")
    api.default = lambda seen: Reply(422, {"ErrorCode": 10, "Message": "Bad or missing API token."})
    drip = make_drip(env, provider=make_provider("postmark", api.url))
    add_people(drip, 3)
    with pytest.raises(ProviderError, match="check POSTMARK_SERVER_TOKEN"):
        dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    assert len(api.requests) == 1
    assert {d.state for d in welcome_rows(drip)} == {"scheduled"}     # released, untouched
    assert all(d.attempts == 0 for d in welcome_rows(drip))


# --- a bad key stops the run at the first answer ---------------------------------------------
@pytest.mark.parametrize("name", PROVIDERS)
def test_401_stops_after_one_request_and_hides_the_key(fake_api, name, env, make_drip):
    api = fake_api(name)
    api.default = lambda seen: Reply(401, {"message": f"invalid key {KEYS[name]}"})
    provider = make_provider(name, api.url, concurrency=4)
    drip = make_drip(env, provider=provider)
    add_people(drip, 6)
    with pytest.raises(ProviderError) as caught:
        dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    key_setting = {"postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY",
                   "mailgun": "MAILGUN_API_KEY", "resend": "RESEND_API_KEY"}[name]
    assert f"check {key_setting}" in str(caught.value)
    assert KEYS[name] not in str(caught.value) and KEYS[name] not in caught.value.body
    assert MASK in caught.value.body and caught.value.status == 401
    assert len(api.requests) == 1
    assert {d.state for d in welcome_rows(drip)} == {"scheduled"}


def test_a_stop_after_others_were_sent_records_what_went_and_stops_next_call(fake_api):
    api = fake_api("sendgrid")
    api.script = [Reply(202, None, {"X-Message-Id": "first"}), Reply(403, {"errors": []})]
    api.default = lambda seen: Reply(403, {"errors": [{"message": "forbidden"}]})
    provider = make_provider("sendgrid", api.url, concurrency=1)
    results = provider.send([make_message(1), make_message(2), make_message(3)])
    assert [r.outcome for r in results] == [ACCEPTED, RETRY, RETRY]
    assert results[0].provider_message_id == "first"
    with pytest.raises(ProviderError, match="SENDGRID_API_KEY"):
        provider.send([make_message(4)])
    assert len(api.requests) == 2


def test_once_the_key_has_worked_every_request_of_a_hand_off_goes_at_once(fake_api):
    """The first request of a run goes alone, so a bad key stops it before anything else is
    sent. Once the provider has taken a message the key is good: each later hand-off sends
    its DRIP_CONCURRENCY requests together. (Sending each hand-off's first request alone
    made every hand-off wait for two answers in turn: half the speed against a provider 50 ms
    away.) The server answers only once four requests are waiting at the same time."""
    import threading

    api = fake_api("sendgrid")
    provider = make_provider("sendgrid", api.url, concurrency=4)
    assert [r.outcome for r in provider.send([make_message(1)])] == [ACCEPTED]
    together = threading.Barrier(4, timeout=5)

    def when_four_wait(seen):
        try:
            together.wait()
        except threading.BrokenBarrierError:
            return Reply(503, {"errors": [{"message": "the requests came one after another"}]})
        [person] = seen.json()["personalizations"]
        return Reply(202, None, {"X-Message-Id": f"m{person['custom_args']['delivery_id']}"})

    api.default = when_four_wait
    results = provider.send([make_message(n) for n in range(2, 6)])
    assert [(r.outcome, r.provider_message_id) for r in results] == \
        [(ACCEPTED, f"m{n}") for n in range(2, 6)]
    assert len(api.requests) == 5


# --- retries: 429 / 5xx / Retry-After / timeouts / resets / bad JSON ---------------------------
def test_retry_after_beyond_what_we_wait_goes_back_to_dispatch(fake_api, env, make_drip):
    api = fake_api("resend")
    api.default = lambda seen: Reply(429, {"statusCode": 429, "name": "rate_limit_exceeded",
                                           "message": "Too many requests"}, {"Retry-After": "600"})
    drip = make_drip(env, provider=make_provider("resend", api.url))
    add_people(drip, 1)
    now = NOW + timedelta(minutes=1)
    report = dispatch.send_due(drip, now=now)
    assert report.retried == 1 and len(api.requests) == 1          # no in-process wait of 10 min
    (row,) = welcome_rows(drip)
    assert row.state == "scheduled" and row.attempts == 1
    assert row.due_at >= now + timedelta(seconds=600)              # Retry-After honoured
    assert "Too many requests" in row.last_error


def test_short_retry_after_is_waited_in_process_with_the_same_idempotency_key(fake_api):
    api = fake_api("resend")
    api.script = [Reply(429, {"name": "rate_limit_exceeded", "message": "slow down"},
                        {"retry-after": "2"})]
    sleeps = Sleeps()
    results = make_provider("resend", api.url, sleep=sleeps).send([make_message(1), make_message(2)])
    assert [r.outcome for r in results] == [ACCEPTED, ACCEPTED]
    assert sleeps == [2.0] or sleeps[0] >= 2.0
    first, second = api.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.body == second.body


@pytest.mark.parametrize("name", PROVIDERS)
def test_5xx_then_success_is_retried_in_process(fake_api, name):
    api = fake_api(name)
    api.script = [Reply(503, {"message": "busy"}), Reply(502, None)]
    sleeps = Sleeps()
    results = make_provider(name, api.url, sleep=sleeps).send([make_message(1)])
    assert results[0].outcome == ACCEPTED and len(api.requests) == 3 and len(sleeps) == 2


def test_timeout_is_unknown_and_not_resent_without_an_idempotency_key(fake_api):
    api = fake_api("postmark")
    api.script = [Reply(hold=True)]
    provider = make_provider("postmark", api.url, timeout=0.3, retries=2)
    results = provider.send([make_message(1)])
    # Postmark may have taken it: one request only, and the outcome says we do not know.
    assert results[0].outcome == UNKNOWN and "did not answer within 0.3s" in results[0].error
    assert len(api.requests) == 1


def test_dropped_connection_is_unknown_without_an_idempotency_key(fake_api):
    api = fake_api("mailgun")
    api.script = [Reply(drop=True)]
    results = make_provider("mailgun", api.url, retries=1).send([make_message(1)])
    assert results[0].outcome == UNKNOWN and "may or may not have sent" in results[0].error
    assert len(api.requests) == 1


def test_dropped_connection_is_retried_with_the_same_idempotency_key(fake_api):
    api = fake_api("resend")
    api.script = [Reply(drop=True)]
    results = make_provider("resend", api.url, retries=1).send([make_message(1)])
    assert results[0].outcome == ACCEPTED and len(api.requests) == 2
    keys = {seen.headers["Idempotency-Key"] for seen in api.requests}
    assert len(keys) == 1


def test_dropped_connection_every_time_is_unknown_even_with_a_key(fake_api):
    api = fake_api("resend")
    api.default = lambda seen: Reply(drop=True)
    results = make_provider("resend", api.url, retries=1).send([make_message(1)])
    assert results[0].outcome == UNKNOWN and len(api.requests) == 2


def test_connection_refused_is_a_retry():
    from .conftest import free_port

    provider = make_provider("resend", f"http://127.0.0.1:{free_port()}", retries=0)
    assert provider.send([make_message(1)])[0].outcome == RETRY


def test_malformed_json(fake_api):
    api = fake_api("postmark")
    api.script = [Reply(200, raw=b"[{not json"), Reply(500, raw=b"<html>oops"),
                  Reply(400, raw=b"plain words")]
    provider = make_provider("postmark", api.url, retries=0)
    taken = provider.send([make_message(1)])[0]
    assert taken.outcome == ACCEPTED and "unreadable" in taken.error   # 200: never resend
    assert provider.send([make_message(2)])[0].outcome == RETRY
    rejected = provider.send([make_message(3)])[0]
    assert rejected.outcome == REJECTED and "HTTP 400: plain words" in rejected.error


def test_400_rejects_with_the_providers_message(fake_api):
    api = fake_api("sendgrid")
    api.default = lambda seen: Reply(400, {"errors": [{"message": "Does not contain a valid "
                                                                  "address.", "field": "to"}]})
    result = make_provider("sendgrid", api.url).send([make_message(1)])[0]
    assert result.outcome == REJECTED
    assert result.error == "HTTP 400: Does not contain a valid address."


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Mon, 09 Mar 2026 17:02:00 GMT", now=NOW) == 120.0


def test_rate_limiter_spreads_requests():
    clock = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(round(s, 3))
        clock[0] += s

    limiter = RateLimiter(5, clock=lambda: clock[0], sleep=sleep)
    for _ in range(4):
        limiter.acquire()
    assert sleeps == [0.2, 0.2, 0.2]


def test_requests_in_flight_keep_the_order(fake_api):
    api = fake_api("sendgrid")
    api.latency = 0.02
    provider = make_provider("sendgrid", api.url, concurrency=8)
    results = provider.send([make_message(n) for n in range(1, 21)])
    assert [r.delivery_id for r in results] == list(range(1, 21))
    assert all(r.outcome == ACCEPTED for r in results) and len(api.requests) == 20


def test_debug_log_masks_the_key(fake_api, caplog):
    api = fake_api("postmark")
    with caplog.at_level(logging.DEBUG, logger="drip"):
        make_provider("postmark", api.url).send([make_message(1)])
    text = caplog.text
    assert "POST" in text and "/email/batch" in text and MASK in text
    assert KEYS["postmark"] not in text


def test_debug_log_masks_a_key_with_quotes_and_backslashes_inside_a_request_body(fake_api,
                                                                                 caplog):
    """A key written into a message's body (pasted into a template, say) goes in the request
    JSON-escaped; the debug log shows the body as text, in which the masker knows that form.
    Shown as Python's repr of the bytes, every escape doubled, it went unmasked."""
    secret = 'pa"ss\\word-0123456789'
    api = fake_api("postmark")
    message = make_message(1)
    message.text = "the key is " + secret
    with caplog.at_level(logging.DEBUG, logger="drip"):
        make_provider("postmark", api.url, key=secret).send([message])
    request = next(r.getMessage() for r in caplog.records if "/email/batch" in r.getMessage())
    assert f"the key is {MASK}" in request
    escaped = json.dumps(secret)[1:-1]
    assert secret not in request and escaped not in request
    assert escaped.replace("\\", "\\\\") not in request


# --- a crash between send and record ----------------------------------------------------------
class CrashAfterSend:
    """The real provider, then a crash before dispatch can record the answer."""

    def __init__(self, provider):
        self.provider = provider
        self.name, self.batch_size = provider.name, provider.batch_size
        self.max_schedule_ahead = provider.max_schedule_ahead
        self.replay_window = provider.replay_window
        self.handoff_keys = provider.handoff_keys
        self.handoff_chunks = provider.handoff_chunks

    def send(self, messages):
        self.provider.send(messages)
        raise SystemExit("power cut")

    def close(self):
        self.provider.close()


@pytest.mark.parametrize("found", [True, False])
def test_crash_between_send_and_record_is_reconciled_by_postmark_metadata(fake_api, env,
                                                                          make_drip, found):
    api = fake_api("postmark")
    sent_ids = {}
    speak = api.default

    def answer(seen):
        if seen.path.startswith("/messages/outbound"):
            did = seen.path.split("metadata_delivery_id=")[1].split("&")[0]
            stream = seen.path.split("messagestream=")[1].split("&")[0]
            if found and sent_ids.get(did, (None, None))[1] == stream:   # a search names a stream
                return Reply(200, {"TotalCount": 1, "Messages": [{"MessageID": sent_ids[did][0]}]})
            return Reply(200, {"TotalCount": 0, "Messages": []})
        reply = speak(seen)
        for item, out in zip(seen.json(), reply.body, strict=True):
            sent_ids[item["Metadata"]["delivery_id"]] = (out["MessageID"], item["MessageStream"])
        return reply

    api.default = answer
    provider = make_provider("postmark", api.url)
    drip = make_drip(env, provider=CrashAfterSend(provider))
    add_people(drip, 2)
    with pytest.raises(SystemExit):
        dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    assert {d.state for d in welcome_rows(drip)} == {"sending"}

    later = NOW + timedelta(minutes=30)           # past DRIP_CLAIM_TIMEOUT (10m)
    drip2 = make_drip(env, provider=provider)
    report = dispatch.send_due(drip2, now=later)
    rows = welcome_rows(drip2)
    assert report.recovered == 2
    searches = [r for r in api.requests if r.path.startswith("/messages/outbound")]
    # Each delivery is looked for in the broadcast stream, then in the transactional one
    # (where the welcome emails went).
    assert [r.path.split("messagestream=")[1] for r in searches] == ["broadcast", "outbound"] * 2
    batches = [r for r in api.requests if r.path == "/email/batch"]
    if found:
        assert {d.state for d in rows} == {"sent"} and len(batches) == 1   # no second send
        assert sorted(d.provider_message_id for d in rows) == sorted(i for i, _ in sent_ids.values())
    else:
        # Postmark has no record of them: provably not sent, so they go out now.
        assert {d.state for d in rows} == {"sent"} and len(batches) == 2


@pytest.mark.parametrize("reached", [True, False])
def test_crash_with_resend_replays_the_identical_batch_with_its_key(fake_api, env, make_drip,
                                                                   reached):
    """A kill after the hand-off began: the recovery sends the identical request with the same
    Idempotency-Key. Resend answers from its memory when the first one reached it (nothing is
    delivered twice) and delivers it now when it never did; no decision is left to the coach."""
    api = fake_api("resend")
    provider = make_provider("resend", api.url)

    class CrashAround(CrashAfterSend):
        def send(self, messages):
            if reached:
                self.provider.send(messages)
            raise SystemExit("power cut")

    drip = make_drip(env, provider=CrashAround(provider))
    add_people(drip, 3)
    with pytest.raises(SystemExit):
        dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    assert {d.handed_at is not None for d in welcome_rows(drip)} == {True}
    drip2 = make_drip(env, provider=provider)
    report = dispatch.send_due(drip2, now=NOW + timedelta(minutes=30))
    assert report.undecided == 0 and report.recovered == 3
    batches = [r for r in api.requests if r.path == "/emails/batch"]
    assert len(batches) == (2 if reached else 1)
    assert len({r.headers["Idempotency-Key"] for r in batches}) == 1
    if reached:
        assert batches[0].body == batches[1].body           # byte for byte the same request
    assert sorted(e["to"][0] for e in api.default.delivered) == [
        'P 0 <p0@example.com>', 'P 1 <p1@example.com>', 'P 2 <p2@example.com>']
    assert {d.state for d in welcome_rows(drip2)} == {"sent"}


def test_a_replay_refused_for_a_bad_key_stays_handed_and_goes_once_with_its_key(fake_api, env,
                                                                                make_drip):
    """A run of a worker whose provider has already taken mail: the replay of an interrupted
    hand-off is refused 401 (the key is being rotated). The run stops with the key named and
    the row stays handed, with the attempt it was made with, so the next run replays the very
    same request (same key): Resend delivers it once. Recorded as a retry instead, it went
    back to the schedule as a new request with a new key, and was delivered twice."""
    api = fake_api("resend")
    resend = api.default
    provider = make_provider("resend", api.url)
    drip = make_drip(env, provider=provider)
    add_people(drip, 2)
    assert dispatch.send_due(drip, now=NOW + timedelta(minutes=1), limit=1).sent == 1
    with pytest.raises(SystemExit):
        dispatch.send_due(make_drip(env, provider=CrashAfterSend(provider)),
                          now=NOW + timedelta(minutes=2))
    api.default = lambda seen: Reply(401, {"statusCode": 401, "message": "API key is invalid"})
    with pytest.raises(ProviderError, match="RESEND_API_KEY"):
        dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=30))
    handed = [d for d in welcome_rows(drip) if d.state == "sending"]
    assert [(d.attempts, d.handed_at is not None) for d in handed] == [(0, True)]
    api.default = resend
    report = dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=60))
    assert report.recovered == 1
    assert sorted(e["to"][0] for e in resend.delivered) == ["P 0 <p0@example.com>",
                                                           "P 1 <p1@example.com>"]
    assert {d.state for d in welcome_rows(drip)} == {"sent"}
    keys = [r.headers["Idempotency-Key"] for r in api.requests if r.path == "/emails/batch"]
    assert len(keys) == 4 and len(set(keys[1:])) == 1      # the crashed one, refused, replayed


def test_a_replay_the_provider_cannot_take_now_is_replayed_later_with_its_key(fake_api, env,
                                                                              make_drip):
    """The replay of an interrupted hand-off meets a provider that keeps answering 503. That
    is no answer about the first request, which may have gone: the row stays handed, with the
    attempt it was made with, and the next look replays the very same request (same key), so
    Resend delivers it once. Recorded as a retry, it went back to the schedule as a new
    request with a new key, and was delivered twice."""
    api = fake_api("resend")
    resend = api.default
    provider = make_provider("resend", api.url)
    add_people(make_drip(env, provider=provider), 1)
    with pytest.raises(SystemExit):
        dispatch.send_due(make_drip(env, provider=CrashAfterSend(provider)),
                          now=NOW + timedelta(minutes=1))
    api.default = lambda seen: Reply(503, {"statusCode": 503, "message": "busy"})
    report = dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=30))
    assert report.retried == 0 and report.undecided == 0
    (row,) = welcome_rows(make_drip(env))
    assert (row.state, row.attempts, row.handed_at is not None) == ("sending", 0, True)
    api.default = resend
    report = dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=60))
    assert report.recovered == 1
    assert [e["to"][0] for e in resend.delivered] == ["P 0 <p0@example.com>"]
    (row,) = welcome_rows(make_drip(env))
    assert row.state == "sent"
    keys = {r.headers["Idempotency-Key"] for r in api.requests if r.path == "/emails/batch"}
    assert len(keys) == 1


def test_a_stop_ends_the_run_not_the_worker(fake_api):
    """A provider kept for a worker's life: once it has taken mail, an account that stops
    sending (Postmark 405) stops that run, untouched; after the account is put right the next
    run sends. A stop that outlived its run kept every later run from even asking."""
    api = fake_api("postmark")
    provider = make_provider("postmark", api.url)
    assert [r.outcome for r in provider.send([make_message(1)])] == [ACCEPTED]
    api.default = lambda seen: Reply(422, {"ErrorCode": 405, "Message": "Not allowed to send"})
    with pytest.raises(ProviderError, match="not allowed to send"):
        provider.send([make_message(2)])
    api.default = speaks("postmark")
    assert [r.outcome for r in provider.send([make_message(2)])] == [ACCEPTED]
    assert len(api.requests) == 3


def test_resend_crash_before_the_hand_off_is_sent_again_without_asking(fake_api, env, make_drip):
    api = fake_api("resend")
    provider = make_provider("resend", api.url)
    drip = make_drip(env, provider=provider)
    add_people(drip, 2)
    claimed = drip.store.claim_due(NOW + timedelta(minutes=1), 10, pending_campaign="confirmation")
    assert len(claimed) == 2                     # killed here: claimed, never handed over
    report = dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=30))
    assert report.undecided == 0 and report.sent == 2
    assert len(api.default.delivered) == 2


def test_resend_409_while_the_first_request_is_in_progress_is_settled_later(fake_api, env,
                                                                           make_drip):
    api = fake_api("resend")
    api.script = [Reply(409, {"statusCode": 409, "name": "concurrent_idempotent_requests",
                              "message": "Same idempotency key used while original request "
                                         "is still in progress."})]
    provider = make_provider("resend", api.url)
    drip = make_drip(env, provider=provider)
    add_people(drip, 2)
    first = dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    assert first.failed == 0 and first.unconfirmed == 2
    assert {d.state for d in welcome_rows(drip)} == {"sending"}
    later = dispatch.send_due(drip, now=NOW + timedelta(minutes=30))
    assert later.failed == 0 and later.undecided == 0
    assert {d.state for d in welcome_rows(drip)} == {"sent"}
    assert len(api.default.delivered) == 2


@pytest.mark.parametrize("name", ["sendgrid", "mailgun", "resend"])
def test_reconcile_without_a_search_is_unknown(fake_api, name):
    provider = make_provider(name, fake_api(name).url)
    delivery = Delivery(5, 1, "course", "one", NOW, "sending")
    assert provider.reconcile(delivery, "<m@example.com>") == (RECONCILED_UNKNOWN, None)


def test_postmark_reconcile_when_search_fails_is_unknown(fake_api):
    api = fake_api("postmark")
    api.default = lambda seen: Reply(500, None)
    provider = make_provider("postmark", api.url)
    verdict = provider.reconcile(Delivery(5, 1, "c", "s", NOW, "sending"), None)
    assert verdict == (RECONCILED_UNKNOWN, None)
    assert RECONCILED_SENT != RECONCILED_NOT_SENT


def test_postmark_account_stop_inside_a_batch_records_what_went(fake_api):
    api = fake_api("postmark")
    api.script = [Reply(200, [{"ErrorCode": 0, "MessageID": "pm-ok"},
                              {"ErrorCode": 405, "Message": "Not allowed to send"}])]
    provider = make_provider("postmark", api.url)
    ok, stopped = provider.send([make_message(1), make_message(2)])
    assert ok.outcome == ACCEPTED and ok.provider_message_id == "pm-ok"
    assert stopped.outcome == RETRY and "not allowed to send" in stopped.error
    with pytest.raises(ProviderError, match="not allowed to send"):
        provider.send([make_message(3)])
    assert len(api.requests) == 1


def test_resend_recovery_after_a_member_left_between_claim_and_hand_off(fake_api, env, make_drip):
    """The request's key is made over the members actually sent, so the replay after a crash
    matches it even when someone unsubscribed between the claim and the hand-off."""
    api = fake_api("resend")
    provider = make_provider("resend", api.url)

    class CrashBefore(CrashAfterSend):
        def send(self, messages):
            raise SystemExit("power cut")

    drip = make_drip(env, provider=CrashBefore(provider))
    add_people(drip, 3)
    batch = drip.store.claim_due(NOW + timedelta(minutes=1), 10, pending_campaign="confirmation")
    subscribers.unsubscribe(drip, subscribers.get(drip, "p1@example.com"), now=NOW)
    with pytest.raises(SystemExit):
        dispatch._send_batch(drip, batch, NOW + timedelta(minutes=1), dispatch.SendReport(),
                             "confirmation")
    report = dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=30))
    assert report.undecided == 0 and report.recovered == 2
    assert sorted(e["to"][0] for e in api.default.delivered) == [
        "P 0 <p0@example.com>", "P 2 <p2@example.com>"]


def test_resend_replay_that_cannot_tell_asks_the_coach_at_once(fake_api, env, make_drip,
                                                               project):
    """After a crash the template was edited: the rebuilt request differs, Resend answers 409
    for the known key, and the delivery waits for a decision now (not for a day)."""
    api = fake_api("resend")
    provider = make_provider("resend", api.url)
    drip = make_drip(env, provider=CrashAfterSend(provider))
    add_people(drip, 1)
    with pytest.raises(SystemExit):
        dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    template = project / "templates" / "emails" / "welcome" / "hello.html"
    template.write_text(template.read_text() + "\n<p>One more line.</p>\n")
    report = dispatch.send_due(make_drip(env, provider=provider), now=NOW + timedelta(minutes=30))
    assert report.undecided == 1 and report.unconfirmed == 0
    (row,) = welcome_rows(make_drip(env))
    assert (row.state, row.reason) == ("sending", "needs_decision")
    assert len(api.default.delivered) == 1
