"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver (installed by
scripts/install-test-tools.sh), started without any network access but loopback, and a
deadline-bounded poll for what a page does."""

from __future__ import annotations

import shutil
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
needs_chromium = pytest.mark.skipif(
    not CHROMIUM or not shutil.which(CHROMEDRIVER),
    reason="headless Chromium and chromedriver are not installed (bash scripts/install-test-tools.sh "
           "installs the Debian packages chromium and chromium-driver)")
# No background traffic: this machine's network is loopback only.
QUIET = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run")


def start_chromium(profile, *flags, env=None):
    """A selenium driver for a fresh headless Chromium with its profile in ``profile``."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*QUIET, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(CHROMEDRIVER, env=env) if env else Service(CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


def wait_for(check, what, timeout=20):
    """Poll ``check()`` until it is true, up to a deadline; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
