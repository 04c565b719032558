"""The coach's brand on her pages: colours, logo and font from settings (checked so they
cannot inject CSS or markup), overrides from templates/web/, and the pages in headless
Chromium at phone and desktop width with the brand colour really on screen."""

from __future__ import annotations

import logging
import os

import pytest
import requests
from PIL import Image

from sender.config import Brand, Settings
from sender.errors import ConfigError, InvalidInput
from tests.chromium import needs_chromium, start_chromium, wait_for

BRAND = {"DRIP_BRAND_COLOR": "#0a7b83", "DRIP_BRAND_ACCENT": "#c2185b",
         "DRIP_BRAND_FONT": "Trebuchet MS"}
BRAND_RGB = (0x0A, 0x7B, 0x83)
ACCENT_CSS = "rgb(194, 24, 91)"
EMAIL_COLOURS = ("#8a4a36", "#f5efe9", "#2e2a27")   # templates/emails/_layout.html

@pytest.mark.parametrize("name, value", [
    ("DRIP_BRAND_COLOR", "red"),
    ("DRIP_BRAND_COLOR", "#12345g"),
    ("DRIP_BRAND_COLOR", "#abcd"),
    ("DRIP_BRAND_COLOR", "#fff;} body{display:none"),
    ("DRIP_BRAND_COLOR", "#fff</style><script>alert(1)</script>"),
    ("DRIP_BRAND_ACCENT", "rgb(1,2,3)"),
    ("DRIP_BRAND_ACCENT", "#fff\n"),
    ("DRIP_BRAND_FONT", 'Lato"; } * { display: none'),
    ("DRIP_BRAND_FONT", "Lato</style>"),
    ("DRIP_BRAND_FONT", "Lato, Comic Sans"),
    ("DRIP_BRAND_FONT", "x" * 81),
    ("DRIP_BRAND_LOGO_URL", "http://coach.example/logo.png"),
    ("DRIP_BRAND_LOGO_URL", "javascript:alert(1)"),
    ("DRIP_BRAND_LOGO_URL", "//coach.example/logo.png"),
    ("DRIP_BRAND_LOGO_URL", 'https://coach.example/a.png" onerror="alert(1)'),
    ("DRIP_BRAND_LOGO_URL", "https://coach.example/a.png)"),
    ("DRIP_BRAND_LOGO_URL", "https://coach.example/a b.png"),
])
def test_brand_settings_that_could_inject_are_refused_by_name(env, name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**env, name: value})


def test_the_brand_is_one_object_with_the_emails_look_by_default(env):
    default = Settings.from_env(env).brand
    assert (default.color, default.logo_url) == ("#8a4a36", "")
    assert default.font_stack == "Helvetica, Arial, sans-serif"
    brand = Settings.from_env({**env, **BRAND, "DRIP_BRAND_COLOR": "#0A7B83",
                               "DRIP_BRAND_LOGO_URL": "https://coach.example/logo.png"}).brand
    assert brand == Brand(color="#0a7b83", accent="#c2185b", font="Trebuchet MS",
                          logo_url="https://coach.example/logo.png")
    assert brand.font_stack == '"Trebuchet MS", Helvetica, Arial, sans-serif'
    assert brand.on_color == "#ffffff"                        # white text on a dark colour
    assert Brand(color="#ffe066", accent="#c2185b").on_color == "#1f1a17"   # dark on a light one
    with pytest.raises(InvalidInput):
        Brand(color="#fff;}", accent="#c2185b")


def test_pages_carry_the_brand_and_look_like_the_emails(start_server):
    plain = start_server()
    page = requests.get(f"{plain.url}/", timeout=10).text
    for colour in EMAIL_COLOURS:
        assert colour in page
    assert "Helvetica, Arial, sans-serif" in page

    server = start_server(**BRAND, DRIP_BRAND_LOGO_URL="https://coach.example/logo.png?v=2&x=1")
    page = requests.get(f"{server.url}/", timeout=10).text
    assert "--brand: #0a7b83" in page and "--accent: #c2185b" in page
    assert 'font-family: "Trebuchet MS", Helvetica, Arial, sans-serif' in page   # not escaped
    assert '<img src="https://coach.example/logo.png?v=2&amp;x=1" alt="Coach Example"' in page
    for path in ("/", "/snippet", "/nowhere", "/confirm/not-a-token", "/unsubscribe/bad"):
        assert "--brand: #0a7b83" in requests.get(f"{server.url}{path}", timeout=10).text, path


def test_templates_web_overrides_the_built_in_page_of_the_same_name(start_server, project):
    web = project / "templates" / "web"
    web.mkdir()
    (web / "signup.html").write_text(
        '{% extends "base.html" %}{% block title %}Join{% endblock %}{% block main %}'
        '<h1 id="hers">Join my list, {{ coach.name }}</h1>{% include "snippet.html" %}'
        '{% endblock %}')
    server = start_server(**BRAND)
    page = requests.get(f"{server.url}/", timeout=10).text
    assert '<h1 id="hers">Join my list, Coach Example</h1>' in page
    assert 'name="consent"' in page and "--brand: #0a7b83" in page   # her page, the built-in parts
    assert 'id="hers"' not in requests.get(f"{server.url}/snippet", timeout=10).text
    # An edit shows at the next request, without a restart.
    edit(web / "signup.html", '{% extends "builtin/signup.html" %}'
                              '{% block title %}Hers too{% endblock %}')
    page = requests.get(f"{server.url}/", timeout=10).text
    assert "<title>Hers too" in page and "Get the free guide" in page


def edit(path, text):
    """Write ``path`` as an edit made a little later would (Jinja notices a new mtime)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_a_broken_override_shows_the_built_in_page_and_says_where(start_server, project, caplog):
    web = project / "templates" / "web"
    web.mkdir()
    (web / "signup.html").write_text('{% extends "base.html" %}\n{% block main %}\n'
                                     '{{ no_such_thing }}{% endblock %}')
    logger = logging.getLogger("drip.web")
    logger.addHandler(caplog.handler)        # `drip` may not propagate after a CLI test
    try:
        server = start_server()
        page = requests.get(f"{server.url}/", timeout=10)
        assert page.status_code == 200 and "Get the free guide" in page.text
        assert "signup.html, line 3" in caplog.text and "no_such_thing" in caplog.text
        edit(web / "signup.html", "{% block main %}{% if %}{% endblock %}")
        page = requests.get(f"{server.url}/", timeout=10)
        assert page.status_code == 200 and "Get the free guide" in page.text
        assert "signup.html, line 1" in caplog.text
    finally:
        logger.removeHandler(caplog.handler)


# --- in a real browser -------------------------------------------------------------------
@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(tmp_path / "chrome", "--hide-scrollbars",
                            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                            env={"TZ": "America/Chicago", "PATH": "/usr/bin:/bin"})
    yield driver
    driver.quit()


def _brand_pixels(png):
    with Image.open(png) as opened:
        image = opened.convert("RGB")
    return sum(count for count, colour in image.getcolors(image.width * image.height)
               if colour == BRAND_RGB)


@needs_chromium
@pytest.mark.parametrize("width", [375, 1280])
def test_the_pages_in_a_browser_show_her_brand(start_server, browser, tmp_path, width):
    from selenium.webdriver.common.by import By

    server = start_server(**BRAND)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    browser.set_window_size(width, 900)
    assert browser.execute_script("return window.innerWidth") == width

    def shoot(name, wait_text):
        wait_for(lambda: wait_text in browser.page_source, f"the {name} page")
        png = shots / f"{name}-{width}.png"
        browser.save_screenshot(str(png))
        with Image.open(png) as image:
            assert image.width == width
        styles = browser.execute_script(
            "const h1 = document.querySelector('h1');"
            "return [getComputedStyle(document.body).borderTopColor, getComputedStyle(h1).color,"
            " getComputedStyle(document.body).fontFamily,"
            " document.documentElement.scrollWidth];")
        assert styles[0] == "rgb(10, 123, 131)" and styles[1] == ACCENT_CSS, (name, styles)
        assert styles[2].startswith(('"Trebuchet MS"', "Trebuchet MS")), styles[2]
        assert styles[3] <= width, f"the {name} page is {styles[3]} px wide in a {width} px window"
        pixels = _brand_pixels(png)
        assert pixels >= 4 * width, f"{png.name}: only {pixels} pixels in the brand colour"
        return png

    address = f"ana{width}@example.com"
    browser.get(f"{server.url}/")
    shoot("signup", "Get the free guide")
    button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
    assert button.value_of_css_property("background-color") in ("rgb(10, 123, 131)",
                                                                 "rgba(10, 123, 131, 1)")
    zone = browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert zone == "America/Chicago"
    assert browser.find_element(By.NAME, "timezone").get_attribute("value") == zone  # the script
    browser.find_element(By.NAME, "email").send_keys(address)
    browser.find_element(By.NAME, "consent").click()
    button.click()
    shoot("check-inbox", "Check your inbox")
    subscriber = server.drip().store.get_subscriber(email=address)
    assert subscriber.timezone == "America/Chicago"

    [confirmation] = wait_for(lambda: server.emails_to(address), "the confirmation email")
    browser.get(server.link(confirmation, "confirm"))
    browser.find_element(By.ID, "confirm").click()
    shoot("confirmed", "You are in")
    assert server.drip().store.get_subscriber(email=address).status == "active"

    browser.get(f"{server.url}/confirm/not-a-token")
    shoot("error", "This link does not work")
    browser.get(f"{server.url}/snippet")       # a long <pre> scrolls inside the page
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    assert sorted(p.name for p in shots.iterdir()) == [
        f"{n}-{width}.png" for n in ("check-inbox", "confirmed", "error", "signup")]
