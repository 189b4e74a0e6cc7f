"""The sandbox provider portal, driven over HTTP with MechanicalSoup as the scraper will."""
from __future__ import annotations

import threading

import mechanicalsoup
import pytest
import requests

from sandbox.portal import make_app
from sandbox.server import ServerThread

START = 1_795_345_385.0  # 2026-11-22 11:03:05 UTC


class Clock:
    """A clock the test moves by hand: the portal's `now`."""

    def __init__(self, t: float = START):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(scope="module")
def running_servers():
    """Servers started in this module, stopped together at its end.

    Each `stop()` waits out serve_forever's 0.5 s poll, so stopping them in parallel
    once keeps the module fast.
    """
    servers: list[ServerThread] = []
    yield servers
    stoppers = [threading.Thread(target=server.stop) for server in servers]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


@pytest.fixture
def start_portal(clock, running_servers):
    """Start a fresh portal (make_app keywords, clock = `clock`) on a free port; returns its URL."""

    def start(**options) -> str:
        options.setdefault("now", clock)
        server = ServerThread(make_app(**options)).start()
        running_servers.append(server)
        return server.url

    return start


@pytest.fixture
def portal(start_portal):
    return start_portal(seed_rows=5)


@pytest.fixture
def browser():
    with mechanicalsoup.StatefulBrowser() as b:
        yield b


def control(base: str, path: str, body=None, method: str = "POST") -> requests.Response:
    return requests.request(method, f"{base}/_sandbox/{path}", json=body, timeout=5)


def log_in(browser, base, username="demo", password="demo-pass", form="form#login-form",
           fields=("username", "password"), path="/login"):
    browser.open(base + path)
    browser.select_form(form)
    browser[fields[0]] = username
    browser[fields[1]] = password
    return browser.submit_selected()


def read_table(page, table="table#payments", rows="tr.payment-row") -> list[dict[str, str]]:
    """Rows as {header text: cell text}, the way a header-driven scraper reads them."""
    headers = [th.get_text(strip=True) for th in page.select(f"{table} th")]
    return [dict(zip(headers, (td.get_text(strip=True) for td in tr.select("td"))))
            for tr in page.select(f"{table} {rows}")]


# -- login ------------------------------------------------------------------------------
def test_a_login_with_the_csrf_token_lands_on_the_payments_page(portal, browser):
    response = log_in(browser, portal)

    assert response.status_code == 200
    assert browser.url == portal + "/payments"
    assert browser.page.select_one("a#logout")["href"] == "/logout"
    assert len(read_table(browser.page)) == 5


def test_a_login_without_the_csrf_token_is_refused_with_400(portal, browser):
    browser.open(portal + "/login")
    form = browser.select_form("form#login-form")
    form.form.find("input", {"name": "csrf_token"}).decompose()
    browser["username"], browser["password"] = "demo", "demo-pass"

    response = browser.submit_selected()

    assert response.status_code == 400
    assert "CSRF" in browser.page.get_text()
    assert control(portal, "stats", method="GET").json()["csrf_rejections"] == 1


def test_a_login_with_a_wrong_csrf_token_is_refused_with_400(portal, browser):
    browser.open(portal + "/login")
    browser.select_form("form#login-form")
    browser["csrf_token"] = "forged"
    browser["username"], browser["password"] = "demo", "demo-pass"

    assert browser.submit_selected().status_code == 400


def test_a_wrong_password_shows_the_form_again_and_counts_a_failed_login(portal, browser):
    log_in(browser, portal, password="nope")

    assert browser.page.select_one("form#login-form") is not None
    assert browser.page.select_one("a#logout") is None
    assert "Invalid username or password" in browser.page.select_one("#login-error").text
    stats = control(portal, "stats", method="GET").json()
    assert (stats["logins"], stats["failed_logins"]) == (0, 1)


def test_logging_out_ends_the_session(portal, browser):
    log_in(browser, portal)
    browser.follow_link(browser.page.select_one("a#logout"))

    browser.open(portal + "/payments")

    assert browser.url.startswith(portal + "/login")


# -- paging -----------------------------------------------------------------------------
def test_paging_follows_the_next_link_to_the_end_newest_first(start_portal, browser):
    base = start_portal(seed_rows=45, page_size=20)
    log_in(browser, base)
    seen, pages = [], 0
    while True:
        pages += 1
        seen += [row["ID"] for row in read_table(browser.page)]
        link = browser.page.select_one("a[rel=next]")
        if link is None:
            break
        browser.follow_link(link)

    expected = [p["id"] for p in control(base, "payments", method="GET").json()["payments"]]
    assert pages == 3
    assert seen == expected and len(seen) == 45
    assert seen[0] == "TX000045" and seen[-1] == "TX000001"
    assert browser.url == base + "/payments?page=3"


def test_a_page_past_the_end_is_empty_and_has_no_next_link(portal, browser):
    log_in(browser, portal)
    browser.open(portal + "/payments?page=9")

    assert read_table(browser.page) == []
    assert browser.page.select_one("a[rel=next]") is None


def test_page_size_can_be_changed_at_run_time(portal, browser):
    control(portal, "config", {"page_size": 2})
    log_in(browser, portal)

    assert len(read_table(browser.page)) == 2
    assert browser.page.select_one("a.next")["href"] == "/payments?page=2"


# -- sessions ---------------------------------------------------------------------------
def test_a_missing_session_gets_a_302_to_login_with_next(portal):
    response = requests.get(portal + "/payments?page=2", allow_redirects=False, timeout=5)

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fpayments%3Fpage%3D2"


def test_an_idle_session_expires_and_login_returns_to_the_page_asked_for(start_portal, clock, browser):
    base = start_portal(seed_rows=30, idle_timeout_s=300)
    log_in(browser, base)
    clock.advance(301)

    browser.open(base + "/payments?page=2")
    assert browser.url == base + "/login?next=%2Fpayments%3Fpage%3D2"
    browser.select_form("form#login-form")
    browser["username"], browser["password"] = "demo", "demo-pass"
    browser.submit_selected()

    assert browser.url == base + "/payments?page=2"
    assert browser.page.select_one("a#logout") is not None


def test_each_request_refreshes_the_idle_timer(portal, clock, browser):
    log_in(browser, portal)
    for _ in range(3):
        clock.advance(200)
        browser.open(portal + "/payments")
        assert browser.url == portal + "/payments"


def test_expiring_all_sessions_sends_the_browser_back_to_login(portal, browser):
    log_in(browser, portal)

    assert control(portal, "sessions/expire").json() == {"expired": 1}
    browser.open(portal + "/payments")
    assert browser.page.select_one("form#login-form") is not None


# -- faults -----------------------------------------------------------------------------
def test_a_renamed_column_keeps_its_cells_under_the_new_header(portal, browser):
    control(portal, "faults", {"rename_column": {"Agent": "Sales Rep"}})
    log_in(browser, portal)

    rows = read_table(browser.page)
    assert "Agent" not in rows[0] and rows[0]["Sales Rep"].startswith("AG")


def test_a_removed_column_disappears_from_headers_and_cells(portal, browser):
    control(portal, "faults", {"remove_column": "Phone"})
    log_in(browser, portal)

    headers = [th.text for th in browser.page.select("table#payments th")]
    first_row = browser.page.select_one("tr.payment-row").select("td")
    assert "Phone" not in headers and len(first_row) == len(headers) == 7


def test_the_5xx_fault_fails_the_next_n_requests_then_recovers(portal, browser):
    log_in(browser, portal)
    control(portal, "faults", {"error_5xx": 2, "error_5xx_code": 503})

    codes = [browser.open(portal + "/payments").status_code for _ in range(3)]

    assert codes == [503, 503, 200]
    assert control(portal, "stats", method="GET").json()["errors_served"] == 2


def test_the_429_fault_answers_too_many_requests_with_retry_after(portal, browser):
    log_in(browser, portal)
    control(portal, "faults", {"status_429": 1})

    throttled = browser.open(portal + "/payments")

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert browser.open(portal + "/payments").status_code == 200


def test_a_slow_page_outlasts_a_short_client_timeout(portal):
    control(portal, "faults", {"slow_seconds": 0.5})

    with pytest.raises(requests.Timeout):
        requests.get(portal + "/login", timeout=0.1)


def test_refused_logins_keep_the_browser_on_the_login_form(portal, browser):
    control(portal, "faults", {"refuse_logins": True})

    log_in(browser, portal)

    assert browser.page.select_one("a#logout") is None
    assert "temporarily unavailable" in browser.page.select_one("#login-error").text
    control(portal, "faults", method="DELETE")
    log_in(browser, portal)
    assert browser.page.select_one("a#logout") is not None


# -- counters ---------------------------------------------------------------------------
def test_counters_count_page_fetches_by_path_and_logins(start_portal, browser):
    base = start_portal(seed_rows=25, page_size=10)
    log_in(browser, base)
    browser.follow_link(browser.page.select_one("a.next"))
    control(base, "stats/reset")

    browser.open(base + "/payments")

    stats = control(base, "stats", method="GET").json()
    assert stats["fetches"] == {"/payments": 1}
    assert stats["fetches_by_url"] == {"/payments": 1}
    assert stats["logins"] == 0 and stats["pages_fetched"] == 1


def test_a_fresh_login_counts_the_login_page_its_post_and_the_landing_page(portal, browser):
    log_in(browser, portal)

    stats = control(portal, "stats", method="GET").json()
    assert stats["fetches"] == {"/login": 2, "/payments": 1}
    assert stats["logins"] == 1 and stats["sessions_live"] == 1


# -- markup and configuration -----------------------------------------------------------
def test_amounts_and_dates_render_in_the_portal_style(portal, browser):
    control(portal, "reset", {"seed_rows": 0})
    control(portal, "payments", {"amount": "50000", "created": "2026-11-22T11:03:05Z",
                                 "customer": "Grace Atim", "phone": "0772123456",
                                 "agent": "AG03", "reference": "INV-777"})
    log_in(browser, portal)

    [row] = read_table(browser.page)

    assert row == {"ID": "TX000001", "Created": "2026-11-22 14:03:05", "Customer": "Grace Atim",
                   "Phone": "0772123456", "Agent": "AG03", "Amount": "UGX 50,000",
                   "Status": "Pending", "Reference": "INV-777"}


def test_a_currency_column_shows_amounts_with_two_decimals(portal, browser):
    control(portal, "reset", {"seed_rows": 0})
    control(portal, "payments", [{"amount": "5000"}, {"amount": 1234.5, "currency": "kes"}])
    control(portal, "config", {"currency_column": True})
    log_in(browser, portal)

    rows = read_table(browser.page)

    assert [(r["Amount"], r["Currency"]) for r in rows] == [("1,234.50", "KES"), ("5,000.00", "UGX")]


def test_reordered_and_relabelled_columns_change_the_header_row(portal, browser):
    control(portal, "config", {"columns": ["reference", "amount", "id"],
                               "labels": {"reference": "Merchant Ref"}})
    log_in(browser, portal)

    headers = [th.text for th in browser.page.select("table#payments th")]
    assert headers == ["Merchant Ref", "Amount", "ID"]
    assert read_table(browser.page)[0]["ID"] == "TX000005"


def test_the_ledger_skin_has_different_markup_fields_and_dates(start_portal, browser):
    base = start_portal(skin="ledger", page_size=1)
    control(base, "payments", {"amount": "5000", "created": "2026-11-22T11:03:05+03:00",
                               "status": "Completed"})
    control(base, "payments", {"amount": "7000"})
    log_in(browser, base, form="form.signin", fields=("login", "pin"))

    page = browser.page
    assert page.select_one("a.signout") is not None and page.select_one("a#logout") is None
    assert page.select("div") == [] and page.select_one("table#payments") is None
    browser.follow_link(page.select_one("a[aria-label=Next]"))
    [row] = read_table(browser.page, table="table#txn-list", rows="tr.txn")
    assert row == {"Date": "22/11/2026 08:03", "Txn No.": "TX000001", "Payment Ref": "",
                   "Payer": "", "MSISDN": "", "Amount": "5,000.00", "Currency": "UGX",
                   "State": "SUCCESS", "Agent Code": ""}
    assert browser.page.select_one("a[aria-label=Next]") is None


def test_switching_skin_at_run_time_changes_the_login_form(portal, browser):
    control(portal, "config", {"skin": "ledger"})
    browser.open(portal + "/login")

    assert browser.page.select_one("form#login-form") is None
    assert browser.page.select_one("form.signin input[type=hidden][name=authenticity_token]")


# -- control endpoints ------------------------------------------------------------------
def test_a_changed_payment_shows_on_the_next_fetch(portal, browser):
    control(portal, "payments/TX000005", {"status": "Failed", "amount": "12500"})
    log_in(browser, portal)

    row = read_table(browser.page)[0]
    assert (row["ID"], row["Status"], row["Amount"]) == ("TX000005", "Failed", "UGX 12,500")


def test_added_payments_get_server_ids_and_times_and_come_first(portal, clock):
    clock.advance(60)
    added = control(portal, "payments", {"payments": [{"amount": "1"}, {"amount": "2"}]})

    assert added.status_code == 201
    assert [p["id"] for p in added.json()["payments"]] == ["TX000006", "TX000007"]
    listed = control(portal, "payments", method="GET").json()["payments"]
    assert [p["id"] for p in listed[:2]] == ["TX000007", "TX000006"]
    assert listed[0]["created"] == "2026-11-22T11:04:05+00:00"


@pytest.mark.parametrize("path, body, code", [
    ("payments", {"amount": "lots"}, 400),
    ("payments", {"amount": "5", "status": "Paid"}, 400),
    ("payments", {"customer": "no amount"}, 400),
    ("payments", [{"amount": "5", "id": "TX000001"}], 400),
    ("payments/TX999999", {"status": "Failed"}, 404),
    ("faults", {"explode": True}, 400),
    ("config", {"columns": ["id", "colour"]}, 400),
    ("config", {"timezone": "Mars/Olympus"}, 400),
])
def test_control_endpoints_reject_bad_input_and_change_nothing(portal, path, body, code):
    before = control(portal, "payments", method="GET").json()

    response = control(portal, path, body)

    assert response.status_code == code and response.json()["error"]
    assert control(portal, "payments", method="GET").json() == before


def test_reset_restores_the_start_state(portal, browser):
    log_in(browser, portal)
    control(portal, "payments", {"amount": "10"})
    control(portal, "faults", {"refuse_logins": True})

    control(portal, "reset")

    assert len(control(portal, "payments", method="GET").json()["payments"]) == 5
    assert control(portal, "faults", method="GET").json()["faults"]["refuse_logins"] is False
    assert control(portal, "stats", method="GET").json()["pages_fetched"] == 0
    browser.open(portal + "/payments")
    assert browser.page.select_one("form#login-form") is not None
