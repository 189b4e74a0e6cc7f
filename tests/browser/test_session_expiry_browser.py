"""A form sent after the session ended keeps what was typed: log in again, find it filled in, send it."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import csp_violations, log_in, text_at, wait_until
from tests.conftest import PASSWORD
from webapp.domain import login_sessions
from webapp.storage import db
from webapp.storage.models import PaymentRequest

pytestmark = pytest.mark.browser


def _end_sessions(user) -> None:
    """What an idle limit, a password change elsewhere or an admin does: the server ends the session."""
    with db.database.connection_context():
        assert login_sessions.end_all(user.id, "test") >= 1


def _log_in_again(browser, user) -> None:
    browser.find_element(By.NAME, "email").send_keys(user.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def test_a_request_typed_while_the_session_ended_is_filled_in_again_after_login(browser, live_server, make_user):
    user = make_user("staff")
    log_in(browser, live_server, user)
    browser.get(live_server.url + "/requests/new")
    browser.find_element(By.NAME, "amount").send_keys("5,000")
    browser.find_element(By.NAME, "customer_name").send_keys("Grace Achieng")
    browser.find_element(By.NAME, "customer_phone").send_keys("0772 123456")
    _end_sessions(user)
    browser.find_element(By.ID, "create-request").click()

    # The login page says the form is kept, and where it will be filled in again.
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    assert "What you typed on /requests/new is kept in this browser" in text_at(browser, "[data-kept-form]")
    _log_in_again(browser, user)

    wait_until(browser, lambda d: d.current_url.endswith("/requests/new") and d.find_elements(By.CSS_SELECTOR,
                                                                                              "[data-kept-form]"))
    values = browser.execute_script(
        "return ['amount', 'customer_name', 'customer_phone', 'reference'].map(n => document.getElementsByName(n)[0].value)")
    assert values == ["5,000", "Grace Achieng", "0772 123456", ""]
    assert "this form was not sent" in text_at(browser, "[data-kept-form]")
    with db.database.connection_context():
        assert PaymentRequest.select().count() == 0  # nothing was sent behind the user's back

    browser.find_element(By.ID, "create-request").click()
    wait_until(browser, lambda d: "/requests/" in d.current_url and not d.current_url.endswith("/new"))
    with db.database.connection_context():
        [made] = PaymentRequest.select()
        assert (made.amount_minor, made.customer_name, made.customer_phone) == (5000, "Grace Achieng", "+256772123456")
    # Sent once: the next visit to the form is a clean one.
    browser.get(live_server.url + "/requests/new")
    wait_until(browser, lambda d: d.find_elements(By.ID, "request-form"))
    assert browser.find_element(By.NAME, "amount").get_attribute("value") == ""
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-kept-form]")
    assert csp_violations(browser) == []


def test_an_htmx_edit_sent_after_the_session_ended_says_what_was_lost(browser, live_server, make_user):
    from webapp.storage.models import Agent

    user = make_user("staff")
    with db.database.connection_context():
        agent = Agent.create(name="Amina Nakato", phone="+256772123456", code="AG7")
    log_in(browser, live_server, user)
    browser.get(live_server.url + "/agents/")
    cell = f"agent-{agent.id}-phone"
    browser.find_element(By.CSS_SELECTOR, f"#{cell} a.cell-edit").click()
    field = wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{cell} input[name=value]"))[0]
    wait_until(browser, lambda d: d.switch_to.active_element == field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("0701 234567")
    _end_sessions(user)
    field.send_keys(Keys.ENTER)  # htmx gets 401 and goes to the login page (HX-Redirect)

    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    _log_in_again(browser, user)
    # Back on the agents page the cell is not being edited: the note says what was typed.
    wait_until(browser, lambda d: d.current_url.endswith("/agents/") and d.find_elements(By.CSS_SELECTOR,
                                                                                         "#flashes [data-kept-form]"))
    lost = text_at(browser, "#flashes [data-kept-form]")
    assert "was not sent" in lost and "WhatsApp number of AG7: 0701 234567" in lost
    with db.database.connection_context():
        assert Agent.get_by_id(agent.id).phone == "+256772123456"
    browser.refresh()  # said once
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table"))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-kept-form]")
