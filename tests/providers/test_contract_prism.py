"""Contract tests: real requests from each provider module to a Prism mock of the provider's
own spec. Prism answers a request that breaks the spec with an error and lists the
violations in an ``sl-violations`` header (Resend: a problem+json body); every answer is
checked for both. ``Prefer: code=...`` forces a documented error answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sender.providers.base import ACCEPTED, RECONCILED_SENT, RETRY, SCHEDULED

from .conftest import KEYS, NOW, PDF, Sleeps, make_message, make_provider

pytestmark = pytest.mark.slow
PROVIDERS = ["postmark", "sendgrid", "mailgun", "resend"]
# Prism can force only answers a spec documents: Resend's spec has no 500 or 429, and only
# Mailgun's has a 429. Those cases run against the loopback server (test_behaviour.py).
DOCUMENT_500 = ["postmark", "sendgrid", "mailgun"]


def watch(provider):
    """Record every answer the provider's session gets, to check it for violations."""
    answers = []
    provider.http.session.hooks["response"].append(lambda r, *a, **k: answers.append(r))
    return answers


def assert_valid(answers):
    assert answers, "no request was made"
    for response in answers:
        assert "sl-violations" not in response.headers, (response.request.url,
                                                         response.headers["sl-violations"])
        assert "problem+json" not in response.headers.get("content-type", ""), (
            response.request.url, response.text)


@pytest.mark.parametrize("name", PROVIDERS)
def test_batch_with_attachment_and_preview_passes_the_spec(prism, name):
    provider = make_provider(name, prism(name))
    answers = watch(provider)
    messages = [make_message(1), make_message(2, attachments=[PDF]),
                make_message(3, delivery_id=None)]     # a preview: no delivery id
    results = provider.send(messages)
    assert_valid(answers)
    assert [r.outcome for r in results] == [ACCEPTED] * 3
    assert [r.delivery_id for r in results] == [1, 2, None]
    if name in ("sendgrid", "mailgun"):     # (Prism's 202 for SendGrid has no X-Message-Id)
        assert all(r.error is None for r in results)
    if name == "mailgun":
        assert [r.provider_message_id for r in results] == ["message-id"] * 3
    # Prism answers a batch with the spec's one-item example, not one item per message: the
    # module then records them accepted (a 200 means taken; resending could duplicate).
    sent = [r.request for r in answers]
    assert all(KEYS[name] not in str(r.url) for r in sent)
    if name == "postmark":
        assert [r.path_url for r in sent] == ["/email/batch"]      # one request for the batch
    if name == "resend":   # attachments go one by one; the rest in one batch
        assert sorted(r.path_url for r in sent) == ["/emails", "/emails/batch"]
    if name in ("sendgrid", "mailgun"):
        assert len(sent) == 3


@pytest.mark.parametrize("name", ["sendgrid", "mailgun", "resend"])
def test_scheduled_send_passes_the_spec(prism, name):
    provider = make_provider(name, prism(name))
    answers = watch(provider)
    results = provider.send([make_message(1, send_at=NOW + timedelta(minutes=30))])
    assert_valid(answers)
    assert results[0].outcome == SCHEDULED
    bodies = [r.request.body for r in answers]
    if name == "sendgrid":
        assert [r.request.path_url for r in answers] == ["/v3/mail/batch", "/v3/mail/send"]
        batch_id, _, _ = results[0].provider_message_id.partition(":")
        assert batch_id == answers[0].json()["batch_id"] and batch_id
        assert str(int((NOW + timedelta(minutes=30)).timestamp())).encode() in bodies[1]
    if name == "mailgun":
        assert b"Mon, 09 Mar 2026 17:30:00 GMT" in bodies[0]
    if name == "resend":
        assert b'"scheduled_at": "2026-03-09T17:30:00Z"' in bodies[0]


def test_sendgrid_cancel_passes_the_scheduled_sends_spec(prism):
    from sender.models import Delivery

    provider = make_provider("sendgrid", prism("sendgrid-scheduled"))
    answers = watch(provider)
    delivery = Delivery(1, 1, "course", "one", NOW, "sent", provider="sendgrid",
                        provider_message_id="batchABC:sg-1")
    assert provider.cancel_scheduled(delivery) is True
    assert_valid(answers)
    assert answers[0].request.body == b'{"batch_id": "batchABC", "status": "cancel"}'


def test_resend_cancel_passes_the_spec(prism):
    from sender.models import Delivery

    provider = make_provider("resend", prism("resend"))
    answers = watch(provider)
    delivery = Delivery(1, 1, "course", "one", NOW, "sent", provider="resend",
                        provider_message_id="re-123")
    assert provider.cancel_scheduled(delivery) is True
    assert_valid(answers)
    assert answers[0].request.path_url == "/emails/re-123/cancel"


def test_postmark_reconcile_searches_by_metadata(prism):
    from sender.models import Delivery

    provider = make_provider("postmark", prism("postmark"))
    answers = watch(provider)
    delivery = Delivery(42, 1, "course", "one", NOW, "sending")
    verdict, _ = provider.reconcile(delivery, "<course.one.u@example.com>")
    assert_valid(answers)
    assert verdict == RECONCILED_SENT      # Prism's example lists one message
    assert "metadata_delivery_id=42" in answers[0].request.path_url


@pytest.mark.parametrize("name", DOCUMENT_500)
def test_forced_500_is_retried_then_reported_for_later(prism, name):
    sleeps = Sleeps()
    provider = make_provider(name, prism(name), extra_headers={"Prefer": "code=500"}, sleep=sleeps)
    answers = watch(provider)
    results = provider.send([make_message(1)])
    assert [a.status_code for a in answers] == [500, 500, 500]      # two in-process retries
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 1.2           # exponential backoff
    assert results[0].outcome == RETRY and "HTTP 500" in results[0].error


def test_forced_429_mailgun_is_retried(prism):
    # Only Mailgun's spec documents a 429; the others are covered by the loopback server.
    sleeps = Sleeps()
    provider = make_provider("mailgun", prism("mailgun"), extra_headers={"Prefer": "code=429"},
                             sleep=sleeps)
    answers = watch(provider)
    results = provider.send([make_message(1)])
    assert [a.status_code for a in answers] == [429, 429, 429]
    assert results[0].outcome == RETRY
    assert "account-requests-per-sec limit exceeded" in results[0].error


@pytest.mark.parametrize("name", DOCUMENT_500)
def test_forced_500_through_dispatch_is_recorded_for_retry(prism, name, env, make_drip):
    from sender import dispatch, subscribers

    provider = make_provider(name, prism(name), extra_headers={"Prefer": "code=500"})
    drip = make_drip(env, provider=provider)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    report = dispatch.send_due(drip, now=NOW + timedelta(minutes=1))
    assert report.retried == 1 and report.sent == 0
    (row,) = [d for d in drip.store.deliveries(subscriber_id=1) if d.campaign == "welcome"]
    assert row.state == "scheduled" and row.attempts == 1 and row.provider == name
    assert "HTTP 500" in row.last_error
    assert row.due_at >= NOW + timedelta(minutes=1, seconds=48)     # backoff: a minute +-20%
