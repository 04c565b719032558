"""A real browser (headless Chromium via Selenium) signs up, confirms from the outbox
email, and the welcome email with the guide goes out."""

from __future__ import annotations

import pytest

from tests.chromium import needs_chromium, start_chromium, wait_for

pytestmark = needs_chromium


@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(tmp_path / "chrome")
    yield driver
    driver.quit()


def test_signup_confirm_and_welcome_in_a_browser(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server.url}/")
    browser.find_element(By.NAME, "email").send_keys("ana@example.com")
    browser.find_element(By.NAME, "name").send_keys("Ana")
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "Check your inbox" in browser.page_source, "the check-your-inbox page")

    [confirmation] = wait_for(lambda: server.emails_to("ana@example.com"), "the confirmation")
    subscriber = server.drip().store.get_subscriber(email="ana@example.com")
    assert subscriber.status == "pending" and subscriber.consent.source == "form:website"

    browser.get(server.link(confirmation, "confirm"))
    assert server.drip().store.get_subscriber(email="ana@example.com").status == "pending"
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: browser.find_elements(By.ID, "confirmed"), "the confirmed page")

    messages = wait_for(lambda: len(server.emails_to("ana@example.com")) == 2
                        and server.emails_to("ana@example.com"), "the welcome email")
    welcome = messages[1]
    assert welcome["Subject"] == "Welcome, Ana"
    assert "your guide" in welcome.get_body(("html",)).get_content()
    assert server.drip().store.get_subscriber(email="ana@example.com").status == "active"
