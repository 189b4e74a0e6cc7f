"""The WhatsApp session page in Chromium: an admin sends a test message; the page shows the last check
and the reconnect attempts, live (the partial is polled), without any CSP violation."""
from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.browser.conftest import csp_violations, log_in, text_of, wait_until
from webapp.domain import whatsapp_session
from webapp.storage.models import Notification, utcnow


def test_an_admin_sends_a_test_message_and_sees_the_session_live(browser, live_server, make_user, domain):
    admin = make_user("admin")
    log_in(browser, live_server, admin)
    browser.get(live_server.url + "/notifications/whatsapp")
    field = browser.find_element(By.ID, "test-phone")
    field.clear()
    field.send_keys("+256772123456")
    browser.find_element(By.ID, "session-test").click()
    wait_until(browser, lambda d: "Test message queued for +256772123456" in d.page_source)
    assert domain(lambda: [(n.kind, n.phone) for n in Notification.select()]) == [("admin_alert", "+256772123456")]
    # The watchdog's next check shows up without a reload (the session partial polls every 3 s).
    domain(whatsapp_session.update, session="CLOSED", checked_at=utcnow().isoformat(), reconnect_attempts=2)
    wait_until(browser, lambda d: (text_of(d, "session-reconnects") or "").startswith("2"), timeout=15)
    assert text_of(browser, "session-status") == "CLOSED"
    assert csp_violations(browser) == []
