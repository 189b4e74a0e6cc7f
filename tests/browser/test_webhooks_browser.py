"""Settings → Webhooks in headless Chromium: add an endpoint, copy its secret, read a delivery's attempt log."""
import pytest
from selenium.webdriver.common.by import By

from tests import test_webhooks
from tests.browser.conftest import csp_violations, log_in, text_at, wait_until
from webapp.storage import db
from webapp.storage.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.browser
environ = test_webhooks.environ  # fixtures: private URLs allowed, a sandbox receiver
receiver = test_webhooks.receiver


def test_an_admin_adds_an_endpoint_and_reads_its_attempt_log(browser, live_server, make_user, receiver, app,
                                                             make_request):
    log_in(browser, live_server, make_user("admin"))
    browser.get(live_server.url + "/settings/")
    browser.find_element(By.LINK_TEXT, "Webhooks").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "webhooks-table"))
    browser.find_element(By.CSS_SELECTOR, "#webhook-create").find_element(By.XPATH, "..").find_element(
        By.TAG_NAME, "summary").click()
    browser.find_element(By.CSS_SELECTOR, "#webhook-create input[name=url]").send_keys(receiver.url + "/shop")
    browser.find_element(By.CSS_SELECTOR, "#webhook-create input[value='request.created']").click()
    browser.find_element(By.CSS_SELECTOR, "#webhook-create button[type=submit]").click()
    secret = wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#new-webhook-secret input"))[0]
    with db.database.connection_context():
        endpoint = WebhookEndpoint.get()
    assert secret.get_attribute("value") == endpoint.secret and endpoint.events == ["request.created"]

    make_request(4000)
    with app.app_context():
        from jobs import webhooks as webhook_jobs

        with db.database.connection_context():
            delivery_id = WebhookDelivery.get().id
        assert webhook_jobs.deliver(delivery_id) == "delivered"
    browser.find_element(By.LINK_TEXT, receiver.url + "/shop").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, f"webhook-delivery-{delivery_id}"))
    browser.find_element(By.CSS_SELECTOR, f"#webhook-delivery-{delivery_id} details summary").click()
    assert "200" in text_at(browser, f"#webhook-delivery-{delivery_id} details table tbody")
    assert "received" in text_at(browser, f"#webhook-delivery-{delivery_id} details table tbody")
    assert csp_violations(browser) == []
