"""The API reference page in headless Chromium: no login, no CSP violation, links land on their section."""
import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import csp_violations, wait_until

pytestmark = pytest.mark.browser


def test_an_integrator_reads_the_reference_and_follows_a_link_to_a_schema(browser, live_server):
    csp_violations(browser)
    browser.set_window_size(390, 844)  # a phone: the tables scroll inside the page, not the page itself
    browser.get(live_server.url + "/api/docs")
    wait_until(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    assert "POST /api/v1/requests" in browser.find_element(By.ID, "api-operations").text

    browser.find_element(By.CSS_SELECTOR, 'a[href="#post-api-v1-requests"]').click()
    wait_until(browser, lambda d: d.execute_script("return location.hash") == "#post-api-v1-requests")
    browser.find_element(By.CSS_SELECTOR, '#post-api-v1-requests a[href="#schema-NewRequestInput"]').click()
    section = browser.find_element(By.ID, "schema-NewRequestInput")
    wait_until(browser, lambda d: d.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= -1 && r.top < innerHeight", section))
    assert "amount" in section.text and "decimal string" in section.text
    width = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1] + 1, width  # nothing wider than the screen
    assert csp_violations(browser) == []
