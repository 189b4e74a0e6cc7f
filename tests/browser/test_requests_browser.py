from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from tests.browser.conftest import log_in, text_of, wait_until
from webapp.storage import db
from webapp.storage.models import PaymentRequest, utcnow

pytestmark = pytest.mark.browser


def rows(driver):
    # Read in one script: the live table may be swapped between two WebDriver calls.
    return driver.execute_script(
        "return [...document.querySelectorAll('#requests-table tbody tr[id]')].map(e => e.id)")


def click(driver, by, value):
    """Click what a poll may replace at any moment: wait_until finds it again after a swap."""
    wait_until(driver, lambda d: d.find_element(by, value).click() or True)


def test_staff_create_find_open_and_cancel_a_request(browser, live_server, make_user):
    user = make_user("staff")
    with db.database.connection_context():
        PaymentRequest.create(reference="PW-OTHER2", amount_minor=9000, requested_minor=9000, currency="UGX",
                              customer_name="John Okello", expires_at=utcnow() + timedelta(minutes=15))
    log_in(browser, live_server, user)

    # Create from the form: the detail page tells the exact amount to pay.
    browser.get(live_server.url + "/requests/new")
    browser.find_element(By.NAME, "amount").send_keys("12500")
    browser.find_element(By.NAME, "customer_name").send_keys("Grace Nakato")
    browser.find_element(By.NAME, "customer_phone").send_keys("0772 123456")
    browser.find_element(By.ID, "create-request").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "exact-amount"))
    reference = text_of(browser, "reference")
    assert text_of(browser, "exact-amount") == "UGX 12,500"
    assert f"Request {reference} created: the customer pays exactly UGX 12,500." in text_of(browser, "flashes")

    # The list shows it; the text filter (htmx) narrows the table and keeps the URL.
    browser.get(live_server.url + "/requests/")
    wait_until(browser, lambda d: set(rows(d)) == {f"request-{reference}", "request-PW-OTHER2"})
    browser.find_element(By.CSS_SELECTOR, "details.filters summary").click()
    browser.find_element(By.NAME, "q").send_keys("nakato")
    browser.find_element(By.CSS_SELECTOR, "#request-filters button[type=submit]").click()
    wait_until(browser, lambda d: rows(d) == [f"request-{reference}"])
    wait_until(browser, lambda d: "q=nakato" in d.current_url)

    # Open the detail and cancel it.
    click(browser, By.LINK_TEXT, reference)
    wait_until(browser, lambda d: d.find_elements(By.ID, "cancel-request"))
    assert text_of(browser, "request-status-badge") == "pending"
    browser.find_element(By.ID, "cancel-reason").send_keys("customer changed their mind")
    click(browser, By.ID, "cancel-request")
    wait_until(browser, expected_conditions.alert_is_present()).accept()
    wait_until(browser, lambda d: text_of(d, "request-status-badge") == "cancelled")
    assert f"Request {reference} cancelled." in text_of(browser, "flashes")
    assert not browser.find_elements(By.ID, "cancel-request")
    timeline = text_of(browser, "timeline")
    assert "request.cancelled" in timeline and "customer changed their mind" in timeline
