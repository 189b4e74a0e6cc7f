"""The rule builder in Chromium: from an unreadable message in review, select the fields in its text,
preview the proposed rule, save it, and see the message read."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from selenium.webdriver.common.by import By

from jobs.emails import parse_messages
from jobs.mailbox import _observation
from sandbox.heldout import trusted
from sandbox.mail_mime import sms_forward
from tests.browser.conftest import csp_violations, log_in, text_at, wait_until
from webapp.domain import ledger
from webapp.storage import db
from webapp.storage.models import Payment

pytestmark = pytest.mark.browser

TEXT = ("UG12XYZ789 Imethibitishwa. Umepokea Ksh1,500.00 kutoka JANE WANJIKU 0712345678 tarehe 3/7/26 "
        "saa 9:01 AM. Salio jipya ni Ksh9,000.00.")


def _unreadable() -> int:
    raw = sms_forward("MPESA", TEXT, datetime(2026, 7, 3, 6, 5, tzinfo=timezone.utc), "<b1@relay.example>", "line")
    parsed = parse_messages(raw, trusted_forwarders=trusted())[0]
    return ledger.ingest_payment(_observation("mbox", parsed, raw, None, readable=False)).payment.id


def _select(browser, words: str) -> None:
    """Select `words` inside the message text, as a mouse drag would."""
    browser.execute_script("""
        const pre = document.getElementById("rule-text"), node = pre.firstChild;
        const start = node.textContent.indexOf(arguments[0]);
        const range = document.createRange();
        range.setStart(node, start); range.setEnd(node, start + arguments[0].length);
        const selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range);""", words)


def test_staff_build_a_rule_from_an_unreadable_message(browser, live_server, make_user, app):
    with app.app_context(), db.database.connection_context():
        payment_id = _unreadable()
    log_in(browser, live_server, make_user("staff"))
    browser.get(live_server.url + "/review/")
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "a.build-rule"))
    browser.find_element(By.CSS_SELECTOR, "a.build-rule").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "rule-text"))
    for field, words in (("amount", "1,500.00"), ("sender_name", "JANE WANJIKU"),
                         ("transaction_id", "UG12XYZ789"), ("sender_phone", "0712345678")):
        _select(browser, words)
        browser.find_element(By.CSS_SELECTOR, f"button.mark[data-field={field}]").click()
        assert browser.find_element(By.ID, f"mark-{field}").get_attribute("value") == words
    browser.find_element(By.ID, "rule-name").send_keys("mpesa-swahili")
    browser.find_element(By.ID, "preview").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "rule-preview"))
    assert "(?P<amount>" in text_at(browser, "#rule-toml")
    assert text_at(browser, "#rule-preview tr.new-rule td.payer") == "JANE WANJIKU"
    browser.find_element(By.ID, "save-rule").click()
    wait_until(browser, lambda d: "read again" in (text_at(d, "#flashes") or ""))
    with app.app_context(), db.database.connection_context():
        payment = Payment.get_by_id(payment_id)
    assert (payment.parsed, payment.amount_minor, payment.transaction_id) == (True, 150000, "UG12XYZ789")
    assert csp_violations(browser) == []
