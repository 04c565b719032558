"""The archive in a real browser (headless Chromium via Selenium): the list and each page load
with their titles and no console error, every link on them leads somewhere that answers, and
nothing of any subscriber is in the DOM."""

from __future__ import annotations

import html

import pytest
import requests

from tests.chromium import needs_chromium, start_chromium, wait_for
from tests.web.archive_support import (
    EVERY_READER,
    FIRST,
    PERSONAL,
    SUBJECTS,
    personal_values,
    send_all,
)

pytestmark = needs_chromium

# Installed before any page script runs: every console error, uncaught error, failed resource
# and Content-Security-Policy violation is kept in window.__problems.
WATCH = """
window.__problems = [];
const keep = (what) => window.__problems.push(String(what));
const error = console.error.bind(console);
console.error = (...args) => { keep("console.error: " + args.join(" ")); error(...args); };
window.addEventListener("error", (e) => keep(e.message || ("failed to load " +
    (e.target && (e.target.src || e.target.href)))), true);
window.addEventListener("unhandledrejection", (e) => keep("unhandled: " + e.reason));
document.addEventListener("securitypolicyviolation", (e) =>
    keep("CSP blocked " + e.blockedURI + " (" + e.violatedDirective + ")"));
"""


@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(tmp_path / "chrome")
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    yield driver
    driver.quit()


def problems(browser):
    return browser.execute_script("return window.__problems")


def links_answer(browser, server):
    """Every link on the page, as the browser resolves it: ours answer 200 (following any
    redirect); the others are https addresses of the coach's own site."""
    hrefs = set(browser.execute_script(
        "return [...document.querySelectorAll('a[href]')].map((a) => a.href)"))   # resolved
    assert hrefs
    for href in hrefs:
        if href.startswith(server.url):
            assert requests.get(href, timeout=20).status_code == 200, href
        else:
            assert href.startswith("https://"), href
    return hrefs


def test_the_archive_in_a_browser(server, browser, project):
    from selenium.webdriver.common.by import By

    send_all(server.drip(), project)
    values = personal_values(server.drip())
    browser.get(f"{server.url}/archive")
    coach = server.settings.coach.name
    assert browser.title.endswith(f" · {coach}")
    feed = browser.find_element(By.CSS_SELECTOR, 'link[rel="alternate"]')
    assert feed.get_attribute("type") == "application/atom+xml"
    assert requests.get(feed.get_attribute("href"), timeout=20).status_code == 200
    items = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "main li a")]
    assert items == [SUBJECTS[PERSONAL], SUBJECTS[FIRST]]
    hrefs = links_answer(browser, server)
    assert f"{server.url}/archive/{PERSONAL}" in hrefs
    dom = browser.execute_script("return document.documentElement.outerHTML")
    assert not [v for v in values if v in dom]
    assert problems(browser) == []

    browser.find_element(By.LINK_TEXT, SUBJECTS[PERSONAL]).click()
    wait_for(lambda: browser.current_url == f"{server.url}/archive/{PERSONAL}", "the page")
    assert browser.title == f"{SUBJECTS[PERSONAL]} · {coach}"
    assert browser.find_element(By.TAG_NAME, "h1").text == SUBJECTS[PERSONAL]
    text = browser.find_element(By.TAG_NAME, "main").text
    assert EVERY_READER in text and "Hi there," in text and "Save a spot" in text
    button = browser.find_element(By.CSS_SELECTOR, "a.button")
    assert button.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    links_answer(browser, server)
    dom = browser.execute_script("return document.documentElement.outerHTML")
    assert not [v for v in values if v in dom]
    assert html.escape(SUBJECTS[PERSONAL], quote=False) in dom
    assert problems(browser) == []

    browser.find_element(By.CSS_SELECTOR, "a.back").click()
    wait_for(lambda: browser.current_url == f"{server.url}/archive", "back on the list")
    assert problems(browser) == []
