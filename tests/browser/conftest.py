"""Headless Debian Chromium driven by Selenium against the app served on a real port."""
from __future__ import annotations

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
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", "--disable-quic", "--window-size=1280,900",
        f"--user-data-dir={tempfile.mkdtemp(prefix='pw-chromium-')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait_until(driver, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
