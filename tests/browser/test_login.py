import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import wait_until
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

    counters = wait_until(browser, lambda d: d.find_elements(By.ID, "counters"))
    labels = [e.text for e in counters[0].find_elements(By.CSS_SELECTOR, ".label")]
    assert labels == ["Pending requests", "Payments today", "Review queue", "Failed notifications"]
    assert browser.find_element(By.CSS_SELECTOR, "[data-counter=pending_requests] .value").text == "0"
    # htmx is loaded from our own static folder and keeps the counters live.
    assert browser.execute_script("return typeof htmx") == "object"
    assert browser.execute_script("return htmx.version").startswith("2.0.")

    browser.find_element(By.CSS_SELECTOR, "details.dropdown summary").click()
    browser.find_element(By.ID, "logout").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    assert "logged out" in browser.find_element(By.ID, "flashes").text
    browser.get(live_server.url + "/")
    wait_until(browser, lambda d: "/login" in d.current_url)


def test_the_dashboard_counters_refresh_by_polling(browser, live_server, make_user, app):
    from datetime import timedelta

    from webapp import db
    from webapp.models import PaymentRequest, utcnow

    user = make_user("viewer")
    browser.get(live_server.url + "/login")
    browser.find_element(By.NAME, "email").send_keys(user.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "counters"))
    with db.database.connection_context():
        PaymentRequest.create(
            reference="PW-LIVE22", amount_minor=5000, requested_minor=5000, currency="UGX",
            expires_at=utcnow() + timedelta(minutes=15),
        )
    value = "[data-counter=pending_requests] .value"
    wait_until(browser, lambda d: d.find_element(By.CSS_SELECTOR, value).text == "1", timeout=15)
