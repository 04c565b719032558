"""The dashboard's tests share a server with a password set (``admin_server``) and logging
in over HTTP the way a browser does (the login form's token from the page, and its cookie)."""

from __future__ import annotations

import re

import pytest
import requests

from sender import subscribers
from sender.web.admin import auth
from tests.web.conftest import START

PASSWORD = "correct horse battery staple"


def token_in(page):
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, f"no CSRF field in:\n{page[:2000]}"
    return match.group(1)


def login(server, *, name="coach", password=PASSWORD, session=None):
    """(requests.Session, the answer to the login POST)."""
    session = session or requests.Session()
    form = session.get(f"{server.url}/admin/login", timeout=10)
    answer = session.post(f"{server.url}/admin/login", allow_redirects=False, timeout=10,
                          data={"csrf": token_in(form.text), "name": name, "password": password})
    return session, answer


def logged_in(server):
    session, answer = login(server)
    assert answer.status_code == 303, answer.text
    return session


@pytest.fixture
def admin_server(start_server, make_drip):
    """admin_server(**settings) -> a running Server whose dashboard has the password
    PASSWORD for "coach", with ``server.store()`` a store on its database."""

    def start(**overrides):
        server = start_server(**overrides)
        drip = make_drip(server.env)
        auth.set_password(drip.store, "coach", PASSWORD, now=START)
        server.store = lambda: drip.store
        server.admin_drip = drip
        return server

    return start


def add_people(drip, *people, now=START):
    """Active subscribers (enrolled, with their emails scheduled): {email: subscriber}."""
    made = {}
    for email, name in people:
        made[email] = subscribers.add_subscriber(drip, email, now=now, name=name,
                                                 confirmed=True, consent_source="test").subscriber
    return made
