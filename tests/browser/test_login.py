import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, text_at, text_of, wait_until
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_a_user_logs_in_sees_the_dashboard_and_logs_out(browser, live_server, make_user):
    user = make_user("admin", name="Ada Admin")
    browser.get(live_server.url + "/")
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "email").send_keys(user.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()

    wait_until(browser, lambda d: d.find_elements(By.ID, "counters"))
    # Read in one script: the counters are a live element htmx replaces.
    labels = browser.execute_script("return [...document.querySelectorAll('#counters .label')].map(e => e.textContent)")
    assert labels == ["Pending requests", "Payments today", "Review queue", "Failed notifications"]
    assert text_at(browser, "[data-counter=pending_requests] .value") == "0"
    # htmx is loaded from our own static folder and keeps the counters live.
    assert browser.execute_script("return typeof htmx") == "object"
    assert browser.execute_script("return htmx.version").startswith("2.0.")

    browser.find_element(By.CSS_SELECTOR, "details.dropdown summary").click()
    browser.find_element(By.ID, "logout").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    assert "logged out" in text_of(browser, "flashes")
    browser.get(live_server.url + "/")
    wait_until(browser, lambda d: "/login" in d.current_url)


def test_the_dashboard_counters_refresh_by_polling(browser, live_server, make_user, app):
    from datetime import timedelta

    from webapp.storage import db
    from webapp.storage.models import PaymentRequest, utcnow

    log_in(browser, live_server, make_user("viewer"))
    with db.database.connection_context():
        PaymentRequest.create(
            reference="PW-LIVE22", amount_minor=5000, requested_minor=5000, currency="UGX",
            expires_at=utcnow() + timedelta(minutes=15),
        )
    # The counters are replaced by every poll: the condition reads them afresh each time (it
    # once held an element across a swap and failed with StaleElementReferenceException).
    wait_until(browser, lambda d: text_at(d, "[data-counter=pending_requests] .value") == "1", timeout=30)
