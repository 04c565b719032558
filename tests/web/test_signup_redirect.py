"""After a signup the form may send people back to a thank-you page on the coach's site,
but only to hosts on the allow-list and only over HTTPS: never an open redirect. The form
asks for stage and time zone; a failed signup shows a page with a way back."""

from __future__ import annotations

import re

import pytest
import requests

from sender.config import Settings
from sender.errors import ConfigError
from sender.safeurl import safe_redirect
from sender.subscribers import get

ALLOWED = frozenset({"coach.example", "www.coach.example"})
THANKS = "https://coach.example/thank-you"

REFUSED = [
    "https://evil.example/thank-you",
    "https://evil.example",
    "//evil.example",
    "//coach.example/thank-you",                 # no scheme: not https
    "/thank-you",                                # relative
    "https://coach.example@evil.example/",
    "https://coach.example:x@evil.example/",
    "https://user@coach.example/thank-you",      # userinfo of any kind
    "https://coach.example.evil.example/",
    "https://evilcoach.example/",
    "https://coach.example:8443/thank-you",      # another port
    "http://coach.example/thank-you",            # not https
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "javascript://coach.example/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://coach.example/",
    "https:\\\\evil.example",
    "https:/\\evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://coach.example\\@evil.example/",
    "https://evil.example\\.coach.example/",
    "https:evil.example",
    "https:///evil.example",
    "https://",
    "https%3A%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "https://coach.example%40evil.example/",
    "https://coach.example%2F@evil.example/",
    "https://evil.example%2F.coach.example/",
    "https://coach.example%2eevil.example/",
    "https://xn--coach-9ra.example/",           # a look-alike host
    " https://evil.example",
    "https://coach.example/\r\nSet-Cookie: a=b",
    "https://coach.example/\nx",
    "https://coa\tch.example/",
    "https://coach.example/ünï",                 # only plain ASCII
    "",
    "https://coach.example/" + "a" * 2100,       # absurdly long
]


@pytest.mark.parametrize("url", REFUSED)
def test_anything_off_the_list_is_refused(url):
    assert safe_redirect(url, ALLOWED) is None


@pytest.mark.parametrize("url", [THANKS, "https://www.coach.example/thanks?from=form#top",
                                 "https://COACH.example/thank-you", "https://coach.example",
                                 "https://coach.example:443/thank-you"])
def test_https_urls_on_listed_hosts_pass_unchanged(url):
    assert safe_redirect(url, ALLOWED) == url


def test_the_list_is_the_setting_plus_the_website_host(env):
    settings = Settings.from_env({**env, "DRIP_WEBSITE_URL": "https://Coach.Example/home",
                                  "DRIP_REDIRECT_HOSTS": "shop.example, www.coach.example"})
    assert settings.redirect_hosts == {"coach.example", "shop.example", "www.coach.example"}
    assert Settings.from_env(env).redirect_hosts == set()   # nothing is allowed by default


@pytest.mark.parametrize("overrides, name", [
    ({"DRIP_REDIRECT_HOSTS": "coach.example/thanks"}, "DRIP_REDIRECT_HOSTS"),
    ({"DRIP_REDIRECT_HOSTS": "*.example"}, "DRIP_REDIRECT_HOSTS"),
    ({"DRIP_SIGNUP_REDIRECT": "https://evil.example/thanks"}, "DRIP_SIGNUP_REDIRECT"),
    ({"DRIP_WEBSITE_URL": "https://coach.example",
      "DRIP_SIGNUP_REDIRECT": "http://coach.example/thanks"}, "DRIP_SIGNUP_REDIRECT"),
])
def test_bad_redirect_settings_are_named(env, overrides, name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**env, **overrides})


def signup(server, **data):
    form = {"email": "ana@example.com", "consent": "yes", **data}
    return requests.post(f"{server.url}/subscribe", data=form, timeout=10, allow_redirects=False)


@pytest.fixture
def coach_server(start_server):
    return start_server(DRIP_WEBSITE_URL="https://coach.example")


def test_a_signup_goes_back_to_the_thank_you_page(coach_server):
    server = coach_server
    response = signup(server, redirect=THANKS, stage="pregnant")
    assert response.status_code == 303
    assert response.headers["Location"] == THANKS
    ana = get(server.drip(), "ana@example.com")
    assert ana.status == "pending" and ana.fields == {"stage": "pregnant"}   # not the redirect
    [message] = server.emails_to("ana@example.com")
    assert message["Subject"] == "Please confirm"
    # A bot gets the same answer (and nothing is stored).
    bot = signup(server, email="victim@example.com", website="spam", redirect=THANKS)
    assert (bot.status_code, bot.headers["Location"]) == (303, THANKS)
    assert server.drip().store.get_subscriber(email="victim@example.com") is None
    # A JSON signup gets JSON, never a redirect.
    answer = requests.post(f"{server.url}/subscribe", timeout=10, allow_redirects=False,
                           json={"email": "bea@example.com", "consent": True, "redirect": THANKS})
    assert answer.status_code == 200 and answer.json()["ok"] is True


@pytest.mark.parametrize("url", REFUSED[:12] + REFUSED[12:24:3] + REFUSED[24::4])
def test_a_redirect_off_the_list_is_ignored(coach_server, url):
    response = signup(coach_server, redirect=url)
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Check your inbox" in response.text
    assert get(coach_server.drip(), "ana@example.com").fields == {}


def test_the_setting_sends_every_signup_back(start_server):
    server = start_server(DRIP_WEBSITE_URL="https://coach.example",
                          DRIP_REDIRECT_HOSTS="shop.example",
                          DRIP_SIGNUP_REDIRECT="https://coach.example/thanks")
    assert signup(server).headers["Location"] == "https://coach.example/thanks"
    other = signup(server, email="bea@example.com", redirect="https://shop.example/welcome")
    assert other.headers["Location"] == "https://shop.example/welcome"
    ignored = signup(server, email="cy@example.com", redirect="https://evil.example/")
    assert ignored.headers["Location"] == "https://coach.example/thanks"
    # /snippet fills in neither the setting (the server applies it) nor a hidden field.
    snippet = requests.get(f"{server.url}/snippet", timeout=10).text
    assert "name=&#34;redirect&#34;" not in snippet


def test_the_form_asks_for_stage_and_time_zone(server):
    page = requests.get(f"{server.url}/", timeout=10).text
    [stage] = re.findall(r'<select[^>]*name="stage"[^>]*>(.*?)</select>', page, re.S)
    assert re.findall(r'<option value="([^"]*)"', stage) == ["", "pregnant", "postpartum"]
    assert "Prefer not to say" in stage
    [zones] = re.findall(r'<select[^>]*name="timezone"[^>]*>(.*?)</select>', page, re.S)
    values = re.findall(r'<option value="([^"]*)"', zones)
    assert values[0] == "" and "America/New_York" in values and "Europe/London" in values
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in page   # the optional script

    # Without script the form posts what was chosen; "prefer not to say" stores nothing.
    assert signup(server, stage="postpartum", timezone="America/Chicago").status_code == 200
    assert signup(server, email="bea@example.com", stage="", timezone="").status_code == 200
    drip = server.drip()
    ana, bea = get(drip, "ana@example.com"), get(drip, "bea@example.com")
    assert (ana.fields, ana.timezone) == ({"stage": "postpartum"}, "America/Chicago")
    assert (bea.fields, bea.timezone) == ({}, None)


def _links(html):
    return re.findall(r'<a[^>]*href="([^"]+)"', html)


def test_a_failed_signup_shows_a_way_back(coach_server):
    server = coach_server
    bad_zone = signup(server, timezone="Mars/Olympus_Mons", redirect=THANKS)
    assert bad_zone.status_code == 400
    assert "time zone" in bad_zone.text
    assert f"{server.url}/" in _links(bad_zone.text) and "https://coach.example" in _links(bad_zone.text)
    bad_address = signup(server, email="not an address")
    assert bad_address.status_code == 400 and "valid email" in bad_address.text
    assert f"{server.url}/" in _links(bad_address.text)
    # From a page on her site, the way back is that page.
    page = "https://coach.example/free-guide"
    back = requests.post(f"{server.url}/subscribe", timeout=10, allow_redirects=False,
                         data={"email": "nope"}, headers={"Referer": page})
    assert page in _links(back.text)
    foreign = requests.post(f"{server.url}/subscribe", timeout=10, allow_redirects=False,
                            data={"email": "nope"}, headers={"Referer": "https://evil.example/"})
    assert "https://evil.example/" not in foreign.text
    assert server.drip().store.subscriber_counts() == {}


def test_too_many_signups_get_a_page_with_a_way_back(start_server):
    server = start_server(DRIP_SIGNUP_LIMIT_IP="1", DRIP_WEBSITE_URL="https://coach.example")
    assert signup(server).status_code == 200
    blocked = signup(server, email="bea@example.com", redirect=THANKS)
    assert blocked.status_code == 429
    assert "Location" not in blocked.headers
    assert f"{server.url}/" in _links(blocked.text) and "https://coach.example" in _links(blocked.text)
