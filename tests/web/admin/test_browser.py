"""The coach's dashboard in a real browser (headless Chromium through Selenium), at phone
and laptop width, with her brand: log in, search a subscriber, open her timeline, pause her,
see the pending emails move when she is resumed, add a subscriber with the consent she
stated, log out. Each step is checked in the store, and every page is photographed into the
test's tmp folder (``screenshots/``), kept with pytest's other artefacts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from PIL import Image

from sender.web.admin import auth
from tests.chromium import needs_chromium, start_chromium, wait_for
from tests.web.admin.conftest import PASSWORD, add_people
from tests.web.conftest import START

BRAND = {"DRIP_BRAND_COLOR": "#0a7b83", "DRIP_BRAND_ACCENT": "#c2185b",
         "DRIP_BRAND_FONT": "Trebuchet MS"}
BRAND_RGB = (0x0A, 0x7B, 0x83)

pytestmark = needs_chromium


@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(tmp_path / "chrome", "--hide-scrollbars",
                            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    yield driver
    driver.quit()


def brand_pixels(png):
    with Image.open(png) as opened:
        image = opened.convert("RGB")
    return sum(count for count, colour in image.getcolors(image.width * image.height)
               if colour == BRAND_RGB)


@pytest.mark.parametrize("width", [375, 1280])
def test_the_coach_works_her_list_in_a_browser(admin_server, browser, tmp_path, width):
    from selenium.webdriver.common.by import By

    server = admin_server(**BRAND, DRIP_ADMIN_SESSION_TIMEOUT="12h")
    store = server.store()
    people = add_people(server.admin_drip, ("ana.ruiz@example.com", "Ana Ruiz"),
                        ("bo@example.com", "Bo"), ("anabel@example.com", "Anabel"))
    ana = people["ana.ruiz@example.com"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    browser.set_window_size(width, 900)
    assert browser.execute_script("return window.innerWidth") == width
    find = browser.find_element

    def shoot(name, text):
        """Wait for ``text`` on the page, check it fits the width in her colours, photograph."""
        wait_for(lambda: text in browser.page_source, f"the {name} page ({text!r})")
        png = shots / f"{name}-{width}.png"
        browser.save_screenshot(str(png))
        scroll_width, border, heading = browser.execute_script(
            "return [document.documentElement.scrollWidth,"
            " getComputedStyle(document.body).borderTopColor,"
            " getComputedStyle(document.querySelector('h1')).color];")
        assert scroll_width <= width, f"the {name} page is {scroll_width} px wide at {width} px"
        assert border == "rgb(10, 123, 131)" and heading == "rgb(194, 24, 91)", (name, border)
        assert brand_pixels(png) >= 4 * width, f"{png.name}: too little of the brand colour"

    def due_on_page(step):
        row = find(By.CSS_SELECTOR, f'tr[data-step="course/{step}"]')
        return row.find_element(By.CLASS_NAME, "due-utc").text, row.get_attribute("data-state")

    def due_in_store(step):
        [row] = [d for d in store.deliveries(subscriber_id=ana.id) if d.step == step]
        return row.due_at.strftime("%Y-%m-%d %H:%M UTC")

    # Log in.
    browser.get(f"{server.url}/admin/")
    shoot("login", "Log in")
    find(By.ID, "name").send_keys("coach")
    find(By.ID, "password").send_keys(PASSWORD)
    find(By.ID, "login").click()
    shoot("overview", "Your list")
    assert find(By.ID, "all-well").is_displayed()
    assert "3" in find(By.CSS_SELECTOR, 'a.card[href$="status:active"]').text
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")) == 4 * 30

    # Search for her and open her timeline.
    find(By.LINK_TEXT, "Subscribers").click()
    shoot("subscribers", "Name or address contains")
    find(By.ID, "q").send_keys("ruiz")
    find(By.ID, "search").click()
    wait_for(lambda: "q=ruiz" in browser.current_url, "the search")
    rows = find(By.ID, "people").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["ana.ruiz@example.com"]
    shoot("search", "ana.ruiz@example.com")
    find(By.LINK_TEXT, "ana.ruiz@example.com").click()
    shoot("timeline", "Her emails")
    before = {step: due_on_page(step) for step in ("one", "two")}
    assert before == {step: (due_in_store(step), "scheduled") for step in ("one", "two")}
    assert find(By.CSS_SELECTOR, 'tr[data-step="welcome/hello"]').get_attribute(
        "data-state") == "scheduled"

    # Pause her: a confirmation first, then her emails are held.
    find(By.ID, "pause").click()
    shoot("confirm-pause", "Pause ana.ruiz@example.com?")
    assert store.get_subscriber(id=ana.id).status == "active"
    find(By.ID, "confirm").click()
    shoot("paused", "Paused. Her pending emails are held")
    assert find(By.ID, "status").text == "paused"
    assert store.get_subscriber(id=ana.id).status == "paused"
    held = [w.text for w in browser.find_elements(By.CSS_SELECTOR, "tr[data-state=scheduled] .why")]
    assert held and all(w.startswith("held while she is paused") for w in held)

    # Six hours later she is resumed, and her pending emails move later.
    server.clock.now = START + timedelta(hours=6)
    find(By.ID, "resume").click()
    shoot("confirm-resume", "Resume ana.ruiz@example.com?")
    find(By.ID, "confirm").click()
    shoot("resumed", "Resumed. Her pending emails moved later")
    after = {step: due_on_page(step) for step in ("one", "two")}
    assert after == {step: (due_in_store(step), "scheduled") for step in ("one", "two")}
    for step in ("one", "two"):
        assert after[step][0] > before[step][0], (step, before[step], after[step])
    assert store.get_subscriber(id=ana.id).status == "active"

    # Add a subscriber by hand, with the consent she stated.
    find(By.LINK_TEXT, "Add").click()
    shoot("add", "Add a subscriber")
    find(By.ID, "email").send_keys(f"cy{width}@example.com")
    find(By.ID, "name").send_keys("Cy Lee")
    find(By.ID, "timezone").send_keys("Europe/Madrid")
    find(By.ID, "tags").send_keys("postpartum, class")
    find(By.ID, "fields").send_keys("stage=postpartum")
    find(By.ID, "consent").send_keys("Asked me in person after class")
    find(By.ID, "confirmed-yes").click()
    find(By.ID, "add").click()
    shoot("added", "Added and confirmed")
    added = store.get_subscriber(email=f"cy{width}@example.com")
    assert (added.name, added.status, added.timezone, added.tags, added.fields) == (
        "Cy Lee", "active", "Europe/Madrid", ["postpartum", "class"], {"stage": "postpartum"})
    assert added.consent.source == "Asked me in person after class"
    assert find(By.ID, "consent-source").text == "Asked me in person after class"
    actions = [(e["user"], e["action"], e["subscriber_id"]) for e in store.audit_log(limit=50)]
    for entry in (("coach", "add subscriber", added.id), ("coach", "pause", ana.id),
                  ("coach", "resume", ana.id), ("coach", "login", None)):
        assert entry in actions

    # Log out: the session is gone, and the dashboard asks for the password again.
    token = browser.get_cookie("drip_admin")["value"]
    assert store.admin_session(auth.token_hash(token)) is not None
    find(By.ID, "logout").click()
    shoot("logged-out", "Log in")
    assert store.admin_session(auth.token_hash(token)) is None
    assert browser.get_cookie("drip_admin") is None
    browser.get(f"{server.url}/admin/subscribers/{ana.id}")
    wait_for(lambda: browser.current_url.endswith("/admin/login"), "the login page")
    assert "ana.ruiz@example.com" not in browser.page_source
    assert sorted(p.name for p in shots.iterdir()) == sorted(
        f"{n}-{width}.png" for n in ("login", "overview", "subscribers", "search", "timeline",
                                     "confirm-pause", "paused", "confirm-resume", "resumed", "add", "added",
                                     "logged-out"))
