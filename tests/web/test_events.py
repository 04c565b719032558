"""POST /events/<provider>: each provider's signature, good and forged, and what events do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import timedelta

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from sender import dispatch, subscribers
from sender.providers.resend import webhook as resend_hooks
from sender.subscribers import get

from .conftest import MAILGUN_KEY, POSTMARK_PASSWORD, POSTMARK_USER, RESEND_SECRET


@pytest.fixture
def hooks(start_server, sendgrid_key):
    server = start_server(SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_key[1])
    server.sendgrid_private = sendgrid_key[0]
    return server


def sent_delivery(server, email="ana@example.com"):
    """An active subscriber with the welcome email sent; returns (subscriber, delivery)."""
    drip = server.drip()
    result = subscribers.add_subscriber(drip, email, now=server.clock.now, confirmed=True,
                                        consent_source="import")
    dispatch.send_due(drip, now=server.clock.now, subscriber_id=result.subscriber.id)
    [delivery] = drip.store.deliveries(subscriber_id=result.subscriber.id, states=("sent",))
    return result.subscriber, delivery


# --- how each provider signs ---------------------------------------------------------------
def postmark(server, payload, *, password=POSTMARK_PASSWORD):
    auth = base64.b64encode(f"{POSTMARK_USER}:{password}".encode()).decode()
    return requests.post(f"{server.url}/events/postmark", data=json.dumps(payload), timeout=10,
                         headers={"Authorization": f"Basic {auth}",
                                  "Content-Type": "application/json"})


def sendgrid(server, events, *, key=None, tamper=False):
    body = json.dumps(events).encode()
    timestamp = str(int(server.clock.now.timestamp()))
    signature = (key or server.sendgrid_private).sign(timestamp.encode() + body,
                                                      ec.ECDSA(hashes.SHA256()))
    if tamper:
        body = body.replace(b"bounce", b"bounce ", 1)
    return requests.post(f"{server.url}/events/sendgrid", data=body, timeout=10, headers={
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})


def mailgun(server, event_data, *, key=MAILGUN_KEY):
    timestamp, token = str(int(server.clock.now.timestamp())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
               "event-data": event_data}
    return requests.post(f"{server.url}/events/mailgun", json=payload, timeout=10)


def resend(server, payload, *, secret=RESEND_SECRET, sent_at=None, msg_id="msg_1"):
    body = json.dumps(payload).encode()
    stamp = str(int((sent_at or server.clock.now).timestamp()))
    return requests.post(f"{server.url}/events/resend", data=body, timeout=10, headers={
        "Content-Type": "application/json", "svix-id": msg_id, "svix-timestamp": stamp,
        "svix-signature": "v1,bm90IGl0 " + resend_hooks.sign(secret, msg_id, stamp, body)})


# --- Postmark --------------------------------------------------------------------------------
def postmark_bounce(delivery, kind="HardBounce"):
    return {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": kind, "TypeCode": 1,
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": "ana@example.com",
            "BouncedAt": "2026-03-09T18:05:00.1234567Z", "MessageStream": "broadcast",
            "Metadata": {"delivery_id": str(delivery.id), "campaign": "welcome"}}


def test_postmark_hard_bounce_suppresses_for_good(hooks):
    ana, delivery = sent_delivery(hooks)
    response = postmark(hooks, postmark_bounce(delivery))
    assert response.status_code == 200
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "bounced"
    [event] = drip.store.events()
    assert (event["type"], event["delivery_id"], event["provider"]) == (
        "bounced", delivery.id, "postmark")
    assert event["raw"]["Type"] == "HardBounce"
    states = {d.step: d.state for d in drip.store.deliveries(subscriber_id=ana.id)}
    assert states["one"] == "cancelled"
    # The same event again (a retry) is recorded once.
    assert postmark(hooks, postmark_bounce(delivery)).json()["duplicates"] == 1
    assert len(hooks.drip().store.events()) == 1


def test_postmark_wrong_password_is_401_and_changes_nothing(hooks):
    _, delivery = sent_delivery(hooks)
    assert postmark(hooks, postmark_bounce(delivery), password="guess").status_code == 401
    no_auth = requests.post(f"{hooks.url}/events/postmark", json=postmark_bounce(delivery),
                            timeout=10)
    assert no_auth.status_code == 401
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert drip.store.events() == []


def test_postmark_soft_bounce_and_open_do_not_suppress(hooks):
    _, delivery = sent_delivery(hooks)
    postmark(hooks, postmark_bounce(delivery, kind="SoftBounce"))
    opened = {"RecordType": "Open", "MessageID": "883953f4", "Recipient": "ana@example.com",
              "ReceivedAt": "2026-03-09T19:00:00Z", "Metadata": {"delivery_id": str(delivery.id)}}
    assert postmark(hooks, opened).status_code == 200
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert [e["type"] for e in drip.store.events(delivery_id=delivery.id)] == ["opened"]


def test_postmark_bad_json_after_auth_is_400(hooks):
    auth = base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
    response = requests.post(f"{hooks.url}/events/postmark", data=b"{oops", timeout=10,
                             headers={"Authorization": f"Basic {auth}"})
    assert response.status_code == 400
    assert requests.post(f"{hooks.url}/events/nope", data=b"{}", timeout=10).status_code == 404


@pytest.mark.parametrize("bounced_at", ["1e400", "99999999999999999", '"9999-12-31T23:59:59-01:00"'])
def test_postmark_time_out_of_range_after_auth_is_400(hooks, caplog, bounced_at):
    """A signed event whose time no clock can hold is a bad payload (400), not a crash."""
    _, delivery = sent_delivery(hooks)
    auth = base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
    body = json.dumps(postmark_bounce(delivery)).replace('"2026-03-09T18:05:00.1234567Z"',
                                                         bounced_at)
    assert bounced_at in body
    response = requests.post(f"{hooks.url}/events/postmark", data=body, timeout=10, headers={
        "Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info] == []
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert drip.store.events() == []


def test_a_number_out_of_range_anywhere_after_auth_is_400_on_every_store(start_server, engine,
                                                                          caplog):
    """JSON that Python reads as infinity (1e400, Infinity) is no provider's event and cannot
    be stored as JSON (PostgreSQL refuses it): a 400, never a 500 and a logged error."""
    hooks = start_server(**engine)
    _, delivery = sent_delivery(hooks)
    auth = base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
    for number in ("1e400", "-1e400", "Infinity", "NaN"):
        body = json.dumps(postmark_bounce(delivery)).replace('"TypeCode": 1', f'"TypeCode": {number}')
        response = requests.post(f"{hooks.url}/events/postmark", data=body, timeout=10, headers={
            "Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        assert response.status_code == 400, (number, response.text)
    assert [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info] == []
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert drip.store.events() == []


# --- SendGrid --------------------------------------------------------------------------------
def sendgrid_events(delivery):
    base = {"email": "ana@example.com", "timestamp": 1773079500, "delivery_id": str(delivery.id),
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"}
    return [{**base, "event": "delivered", "sg_event_id": "ev-delivered"},
            {**base, "event": "open", "sg_event_id": "ev-open"},
            {**base, "event": "spamreport", "sg_event_id": "ev-spam"}]


def test_sendgrid_signed_batch_records_and_suppresses(hooks):
    _, delivery = sent_delivery(hooks)
    response = sendgrid(hooks, sendgrid_events(delivery))
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 3
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "complained"
    assert sorted(e["type"] for e in drip.store.events(delivery_id=delivery.id)) == [
        "complained", "delivered", "opened"]


def test_sendgrid_forged_signature_is_401(hooks):
    _, delivery = sent_delivery(hooks)
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert sendgrid(hooks, sendgrid_events(delivery), key=other_key).status_code == 401
    events = [{**e, "event": "bounce"} for e in sendgrid_events(delivery)]
    assert sendgrid(hooks, events, tamper=True).status_code == 401
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert drip.store.events() == []


# --- Mailgun ---------------------------------------------------------------------------------
def mailgun_event(delivery, event="failed", severity="permanent"):
    return {"id": "G9Bn5sl1TC6nu79C8C0bwg", "event": event, "severity": severity,
            "timestamp": 1773079500.5, "recipient": "ana@example.com",
            "message": {"headers": {"message-id": "20260309.abc@mg.example.com"}},
            "user-variables": {"delivery_id": str(delivery.id)}}


def test_mailgun_permanent_failure_suppresses(hooks):
    _, delivery = sent_delivery(hooks)
    assert mailgun(hooks, mailgun_event(delivery, severity="temporary")).status_code == 200
    assert get(hooks.drip(), "ana@example.com").status == "active"
    response = mailgun(hooks, {**mailgun_event(delivery), "id": "other"})
    assert response.status_code == 200
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "bounced"
    [event] = drip.store.events()
    assert event["delivery_id"] == delivery.id and event["provider_event_id"] == "other"


def test_mailgun_wrong_key_is_401(hooks):
    _, delivery = sent_delivery(hooks)
    assert mailgun(hooks, mailgun_event(delivery), key="key-wrong").status_code == 401
    unsigned = requests.post(f"{hooks.url}/events/mailgun", timeout=10,
                             json={"event-data": mailgun_event(delivery)})
    assert unsigned.status_code == 401
    assert get(hooks.drip(), "ana@example.com").status == "active"
    assert hooks.drip().store.events() == []


# --- Resend (Svix) ---------------------------------------------------------------------------
def resend_complaint(delivery):
    return {"type": "email.complained", "created_at": "2026-03-09T18:10:00.000Z",
            "data": {"email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
                     "created_at": "2026-03-09T18:00:00.000Z", "from": "Coach <c@example.com>",
                     "to": ["ana@example.com"], "subject": "Welcome",
                     "tags": {"delivery_id": str(delivery.id)}}}


def test_resend_signed_complaint_suppresses(hooks):
    _, delivery = sent_delivery(hooks)
    response = resend(hooks, resend_complaint(delivery))
    assert response.status_code == 200, response.text
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "complained"
    [event] = drip.store.events()
    assert event["provider_event_id"] == "msg_1" and event["delivery_id"] == delivery.id
    # The same signed request again within the window is a replay: refused, nothing added.
    assert resend(hooks, resend_complaint(delivery)).status_code == 401
    assert len(hooks.drip().store.events()) == 1


def test_resend_forged_or_stale_is_401(hooks):
    _, delivery = sent_delivery(hooks)
    forged_secret = "whsec_" + base64.b64encode(b"someone-else").decode()
    assert resend(hooks, resend_complaint(delivery), secret=forged_secret).status_code == 401
    stale = hooks.clock.now - timedelta(minutes=6)
    assert resend(hooks, resend_complaint(delivery), sent_at=stale).status_code == 401
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert drip.store.events() == []


def test_unconfigured_provider_is_401(start_server):
    server = start_server(POSTMARK_WEBHOOK_PASSWORD="")
    assert postmark(server, {"RecordType": "Bounce"}).status_code == 401


def test_oversized_event_body_is_413(hooks):
    body = b"[" + b" " * (3 * 1024 * 1024) + b"]"
    response = requests.post(f"{hooks.url}/events/sendgrid", data=body, timeout=30)
    assert response.status_code == 413


def test_sendgrid_drops_and_blocks(hooks):
    _, delivery = sent_delivery(hooks)
    base = {"email": "ana@example.com", "timestamp": 1773079500, "delivery_id": str(delivery.id)}
    events = [{**base, "event": "bounce", "type": "blocked", "sg_event_id": "b1"},
              {**base, "event": "dropped", "reason": "Spam Reporting Address", "sg_event_id": "d1"},
              {**base, "event": "processed", "sg_event_id": "p1"}]
    assert sendgrid(hooks, events).json()["recorded"] == 1
    drip = hooks.drip()
    assert get(drip, "ana@example.com").status == "complained"
    assert [e["provider_event_id"] for e in drip.store.events()] == ["d1"]
