"""A sortable list in Chromium: clicking a header re-sorts through htmx, keeps the URL, the filters and
the live refresh in that order."""
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, wait_until
from webapp.storage import db
from webapp.storage.models import PaymentRequest, utcnow

pytestmark = pytest.mark.browser


def rows(driver):
    # Read in one script: the live table may be swapped between two WebDriver calls.
    return driver.execute_script(
        "return [...document.querySelectorAll('#requests-table tbody tr[id]')].map(e => e.id.slice(8))")


def aria_sort(driver, key):
    return driver.execute_script(
        "const a = document.getElementById('sort-' + arguments[0]); return a && a.closest('th').getAttribute('aria-sort')",
        key)


def click(driver, element_id):
    """Click what a poll may replace at any moment: wait_until finds it again after a swap."""
    wait_until(driver, lambda d: d.find_element(By.ID, element_id).click() or True)


def test_clicking_a_header_sorts_the_list_and_filters_keep_that_order(browser, live_server, make_user):
    user = make_user("viewer")
    now = utcnow()
    amounts = {"PW-SORTA2": 7000, "PW-SORTB3": 1000, "PW-SORTC4": 9000, "PW-SORTD5": 3000}
    with db.database.connection_context():
        for age, (reference, amount) in enumerate(amounts.items()):
            PaymentRequest.create(reference=reference, amount_minor=amount, requested_minor=amount, currency="UGX",
                                  customer_name="Sorted", created_at=now - timedelta(minutes=age),
                                  expires_at=now + timedelta(hours=1))
    log_in(browser, live_server, user)
    browser.get(live_server.url + "/requests/")
    newest_first = list(amounts)
    wait_until(browser, lambda d: rows(d) == newest_first)
    assert aria_sort(browser, "created") == "descending" and aria_sort(browser, "amount") == "none"

    click(browser, "sort-amount")  # amounts: largest first on the first click
    by_amount = sorted(amounts, key=amounts.get, reverse=True)
    wait_until(browser, lambda d: rows(d) == by_amount)
    assert aria_sort(browser, "amount") == "descending" and aria_sort(browser, "created") == "none"
    wait_until(browser, lambda d: "sort=amount" in d.current_url and "order=desc" in d.current_url)

    click(browser, "sort-amount")  # the same header again: the other way
    wait_until(browser, lambda d: rows(d) == list(reversed(by_amount)))
    assert aria_sort(browser, "amount") == "ascending"

    # A filter keeps the order (the sort rides in the form), and so does the 5-second refresh.
    browser.find_element(By.CSS_SELECTOR, "details.filters summary").click()
    browser.find_element(By.NAME, "min").send_keys("2000")
    browser.find_element(By.CSS_SELECTOR, "#request-filters button[type=submit]").click()
    expected = [r for r in reversed(by_amount) if amounts[r] >= 2000]
    wait_until(browser, lambda d: rows(d) == expected and "min=2000" in d.current_url and "order=asc" in d.current_url)
    poll = browser.execute_script("return document.getElementById('requests-table').getAttribute('hx-get')")
    assert "sort=amount" in poll and "order=asc" in poll and "min=2000" in poll
