"""The confirm and unsubscribe links: pages with a button, POSTs that act, bad tokens."""

from __future__ import annotations

from datetime import timedelta

import requests

from sender import dispatch, subscribers
from sender.subscribers import get


def pending(server, email="ana@example.com"):
    response = requests.post(f"{server.url}/subscribe", timeout=10,
                             data={"email": email, "consent": "yes", "name": "Ana"})
    assert response.status_code == 200
    [message] = server.emails_to(email)
    return server.link(message, "confirm")


def active_with_mail(server, email="ana@example.com"):
    """An active subscriber who has been sent the welcome email; returns the unsubscribe URL."""
    link = pending(server, email)
    assert requests.post(link, timeout=10).status_code == 200
    welcome = [m for m in server.emails_to(email) if m["Subject"].startswith("Welcome")]
    assert welcome, "the welcome email was not sent"
    return welcome[0]["List-Unsubscribe"].strip("<>")


def test_get_shows_a_button_and_post_confirms_and_sends_the_welcome(server):
    link = pending(server)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert get(server.drip(), "ana@example.com").status == "pending"
    done = requests.post(link, timeout=10, allow_redirects=False)
    assert done.status_code == 200
    assert "welcome email" in done.text
    drip = server.drip()
    ana = get(drip, "ana@example.com")
    assert ana.status == "active"
    assert ana.consent.confirmed_at == server.clock.now
    subjects = [m["Subject"] for m in server.emails_to("ana@example.com")]
    assert subjects == ["Please confirm", "Welcome, Ana"]
    states = {(d.campaign, d.step): d.state for d in drip.store.deliveries(subscriber_id=ana.id)}
    assert states[("welcome", "hello")] == "sent"
    assert states[("course", "one")] == "scheduled"
    # Confirming again changes and sends nothing.
    assert requests.post(link, timeout=10).status_code == 200
    assert len(server.emails_to("ana@example.com")) == 2


def test_forged_altered_and_expired_confirm_tokens_change_nothing(server):
    link = pending(server)
    token = link.rsplit("/", 1)[1]
    altered = f"{server.url}/confirm/{token[:-2]}{'AB' if token[-2:] != 'AB' else 'CD'}"
    forged = f"{server.url}/confirm/ImFiY2RlZiI.aGVsbG8.c2lnbmF0dXJl"
    for url in (altered, forged):
        for method in (requests.get, requests.post):
            response = method(url, timeout=10)
            assert response.status_code == 400
            assert "not valid" in response.text
    server.clock.now += timedelta(days=400)   # far past the 7-day confirm window
    expired = requests.post(link, timeout=10)
    assert expired.status_code == 400
    assert "expired" in expired.text
    assert get(server.drip(), "ana@example.com").status == "pending"
    assert len(server.emails_to("ana@example.com")) == 1


def test_one_click_post_form_encoded_unsubscribes_at_once(server):
    url = active_with_mail(server)
    response = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10,
                             allow_redirects=False)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    drip = server.drip()
    ana = get(drip, "ana@example.com")
    assert ana.status == "unsubscribed"
    assert ana.consent.withdrawn_at == server.clock.now
    states = {d.step: d.state for d in drip.store.deliveries(subscriber_id=ana.id)}
    assert states["one"] == states["two"] == "cancelled"
    [event] = drip.store.events(subscriber_id=ana.id)
    assert event["type"] == "unsubscribed" and event["provider"] == "drip"
    assert drip.store.get_delivery(event["delivery_id"]).step == "hello"
    # Nothing more goes out, even when the course emails fall due.
    report = dispatch.send_due(drip, now=server.clock.now + timedelta(days=30))
    assert report.sent == 0


def test_one_click_post_multipart_works(server):
    url = active_with_mail(server)
    response = requests.post(url, files={"List-Unsubscribe": (None, "One-Click")}, timeout=10,
                             allow_redirects=False)
    assert response.status_code == 200
    assert get(server.drip(), "ana@example.com").status == "unsubscribed"


def test_get_and_bad_posts_do_not_unsubscribe(server):
    url = active_with_mail(server)
    page = requests.get(url, timeout=10, allow_redirects=False)
    assert page.status_code == 200
    assert 'value="One-Click"' in page.text
    assert requests.head(url, timeout=10).status_code == 200
    assert requests.post(url, timeout=10).status_code == 400
    assert requests.post(url, data={"List-Unsubscribe": "Other"}, timeout=10).status_code == 400
    token = url.rsplit("/", 1)[1]
    forged = f"{server.url}/unsubscribe/{token[:-3]}xyz"
    assert requests.post(forged, data={"List-Unsubscribe": "One-Click"},
                         timeout=10).status_code == 400
    drip = server.drip()
    assert get(drip, "ana@example.com").status == "active"
    assert drip.store.events() == []


def test_unsubscribe_links_keep_working_long_after(server):
    url = active_with_mail(server)
    server.clock.now += timedelta(days=365)
    response = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert response.status_code == 200
    assert get(server.drip(), "ana@example.com").status == "unsubscribed"


def test_confirm_after_unsubscribe_does_not_resubscribe(server):
    link = pending(server)
    drip = server.drip()
    subscribers.unsubscribe(drip, get(drip, "ana@example.com"), now=server.clock.now)
    response = requests.post(link, timeout=10)
    assert response.status_code == 200
    assert get(server.drip(), "ana@example.com").status == "unsubscribed"
    assert len(server.emails_to("ana@example.com")) == 1


def test_shipped_campaigns_send_the_guide_at_once_on_confirm(start_server, shipped):
    server = start_server(root=shipped)
    server.clock.now = server.clock.now.replace(day=14)   # a Saturday: the welcome has no window
    link = pending(server, "zoe@example.com")
    assert requests.post(link, timeout=10).status_code == 200
    [_, welcome] = server.emails_to("zoe@example.com")
    assert welcome["Subject"] == "Your pelvic floor guide is here"
    text = welcome.get_body(("plain",)).get_content()
    assert "guide" in text.lower()
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
