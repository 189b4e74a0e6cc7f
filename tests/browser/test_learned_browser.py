"""Learned payers in headless Chromium: staff withdraw and forget an alias in place (htmx), no CSP breach."""
import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import csp_violations, log_in, text_of, wait_until
from tests.ledger_helpers import new_request, pay
from webapp.domain import ledger
from webapp.storage import db
from webapp.storage.models import PayerAlias

pytestmark = pytest.mark.browser


def teach(app):
    with app.app_context(), db.database.connection_context():
        john = new_request(5000, name="John Bosco Ocen", phone="+256772000001")
        new_request(5000, name="Peter Lwanga", phone="+256772000002")
        payment = pay(5000, name="OKOT JAMES").payment
        ledger.confirm(payment.id, john.reference, actor="user:1")
        return PayerAlias.get().id


def alias_rows():
    with db.database.connection_context():
        return [(a.rejected,) for a in PayerAlias.select()]


def test_staff_withdraw_then_forget_a_learned_alias_in_place(app, browser, live_server, make_user):
    alias_id = teach(app)
    log_in(browser, live_server, make_user("staff"))
    browser.get(live_server.url + "/review/")
    browser.find_element(By.ID, "learned-link").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, f"alias-{alias_id}"))
    assert "learning" in text_of(browser, f"alias-{alias_id}")
    browser.find_element(By.ID, f"alias-{alias_id}-withdraw").click()
    wait_until(browser, lambda d: "withdrawn" in (text_of(d, f"alias-{alias_id}") or ""))
    assert "withdrawn: it no longer counts" in text_of(browser, "flashes")
    assert alias_rows() == [(1,)]
    browser.find_element(By.ID, f"alias-{alias_id}-forget").click()
    wait_until(browser, lambda d: not d.find_elements(By.ID, f"alias-{alias_id}"))
    assert "Nothing learned" in text_of(browser, "learned-list")
    assert alias_rows() == []
    assert csp_violations(browser) == []
