import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, text_of, wait_until
from webapp.domain import message_texts
from webapp.storage import db

pytestmark = pytest.mark.browser


def test_staff_edit_a_template_with_a_live_preview(browser, live_server, make_user, app):
    log_in(browser, live_server, make_user("staff"))

    browser.get(live_server.url + "/notifications/templates/reminder")
    area = browser.find_element(By.ID, "template-body")
    area.clear()
    area.send_keys("Hi {{ customer_name }}, pay {{ amount }}")
    sample = message_texts.SAMPLE
    wait_until(browser, lambda d: text_of(d, "preview-text") == f"Hi {sample['customer_name']}, pay {sample['amount']}")

    # A misspelt variable: the preview turns into the error naming it.
    area.send_keys(" by {{ expiress_at }}")
    wait_until(browser, lambda d: "unknown variable: expiress_at" in (text_of(d, "preview-error") or ""))

    # Fixed, then saved: back on the list with the new text.
    for _ in range(len("expiress_at }}")):
        area.send_keys("\b")
    area.send_keys("expires_at }}")
    wait_until(browser, lambda d: (text_of(d, "preview-text") or "").endswith(f"by {sample['expires_at']}"))
    browser.find_element(By.ID, "save-template").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "templates-table"))
    assert "Template reminder saved." in text_of(browser, "flashes")
    with app.app_context(), db.database.connection_context():
        assert message_texts.current("reminder") == ("Hi {{ customer_name }}, pay {{ amount }} by {{ expires_at }}", True)
