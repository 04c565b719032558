"""The dashboard's "add a subscriber" form checks the stage fields by the rules every way in
shares (``sender/joining.py``): a bad value answers 400 naming the field, stores nothing."""

from __future__ import annotations

from tests.web.admin.conftest import logged_in, token_in


def test_the_dashboard_refuses_a_bad_stage_or_date_naming_the_field(admin_server):
    server = admin_server()
    store = server.store()
    session = logged_in(server)
    token = token_in(session.get(f"{server.url}/admin/subscribers/new", timeout=10).text)
    good = {"csrf": token, "email": "cy@example.com", "name": "Cy", "consent": "asked in class",
            "confirmed": "no", "timezone": "", "tags": ""}
    for fields, words in (("stage=expecting", "pregnant or postpartum"),
                          ("due_date=2026/06/01", "YYYY-MM-DD"),
                          ("birth_date=2027-01-01", "in the future")):
        answer = session.post(f"{server.url}/admin/subscribers/new", allow_redirects=False,
                              timeout=10, data={**good, "fields": fields})
        assert answer.status_code == 400 and words in answer.text, (fields, answer.text[-600:])
        assert fields.split("=")[0] in answer.text
    assert list(store.list_subscribers()) == []
    answer = session.post(f"{server.url}/admin/subscribers/new", allow_redirects=False, timeout=10,
                          data={**good, "fields": "stage=pregnant\ndue_date=2026-08-01"})
    assert answer.status_code == 303
    assert store.get_subscriber(email="cy@example.com").fields == {"stage": "pregnant",
                                                                   "due_date": "2026-08-01"}
