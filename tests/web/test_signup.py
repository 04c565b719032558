"""POST /subscribe over HTTP: what is stored, what is sent, and what is refused."""

from __future__ import annotations

import requests

from sender.subscribers import get

FORM = {"email": "Ana@Example.com", "name": "Ana Lima", "consent": "yes",
        "source": "homepage", "stage": "postpartum"}


def signup(server, data=None, **kwargs):
    return requests.post(f"{server.url}/subscribe", data=data, timeout=10, **kwargs)


def test_form_signup_stores_consent_and_sends_the_confirmation_at_once(server):
    response = signup(server, FORM, allow_redirects=False)
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    ana = get(server.drip(), "ana@example.com")
    assert ana.status == "pending"
    assert ana.name == "Ana Lima"
    assert ana.fields == {"stage": "postpartum"}
    assert ana.consent.source == "form:homepage"
    assert ana.consent.at == server.clock.now
    assert ana.consent.ip == "127.0.0.1"
    assert ana.consent.text.startswith("[v1] Yes, send me the free guide")
    [message] = server.emails_to("ana@example.com")
    assert message["Subject"] == "Please confirm"
    assert server.link(message, "confirm").startswith(f"{server.url}/confirm/")
    [delivery] = server.drip().store.deliveries(subscriber_id=ana.id)
    assert delivery.state == "sent" and delivery.campaign == "confirmation"


def test_json_and_multipart_bodies_work_too(server):
    response = requests.post(f"{server.url}/subscribe", timeout=10,
                             json={"email": "bea@example.com", "consent": True, "weeks": 6})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    response = signup(server, files={k: (None, v) for k, v in
                                     {"email": "cy@example.com", "consent": "on"}.items()})
    assert response.status_code == 200
    drip = server.drip()
    assert get(drip, "bea@example.com").fields == {"weeks": "6"}
    assert get(drip, "cy@example.com").status == "pending"
    assert len(server.emails()) == 2


def test_consent_must_be_ticked_and_the_address_valid(server):
    response = signup(server, {"email": "dee@example.com"})
    assert response.status_code == 400
    assert "tick the box" in response.text
    response = signup(server, {"email": "not an address", "consent": "yes"})
    assert response.status_code == 400
    assert "valid email" in response.text
    response = requests.post(f"{server.url}/subscribe", json=["x"], timeout=10)
    assert response.status_code == 400
    response = signup(server, {"email": "eve@example.com", "consent": "yes",
                               **{f"f{i}": "x" for i in range(11)}})
    assert response.status_code == 400
    response = signup(server, {"email": "eve@example.com", "consent": "yes", "bad name": "x"})
    assert response.status_code == 400
    assert server.drip().store.subscriber_counts() == {}
    assert server.emails() == []


def test_a_filled_honeypot_gets_the_same_answer_and_stores_nothing(server):
    human = signup(server, {"email": "fay@example.com", "consent": "yes"})
    bot = signup(server, {"email": "victim@example.com", "consent": "yes",
                          "website": "http://spam.example"})
    assert bot.status_code == human.status_code == 200
    assert bot.text == human.text
    drip = server.drip()
    assert drip.store.get_subscriber(email="victim@example.com") is None
    assert server.emails_to("victim@example.com") == []


def test_repeated_signup_sends_one_confirmation_and_reveals_nothing(server):
    first = signup(server, {"email": "gil@example.com", "consent": "yes"})
    again = signup(server, {"email": "gil@example.com", "consent": "yes"})
    assert first.text == again.text
    assert len(server.emails_to("gil@example.com")) == 1
    drip = server.drip()
    from sender import subscribers
    subscribers.add_subscriber(drip, "hal@example.com", now=server.clock.now, name="Hal",
                               confirmed=True, consent_source="import")
    known = signup(server, {"email": "hal@example.com", "consent": "yes", "name": "Mallory"})
    assert known.status_code == 200 and known.text == first.text
    hal = get(server.drip(), "hal@example.com")
    assert hal.name == "Hal" and hal.status == "active"


def test_per_address_limit_is_quiet_and_per_ip_limit_answers_429(start_server):
    server = start_server(DRIP_SIGNUP_LIMIT_IP="4", DRIP_SIGNUP_LIMIT_ADDRESS="2")
    answers = [signup(server, {"email": "ivy@example.com", "consent": "yes"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[2].text == answers[0].text
    assert server.drip().store.rate_limit("email:ivy@example.com", now=server.clock.now,
                                          window_seconds=3600, limit=2) is False
    assert signup(server, {"email": "jo@example.com", "consent": "yes"}).status_code == 200
    blocked = signup(server, {"email": "kim@example.com", "consent": "yes"})
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "3600"
    assert server.drip().store.get_subscriber(email="kim@example.com") is None
    # An hour later the network may sign up again.
    from datetime import timedelta
    server.clock.now += timedelta(hours=1, seconds=1)
    assert signup(server, {"email": "kim@example.com", "consent": "yes"}).status_code == 200
    assert server.drip().store.get_subscriber(email="kim@example.com") is not None
    assert len(server.emails_to("ivy@example.com")) == 1


def test_oversized_and_bad_bodies(server):
    big = signup(server, {"email": "lee@example.com", "consent": "yes", "note": "x" * 70_000})
    assert big.status_code == 413
    big_json = requests.post(f"{server.url}/subscribe", timeout=10,
                             data=b'{"email": "' + b"x" * 70_000 + b'"}',
                             headers={"Content-Type": "application/json"})
    assert big_json.status_code == 413
    broken = requests.post(f"{server.url}/subscribe", data=b"{not json", timeout=10,
                           headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert server.drip().store.subscriber_counts() == {}


def test_the_form_and_snippet_pages(server):
    page = requests.get(f"{server.url}/", timeout=10)
    assert page.status_code == 200
    assert f'action="{server.url}/subscribe"' in page.text
    assert 'name="website"' in page.text and 'name="consent"' in page.text
    snippet = requests.get(f"{server.url}/snippet", timeout=10)
    assert "&lt;form method=&#34;post&#34;" in snippet.text or "&lt;form method" in snippet.text
    assert requests.get(f"{server.url}/nowhere", timeout=10).status_code == 404


def test_an_erased_address_may_sign_up_again_on_the_form(server):
    from sender import erasure

    assert signup(server, {"email": "max@example.com", "consent": "yes"}).status_code == 200
    erasure.erase(server.drip(), "max@example.com", now=server.clock.now)
    assert server.drip().store.get_subscriber(email="max@example.com") is None
    assert signup(server, {"email": "max@example.com", "consent": "yes"}).status_code == 200
    again = get(server.drip(), "max@example.com")
    assert again.status == "pending" and again.consent.source == "form:signup-form"
