"""Signing up again on the form: after an unsubscribe (ours or the provider's), while
pending, and while active, bounced or complained."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
from datetime import timedelta

import pytest
import requests

from sender import subscribers
from sender.subscribers import get

from .conftest import MAILGUN_KEY, POSTMARK_PASSWORD, POSTMARK_USER


def signup(server, **fields):
    response = requests.post(f"{server.url}/subscribe", timeout=10,
                             data={"consent": "yes", **fields})
    assert response.status_code == 200
    return response


def confirm_from_outbox(server, email):
    [message] = [m for m in server.emails_to(email) if m["Subject"] == "Please confirm"]
    assert requests.post(server.link(message, "confirm"), timeout=10).status_code == 200


def postmark_unsubscribe(server, email):
    record = {"RecordType": "SubscriptionChange", "MessageID": "pm-1", "Recipient": email,
              "ChangedAt": server.clock.now.isoformat(), "SuppressSending": True,
              "SuppressionReason": "ManualSuppression", "ID": secrets.token_hex(8)}
    auth = base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
    return requests.post(f"{server.url}/events/postmark", data=json.dumps(record), timeout=10,
                         headers={"Authorization": f"Basic {auth}",
                                  "Content-Type": "application/json"})


def mailgun_unsubscribe(server, email):
    timestamp, token = str(int(server.clock.now.timestamp())), secrets.token_hex(25)
    signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(),
                         hashlib.sha256).hexdigest()
    return requests.post(f"{server.url}/events/mailgun", timeout=10, json={
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {"id": secrets.token_hex(8), "event": "unsubscribed", "recipient": email,
                       "timestamp": server.clock.now.timestamp()}})


@pytest.mark.parametrize("provider_unsubscribe", [postmark_unsubscribe, mailgun_unsubscribe],
                         ids=["postmark", "mailgun"])
def test_after_a_provider_side_unsubscribe_a_new_signup_continues_the_sequence(
        start_server, engine, provider_unsubscribe):
    server = start_server(**engine)
    signup(server, email="ana@example.com", name="Ana", source="blog")
    confirm_from_outbox(server, "ana@example.com")
    drip = server.drip()
    ana = get(drip, "ana@example.com")
    [lesson] = [d for d in drip.store.deliveries(subscriber_id=ana.id, campaign="course")
                if d.step == "one"]
    first_due = lesson.due_at
    assert lesson.state == "scheduled"

    server.clock.now += timedelta(days=1)
    assert provider_unsubscribe(server, "ana@example.com").status_code == 200
    drip = server.drip()
    assert get(drip, "ana@example.com").status == "unsubscribed"
    assert drip.store.get_delivery(lesson.id).state == "cancelled"

    # A day later she signs up again on the form, from another page.
    server.clock.now += timedelta(days=1)
    shutil.rmtree(server.outbox)  # so the confirmation read below is the one sent now
    signup(server, email="ana@example.com", source="podcast")
    again = get(server.drip(), "ana@example.com")
    assert again.status == "pending"
    assert again.consent.source == "form:podcast" and again.consent.at == server.clock.now
    confirm_from_outbox(server, "ana@example.com")

    drip = server.drip()
    assert get(drip, "ana@example.com").status == "active"
    resumed = drip.store.get_delivery(lesson.id)
    assert resumed.state == "scheduled"
    # Moved later by the day she was away (Friday 11:00 in her zone: inside the window).
    assert resumed.due_at == first_due + timedelta(days=1)
    course = {d.step: d.state for d in drip.store.deliveries(subscriber_id=ana.id,
                                                              campaign="course")}
    assert course == {"one": "scheduled", "two": "scheduled"}
    # The welcome email she already had is not sent a second time.
    assert [d.state for d in drip.store.deliveries(subscriber_id=ana.id,
                                                    campaign="welcome")] == ["sent"]


def test_after_our_own_unsubscribe_link_a_new_signup_is_confirmed_by_email(server):
    signup(server, email="bea@example.com")
    confirm_from_outbox(server, "bea@example.com")
    drip = server.drip()
    subscribers.unsubscribe(drip, get(drip, "bea@example.com"), now=server.clock.now)
    server.clock.now += timedelta(hours=3)
    shutil.rmtree(server.outbox)
    signup(server, email="bea@example.com")
    assert get(server.drip(), "bea@example.com").status == "pending"
    confirm_from_outbox(server, "bea@example.com")
    assert get(server.drip(), "bea@example.com").status == "active"


@pytest.mark.parametrize("status", ["active", "bounced", "complained", "paused"])
def test_a_signup_changes_nothing_for_a_subscriber_who_is_not_pending_or_unsubscribed(
        server, status):
    drip = server.drip()
    result = subscribers.add_subscriber(drip, "cy@example.com", now=server.clock.now, name="Cy",
                                        fields={"stage": "postpartum"}, confirmed=True,
                                        consent_source="import")
    if status == "paused":
        subscribers.pause(drip, result.subscriber, now=server.clock.now)
    elif status != "active":
        subscribers.suppress(drip, result.subscriber, status, now=server.clock.now,
                             reason="test")
    before = get(drip, "cy@example.com")
    deliveries = [(d.id, d.state, d.due_at) for d in drip.store.deliveries(
        subscriber_id=before.id)]
    server.clock.now += timedelta(hours=2)
    signup(server, email="cy@example.com", name="Mallory", stage="pregnant", source="spam")
    drip = server.drip()
    assert get(drip, "cy@example.com") == before
    assert [(d.id, d.state, d.due_at) for d in drip.store.deliveries(
        subscriber_id=before.id)] == deliveries
    assert server.emails_to("cy@example.com") == []


def test_a_second_signup_for_a_pending_address_keeps_her_name_fields_and_consent(server):
    signup(server, email="dee@example.com", name="Dee", stage="postpartum", source="blog")
    drip = server.drip()
    first = get(drip, "dee@example.com")
    server.clock.now += timedelta(minutes=20)
    signup(server, email="dee@example.com", name="Mallory", stage="pregnant", weeks="9",
           source="elsewhere")
    second = get(server.drip(), "dee@example.com")
    assert (second.name, second.fields, second.consent) == (first.name, first.fields,
                                                            first.consent)
    assert len(server.emails_to("dee@example.com")) == 1   # within the hour: no second email
    # Later on, a signup may send the confirmation again, and still changes nothing else.
    server.clock.now += timedelta(hours=2)
    signup(server, email="dee@example.com", name="Mallory", stage="pregnant")
    drip = server.drip()
    third = get(drip, "dee@example.com")
    assert (third.name, third.fields, third.consent) == (first.name, first.fields,
                                                         first.consent)
    [confirmation] = drip.store.deliveries(subscriber_id=first.id)
    assert confirmation.state == "sent" and confirmation.sent_at == server.clock.now
