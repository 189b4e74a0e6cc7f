"""The charts in headless Chromium at 390 px: every SVG chart fits the viewport (viewBox + width:100%),
on the dashboard, the agent page, and the request page's payment link with its copy button."""
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, wait_until
from webapp.storage import db
from webapp.storage.models import Agent, Event, Notification, Payment, PaymentRequest, utcnow

pytestmark = pytest.mark.browser

# Every chart's box, and the page's scroll width, against the viewport's width.
MEASURE = """
const width = document.documentElement.clientWidth;
const charts = [...document.querySelectorAll('svg.chart')].map((svg) => {
  const box = svg.getBoundingClientRect();
  return {id: svg.id, left: box.left, right: box.right, height: box.height};
});
const figures = [...document.querySelectorAll('.chart-figure, #pay-link')].map((f) => ({
  id: f.id || f.dataset.currency, right: f.getBoundingClientRect().right, scroll: f.scrollWidth, client: f.clientWidth}));
return {width, charts, figures};
"""


def seed():
    now = utcnow()
    with db.database.connection_context():
        agent = Agent.create(name="Amina Nakato with a long name", code="AGENT-WITH-A-LONG-CODE-7")
        for i in range(12):
            created = now - timedelta(days=i, hours=2)
            request = PaymentRequest.create(
                reference=f"PW-C{i}", amount_minor=10000 * (i + 1), requested_minor=10000 * (i + 1), currency="UGX",
                agent=agent if i % 2 else None, status="paid", created_at=created,
                expires_at=created + timedelta(days=3), paid_at=created + timedelta(minutes=7 * i + 1))
            Payment.create(source=f"mailbox-of-the-main-office-{i % 3}", source_ref=f"m{i}",
                           amount_minor=request.amount_minor, currency="UGX", received_at=request.paid_at,
                           status="confirmed", request=request)
            Event.create(at=created, actor="system", action="payment.review" if i % 3 else "payment.unmatched",
                         subject=f"payment:{i}")
            Notification.create(kind="reminder", phone="+256700000001", status="sent" if i % 4 else "failed",
                                ack=i % 4 or None, sent_at=created, due_at=created, dedupe_key=f"n{i}",
                                request=request)
        return agent


def fits(measured) -> list[str]:
    """What sticks out of the viewport (an empty list when everything fits)."""
    width = measured["width"]
    problems = [f"chart {c['id']}: {c['left']:.0f}–{c['right']:.0f} px of {width}" for c in measured["charts"]
                if c["left"] < 0 or c["right"] > width + 0.5 or c["height"] <= 0]
    problems += [f"{f['id']}: right {f['right']:.0f} px, scrolls {f['scroll']} of {f['client']}"
                 for f in measured["figures"] if f["right"] > width + 0.5 or f["scroll"] > f["client"]]
    return problems


def test_the_charts_fit_a_390_px_phone(browser, live_server, make_user):
    agent = seed()
    browser.set_window_size(390, 900)
    log_in(browser, live_server, make_user("viewer"))
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert width <= 390

    # the charts and the collections load right after the page
    wait_until(browser, lambda d: d.find_elements(By.ID, "whatsapp-chart") and d.find_elements(By.ID, "collections-chart"))
    dashboard = browser.execute_script(MEASURE)
    assert {c["id"] for c in dashboard["charts"]} >= {
        "collections-chart", "time-to-pay-chart", "collections-by-source-chart", "collections-by-agent-chart",
        "review-trend-chart", "whatsapp-chart"}
    assert fits(dashboard) == []

    browser.get(f"{live_server.url}/agents/{agent.id}")
    wait_until(browser, lambda d: d.find_elements(By.ID, "agent-conversion"))
    agent_page = browser.execute_script(MEASURE)
    assert {c["id"] for c in agent_page["charts"]} == {"agent-collected-UGX", "agent-conversion"}
    assert fits(agent_page) == []

    browser.get(f"{live_server.url}/requests/PW-C3")
    copy = wait_until(browser, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button[data-copy]")
                                          if b.is_displayed()])[0]
    assert fits(browser.execute_script(MEASURE)) == []
    box = browser.execute_script("return arguments[0].getBoundingClientRect().right", copy)
    assert box <= width  # the copy button is not clipped
    copy.click()
    wait_until(browser, lambda d: copy.text in ("Copied", "Press Ctrl+C to copy"))
