"""Headless Debian Chromium driven by Selenium against the app served on a real port."""
from __future__ import annotations

import shutil
import tempfile

import pytest

from sandbox.server import ServerThread


@pytest.fixture
def live_server(app):
    with ServerThread(app) as server:
        yield server


@pytest.fixture
def browser(chromium_paths):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths
    profile = tempfile.mkdtemp(prefix="pw-chromium-")  # ~3 MB a test: removed after it, not left in /tmp
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", "--disable-quic", "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages: CSP violations
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(driver, condition, timeout: float = 10):
    """Poll `condition(driver)` until it is truthy.

    htmx may replace an element between the moment a condition finds it and the moment it
    reads it (StaleElementReferenceException): that counts as "not yet", and the next poll
    finds the element afresh. So a condition must find what it reads itself, every time.
    """
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def text_of(driver, element_id: str) -> str | None:
    """An element's text read in one script (no element handle that a swap could make stale)."""
    return driver.execute_script("const e = document.getElementById(arguments[0]); return e && e.textContent.trim()",
                                 element_id)


def text_at(driver, css: str) -> str | None:
    """The text of the first element matching `css`, read in one script."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e && e.textContent.trim()",
                                 css)


def csp_violations(driver) -> list[str]:
    """What the browser console reported as blocked by the Content-Security-Policy since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def log_in(browser, live_server, user) -> None:
    """Log in through the form and wait for the dashboard."""
    from selenium.webdriver.common.by import By

    from tests.conftest import PASSWORD

    browser.get(live_server.url + "/login")
    browser.find_element(By.NAME, "email").send_keys(user.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "counters"))
