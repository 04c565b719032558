"""The brake fed by real webhooks: Postmark spam complaints posted to the running app pause
the campaign, and the app's own sends of that campaign wait while others go on."""

from __future__ import annotations

from datetime import timedelta

from sender import dispatch, subscribers

from .test_events import postmark


def complaint(delivery, email, n):
    return {"RecordType": "SpamComplaint", "ID": 9000 + n, "Type": "SpamComplaint",
            "TypeCode": 512, "MessageID": f"pm-{n}", "Email": email,
            "BouncedAt": "2026-03-09T18:30:00Z", "MessageStream": "outbound",
            "Metadata": {"delivery_id": str(delivery.id), "campaign": "welcome"}}


def test_complaint_webhooks_pause_the_campaign(start_server):
    server = start_server(DRIP_BRAKE_COMPLAINT_RATE="20%", DRIP_BRAKE_MIN_EVENTS="2")
    drip = server.drip()
    sent = []
    for n in range(10):
        person = subscribers.add_subscriber(drip, f"p{n}@example.com", now=server.clock.now,
                                            confirmed=True).subscriber
        dispatch.send_due(drip, now=server.clock.now, subscriber_id=person.id)
        [delivery] = drip.store.deliveries(subscriber_id=person.id, states=("sent",))
        sent.append((delivery, person.email))
    server.clock.now += timedelta(minutes=30)
    answers = [postmark(server, complaint(d, email, n)).json() for n, (d, email) in enumerate(sent[:2])]
    assert answers[0]["braked"] == [] and answers[1]["braked"] == ["welcome"]
    [held] = server.drip().store.campaign_brakes()
    assert held["campaign"] == "welcome" and held["details"]["complained"] == 2
    # A newcomer confirms: the welcome campaign is paused, so her welcome email waits; the
    # app sends nothing of it.
    newcomer = subscribers.add_subscriber(drip, "new@example.com", now=server.clock.now,
                                          confirmed=True).subscriber
    report = dispatch.send_due(drip, now=server.clock.now, subscriber_id=newcomer.id)
    assert report.sent == 0
    assert {d.state for d in drip.store.deliveries(subscriber_id=newcomer.id,
                                                   campaign="welcome")} == {"scheduled"}
