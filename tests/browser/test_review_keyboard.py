"""The review queue in Chromium: j/k move, c confirms, r + reason + Enter rejects, l + reference links;
a refused link shows on its card, and a suggested request links in one click."""
from datetime import timedelta

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import csp_violations, log_in, wait_until
from webapp.domain import ledger
from webapp.storage import db
from webapp.storage.models import MatchCandidate, Payment, PaymentRequest, RejectedPair, utcnow

pytestmark = pytest.mark.browser


def _two_payments_in_review():
    """Two payments, each between two requests of its amount; the same source (15 points) makes one the best."""
    for amount, name, reference, source in ((5000, "Alice Akello", "PW-ALICE1", "portal"),
                                            (5000, "Brian Okello", "PW-BRIAN2", "ui"),
                                            (7000, "Carol Nambi", "PW-CAROL3", "portal"),
                                            (7000, "Dan Opio", "PW-DAN4", "ui")):
        ledger.create_request(ledger.NewRequest(amount, "UGX", customer_name=name, reference=reference, source=source))
    now = utcnow()
    payments = [
        ledger.ingest_payment(ledger.PaymentObservation(
            "portal", ref, amount, "UGX", now - timedelta(seconds=age), sender_name=sender)).payment
        for ref, amount, sender, age in (("row-1", 5000, "Joseph Mukasa", 60), ("row-2", 7000, "Grace Auma", 30))
    ]
    assert [p.status for p in payments] == ["review", "review"]
    return payments


def _open_the_queue(browser, live_server, user):
    log_in(browser, live_server, user)
    browser.get(live_server.url + "/review/")


def _press(browser, keys):
    ActionChains(browser).send_keys(keys).perform()


# Read the page in one script: htmx may replace an element between a find and a read.
def _selected(browser):
    return browser.execute_script("""
        const items = document.querySelectorAll("#review-queue .review-item[aria-current=true]");
        return items.length === 1 ? items[0].dataset.payment : null;""")


def _focused(browser, attribute):
    return browser.execute_script("return document.activeElement[arguments[0]]", attribute)


def _flashes(browser):
    return browser.execute_script("return document.getElementById('flashes').textContent")


def test_staff_work_the_review_queue_with_the_keyboard(browser, live_server, make_user, app):
    with app.app_context(), db.database.connection_context():
        first, second = _two_payments_in_review()
    first_id, second_id = str(first.id), str(second.id)
    user = make_user("staff")
    _open_the_queue(browser, live_server, user)

    wait_until(browser, lambda d: _selected(d) == first_id)
    _press(browser, "j")
    wait_until(browser, lambda d: _selected(d) == second_id)
    _press(browser, "j")  # the last item stays selected
    assert _selected(browser) == second_id
    _press(browser, "k")
    wait_until(browser, lambda d: _selected(d) == first_id)
    _press(browser, "?")
    assert browser.find_element(By.ID, "review-help").is_displayed()

    _press(browser, "c")  # confirm the first payment's best candidate
    wait_until(browser, lambda d: not d.find_elements(By.ID, f"review-item-{first_id}"))
    assert "PW-ALICE1 is paid" in _flashes(browser)
    with db.database.connection_context():
        assert PaymentRequest.get(PaymentRequest.reference == "PW-ALICE1").status == "paid"
        assert Payment.get_by_id(first.id).status == "confirmed"
    wait_until(browser, lambda d: _selected(d) == second_id)  # the selection moved to the next one

    _press(browser, "r")
    wait_until(browser, lambda d: _focused(d, "name") == "reason")
    _press(browser, "wrong customer, checked the slip" + Keys.ENTER)  # letters typed here are not shortcuts
    wait_until(browser, lambda d: "does not pay PW-CAROL3" in _flashes(d))
    with db.database.connection_context():
        assert PaymentRequest.get(PaymentRequest.reference == "PW-CAROL3").status == "pending"
        assert Payment.get_by_id(second.id).status == "review"
        assert [r.request.reference for r in RejectedPair.select().where(RejectedPair.payment == second.id)] == ["PW-CAROL3"]
        assert [c.request.reference for c in MatchCandidate.select().where(MatchCandidate.payment == second.id)] == ["PW-DAN4"]
    cards = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((c) => c.dataset.reference)",
        f"#review-item-{second_id} .evidence-card")
    assert cards == ["PW-DAN4"]
    wait_until(browser, lambda d: _selected(d) == second_id)


def test_the_queue_updates_live_but_never_under_a_reason_being_typed(browser, live_server, make_user, app):
    with app.app_context(), db.database.connection_context():
        first, _ = _two_payments_in_review()
    user = make_user("staff")
    _open_the_queue(browser, live_server, user)
    wait_until(browser, lambda d: _selected(d) == str(first.id))
    # Count the queue's polls that review.js holds back (this listener runs after review.js's).
    browser.execute_script("""
        window.heldPolls = 0;
        document.addEventListener("htmx:beforeRequest", (e) => {
          if (e.detail.elt.id === "review-queue" && e.defaultPrevented) window.heldPolls += 1;
        });""")
    _press(browser, "r")
    wait_until(browser, lambda d: _focused(d, "name") == "reason")
    _press(browser, "half a reas")
    with app.app_context(), db.database.connection_context():
        newcomer = ledger.ingest_payment(ledger.PaymentObservation(
            "portal", "row-9", 9000, "UGX", utcnow(), sender_name="Eve Nakato")).payment
    wait_until(browser, lambda d: d.execute_script("return window.heldPolls") >= 1, timeout=12)
    assert not browser.find_elements(By.ID, f"review-item-{newcomer.id}")
    assert _focused(browser, "value") == "half a reas"

    _press(browser, Keys.ESCAPE)  # cancel: the form closes and polling resumes
    wait_until(browser, lambda d: d.find_elements(By.ID, f"review-item-{newcomer.id}"), timeout=12)
    wait_until(browser, lambda d: _selected(d) == str(first.id))  # set again once htmx settles
    with db.database.connection_context():
        assert Payment.get_by_id(first.id).status == "review"


def test_a_refused_link_shows_on_the_card_keeps_the_typing_and_a_suggestion_links_in_one_click(
        browser, live_server, make_user, app):
    with app.app_context(), db.database.connection_context():
        payment = ledger.ingest_payment(ledger.PaymentObservation(
            "portal", "row-3", 9000, "UGX", utcnow() - timedelta(hours=1), sender_name="Carol Nambi")).payment
        assert payment.status == "unmatched"
        ledger.create_request(ledger.NewRequest(9000, "UGX", customer_name="Carol Nambi", reference="PW-CAROL3"))
        ledger.create_request(ledger.NewRequest(3000, "UGX", customer_name="Nambi Carol", reference="PW-NAMBI4"))
    user = make_user("staff")
    _open_the_queue(browser, live_server, user)
    item = f"#review-item-{payment.id}"
    wait_until(browser, lambda d: _selected(d) == str(payment.id))
    assert browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((li) => li.dataset.reference)",
        f"{item} .suggestions li.suggestion") == ["PW-CAROL3", "PW-NAMBI4"]

    _press(browser, "l")
    wait_until(browser, lambda d: _focused(d, "name") == "reference")
    _press(browser, "PW-NOPE99" + Keys.ENTER)
    wait_until(browser, lambda d: d.execute_script(
        "const e = document.querySelector(arguments[0]); return e && e.textContent", f"{item} .linking .card-error")
        == "No request with reference PW-NOPE99.")
    assert "PW-NOPE99" not in _flashes(browser)  # on the card, not at the top of the page
    wait_until(browser, lambda d: _focused(d, "value") == "PW-NOPE99")  # kept, and focused to correct it
    _press(browser, Keys.ESCAPE)

    search = browser.find_element(By.CSS_SELECTOR, f"{item} .suggestion-search input[name=q]")
    search.send_keys("pw-nambi4")
    wait_until(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((li) => li.dataset.reference).join()",
        f"#search-results-{payment.id} li.suggestion") == "PW-NAMBI4")
    assert "Cannot be linked" in browser.execute_script(
        "return document.querySelector(arguments[0]).textContent", f"#search-results-{payment.id} li.suggestion")

    browser.find_element(By.CSS_SELECTOR, f"{item} .suggestions li[data-reference=PW-CAROL3] button").click()
    wait_until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, item))
    assert "PW-CAROL3 is paid" in _flashes(browser)
    with db.database.connection_context():
        assert PaymentRequest.get(PaymentRequest.reference == "PW-CAROL3").status == "paid"
        assert Payment.get_by_id(payment.id).status == "confirmed"
    assert not csp_violations(browser)
