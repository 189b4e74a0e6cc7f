"""The request page in Chromium shows a billing row's write-back (status, voucher, conflict)."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from jobs import billing as billing_jobs
from jobs import gateway
from tests.billing_helpers import seed_source
from tests.browser.conftest import log_in, text_of, wait_until
from tests.test_billing import billing, request_of, run_writebacks  # noqa: F401 (fixture)
from tests.test_gateway import env, force, gateway_source, inside, integrator_collects, sandbox  # noqa: F401 (fixtures)
from webapp.domain import sources

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("billing", ["mariadb"], indirect=True)
def test_the_request_page_shows_the_write_back_and_the_voucher(browser, live_server, make_user, gateway_source,
                                                              env, billing, sandbox):
    billing.add_vouchers("WIFI-ZZZ9")
    with inside(env):
        hotspot = sources.save(seed_source(), actor="test")[0]
        row = billing.new_request("PR-9001")
        force(sandbox, integrator_collects(sandbox, "PR-9001"), "Success")
        billing_jobs.run_pass(hotspot.id)
        gateway.run_pass(gateway_source.id)
        request = request_of(row)
        run_writebacks(request)
    log_in(browser, live_server, make_user("viewer"))
    browser.get(f"{live_server.url}/requests/{request.reference}")
    wait_until(browser, lambda d: d.find_elements(By.ID, "request-billing"))
    section = text_of(browser, "request-billing")
    assert "Row 1 of table payment_requests" in section and "source hotspot-billing" in section
    assert "WIFI-ZZZ9" in section and "done" in section and "paid" in section
