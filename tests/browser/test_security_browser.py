"""The Content-Security-Policy in a real browser: no page breaks it, htmx still updates live,
old session cookies open nothing, and rq-dashboard works under its own policy with our CSRF."""
import pytest
from rq import Queue
from selenium.webdriver.common.by import By

from tests.browser.conftest import csp_violations, log_in, text_of, wait_until
from tests.conftest import PASSWORD, AuthActions
from webapp.domain import agents, ledger, sources
from webapp.storage.models import utcnow

pytestmark = pytest.mark.browser


def _some_of_everything(domain, make_request):
    """A request, an unmatched payment, an agent and a source, so the pages show rows."""
    request = make_request(5000, customer_name="Grace Nakato", customer_phone="+256772123456")
    payment = domain(ledger.ingest_payment, ledger.PaymentObservation(
        "portal", "row-1", 7000, "UGX", utcnow(), sender_name="Joseph Mukasa")).payment
    agent = domain(agents.create_agent, "Amina Nakato", "+256772000001", "AG7", actor="test")
    domain(sources.save, {"kind": "mailbox", "name": "shop-mail", "interval_s": 60, "config": {
        "host": "127.0.0.1", "port": 1, "ssl": False, "username_env": "SHOP_IMAP_USER",
        "password_env": "SHOP_IMAP_PASSWORD", "folder": "INBOX"}}, actor="test")
    return request, payment, agent


def test_no_page_breaks_the_policy_and_htmx_still_updates_live(browser, live_server, make_user, domain,
                                                               make_request):
    request, payment, agent = _some_of_everything(domain, make_request)
    log_in(browser, live_server, make_user("admin"))
    pages = ["/", "/requests/", f"/requests/{request.reference}", "/requests/new", "/payments/",
             f"/payments/{payment.id}", "/payments/new", "/review/", "/notifications/", "/notifications/templates",
             "/notifications/templates/reminder", "/notifications/rules", "/notifications/rules/new",
             "/notifications/whatsapp", "/sources/", "/settings/", "/settings/api-keys", "/agents/",
             f"/agents/{agent.id}", "/agents/import", "/vouchers/", "/vouchers/import", "/users/", "/audit/",
             "/account/password", "/account/sessions"]
    assert csp_violations(browser) == []
    for path in pages:
        browser.get(live_server.url + path)
        wait_until(browser, lambda d: d.execute_script("return document.readyState") == "complete"
                   and d.execute_script("return typeof htmx") == "object")
        assert csp_violations(browser) == [], path

    # Live updates under the policy: the requests list picks up a new request by polling.
    browser.get(live_server.url + "/requests/")
    later = make_request(6000, customer_name="Brian Okello")
    wait_until(browser, lambda d: d.find_elements(By.ID, f"request-{later.reference}"), timeout=30)
    # A form htmx posts: the template preview answers as the text is typed.
    browser.get(live_server.url + "/notifications/templates/reminder")
    area = browser.find_element(By.ID, "template-body")
    area.clear()
    area.send_keys("Hi {{ customer_name }}")
    wait_until(browser, lambda d: (text_of(d, "preview-text") or "").startswith("Hi "), timeout=30)
    assert csp_violations(browser) == []


def test_the_check_sees_a_violation_when_there_is_one(browser, live_server, make_user):
    log_in(browser, live_server, make_user("viewer"))
    assert csp_violations(browser) == []
    browser.execute_script("""document.body.insertAdjacentHTML("beforeend",
        '<img id="probe" src="data:," onerror="window.ran = 1" onload="window.ran = 1">')""")
    reported = wait_until(browser, lambda d: csp_violations(d))
    assert "inline event handler" in reported[0]
    assert browser.execute_script("return window.ran") is None


def test_an_old_session_cookie_opens_nothing_after_logout(browser, live_server, make_user):
    log_in(browser, live_server, make_user("staff"))
    cookie = browser.get_cookie("paywatch_session")
    browser.execute_script("localStorage.setItem('htmx-history-cache', '[]')")  # where htmx keeps pages
    browser.find_element(By.CSS_SELECTOR, "details.dropdown summary").click()
    browser.find_element(By.ID, "logout").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    assert browser.execute_script("return localStorage.length") == 0
    browser.delete_all_cookies()
    browser.add_cookie({"name": cookie["name"], "value": cookie["value"], "path": "/"})
    browser.get(live_server.url + "/requests/")
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"))
    assert "/login?next=" in browser.current_url


def test_a_poll_after_the_session_ended_elsewhere_goes_to_the_login_page(browser, live_server, make_user, app):
    user = make_user("staff")
    log_in(browser, live_server, user)
    browser.get(live_server.url + "/requests/")
    # The user changes the password on another device: this browser's next poll finds itself logged out.
    other = app.test_client()
    auth = AuthActions(other)
    auth.login(user.email)
    response = other.post("/account/password", data={
        "current": PASSWORD, "new": "a brand new secret", "confirm": "a brand new secret",
        "csrf_token": auth.csrf_token("/account/password")})
    assert response.status_code == 302
    wait_until(browser, lambda d: d.find_elements(By.ID, "login-form"), timeout=30)
    assert browser.current_url.endswith("/login?next=%2Frequests%2F")
    assert "Please log in" in text_of(browser, "flashes")


def test_rq_dashboard_works_under_its_policy_and_its_buttons_send_our_csrf_token(
        browser, live_server, make_user, redis_conn, run_worker):
    fast = Queue("fast", connection=redis_conn)
    # Exception text can quote outside input; the job page shows it unescaped. Under the
    # dashboard's policy, markup that arrives that way cannot run.
    failed = [fast.enqueue("builtins.int", "<img src=x onerror=window.pwned=1>").id,
              fast.enqueue("builtins.int", "not a number").id]
    run_worker(queues=("fast",))
    assert sorted(fast.failed_job_registry.get_job_ids()) == sorted(failed)
    log_in(browser, live_server, make_user("admin"))
    csp_violations(browser)

    browser.get(live_server.url + "/ops/rq/")
    # Its script ran: rows from its templates (eval) filled with what it fetched.
    wait_until(browser, lambda d: "fast" in d.find_element(By.CSS_SELECTOR, "#queues tr[data-role=queue]").text)
    browser.get(live_server.url + "/ops/rq/0/view/workers")
    wait_until(browser, lambda d: text_of(d, "workers").endswith("No workers."))
    assert csp_violations(browser) == []

    browser.get(live_server.url + f"/ops/rq/0/view/job/{failed[0]}")
    wait_until(browser, lambda d: "ValueError" in (d.execute_script(
        "const e = document.querySelector('#job-data .exc_info'); return e && e.textContent") or ""))
    wait_until(browser, lambda d: [m for m in csp_violations(d) if "inline event handler" in m])
    assert browser.execute_script("return window.pwned") is None

    browser.get(live_server.url + "/ops/rq/0/view/jobs/fast/failed/8/asc/1")
    wait_until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-role=job]")) == 2)
    browser.find_element(By.ID, "requeue-all-btn").click()
    wait_until(browser, lambda d: d.find_element(By.ID, "confirmation-modal-yes").is_displayed())
    browser.find_element(By.ID, "confirmation-modal-yes").click()
    wait_until(browser, lambda d: not fast.failed_job_registry.get_job_ids() and sorted(fast.get_job_ids()) == sorted(failed))
