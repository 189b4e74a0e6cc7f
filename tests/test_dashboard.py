"""The dashboard: agents × status matrix, collections per local day, slow payers — each a live partial."""
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


from webapp.domain import reports
from webapp.storage import db
from webapp.storage.models import Agent, Payment, PaymentRequest, utcnow

HTMX = {"HX-Request": "true"}
KAMPALA = ZoneInfo("Africa/Kampala")  # the test environment's PAYWATCH_TIMEZONE (UTC+3)


def _request(reference, status, created, *, agent=None, paid=None, amount=10000, currency="UGX"):
    return PaymentRequest.create(reference=reference, amount_minor=amount, requested_minor=amount, currency=currency,
                                 agent=agent, status=status, created_at=created, expires_at=created + timedelta(hours=1),
                                 paid_at=paid)


def test_the_dashboard_page_holds_every_live_element(client, login_as):
    login_as("viewer")
    page = client.get("/").get_data(as_text=True)
    for element, url in (("counters", "/dashboard/counters"), ("agent-matrix", "/dashboard/matrix"),
                         ("collections", "/dashboard/collections"), ("slow-payers", "/dashboard/slow")):
        # counters and matrix come with the page; collections and slow payers load at once after it
        assert re.search(rf'id="{element}"[^>]*hx-get="{url}" hx-trigger="(load, )?every 10s"', page), element
        assert client.get(url, headers=HTMX).get_data(as_text=True).startswith(f'<section id="{element}"')
    assert client.get("/dashboard/matrix").status_code == 302  # opened by hand: the dashboard


def test_the_matrix_counts_requests_per_agent_and_status_and_links_to_the_filtered_list(client, login_as, domain):
    now = utcnow()

    def seed():
        amina = Agent.create(name="Amina", code="AG7", phone="+256772123456")
        Agent.create(name="Idle", code="ZZ9", is_active=False)  # no requests, inactive: no row
        for i, status in enumerate(["pending", "pending", "paid", "expired"]):
            _request(f"PW-A{i}", status, now, agent=amina)
        _request("PW-N1", "cancelled", now)

    domain(seed)
    login_as("viewer")
    html = client.get("/dashboard/matrix", headers=HTMX).get_data(as_text=True)
    assert re.findall(r'<tr id="matrix-([\w-]+)"', html) == ["AG7", "no-agent"]
    row = html.split('id="matrix-AG7"')[1].split("</tr>")[0]
    cells = dict(re.findall(r'data-status="(\w+)">\s*(?:<a href="[^"]*"[^>]*>)?(\d+)', row))
    assert cells == {"pending": "2", "review": "0", "partial": "0", "paid": "1", "failed": "0", "expired": "1", "cancelled": "0", "all": "4"}
    assert '<a href="/requests/?agent=AG7&amp;status=pending"' in row and "status=review" not in row
    no_agent = html.split('id="matrix-no-agent"')[1].split("</tr>")[0]
    assert re.search(r'data-status="cancelled">1<', no_agent) and "<a " not in no_agent
    # The link leads to exactly those requests.
    listed = client.get("/requests/?agent=AG7&status=pending").get_data(as_text=True)
    assert set(re.findall(r'<tr id="request-([\w-]+)"', listed)) == {"PW-A0", "PW-A1"}


def test_the_page_reads_the_request_and_payment_tallies_once(client, login_as, domain):
    """The counters, the matrix and the navigation badge show the same figures from one read each."""
    now = utcnow()

    def seed():
        amina = Agent.create(name="Amina", code="AG7", phone="+256772123456")
        for i in range(3):
            _request(f"PW-P{i}", "pending", now, agent=amina if i else None)
        _request("PW-R1", "review", now)
        for i, status in enumerate(["unmatched", "unmatched", "review", "confirmed"]):
            Payment.create(source="portal", source_ref=f"dash-{i}", amount_minor=500, currency="UGX",
                           received_at=now, status=status)

    domain(seed)
    login_as("viewer")
    with db.recorded_queries() as statements:
        page = client.get("/").get_data(as_text=True)
    assert re.search(r'data-counter="pending_requests">\s*<span class="value">3<', page)
    assert re.search(r'data-counter="review_queue">\s*<span class="value">3<', page)
    assert re.search(r'id="review-count"[^>]*data-requests="1" data-payments="1" data-unmatched="2"[^>]*>3<', page)
    pending = [re.search(r'data-status="pending">\s*(?:<a [^>]*>)?(\d+)', page.split(f'id="matrix-{row}"')[1]).group(1)
               for row in ("AG7", "no-agent")]
    assert pending == ["2", "1"]
    assert sum('"request_tally"' in sql for sql in statements) == 1
    assert sum('"payment_tally"' in sql for sql in statements) == 1  # review and unmatched, from the tally
    assert not any('FROM "payment" AS "t1" WHERE ("t1"."status"' in sql for sql in statements)  # no count of payments


def test_collections_are_summed_per_local_day_and_per_currency(client, login_as, domain):
    today = utcnow().astimezone(KAMPALA).date()
    midnight = datetime.combine(today, time.min, tzinfo=KAMPALA)

    def seed():
        # 00:30 in Kampala is 21:30 UTC the day before: it belongs to today here.
        _request("PW-1", "paid", midnight - timedelta(hours=2), paid=midnight + timedelta(minutes=30), amount=5000)
        _request("PW-2", "paid", midnight - timedelta(hours=3), paid=midnight - timedelta(minutes=30), amount=7000)
        _request("PW-3", "paid", midnight - timedelta(days=20), paid=midnight - timedelta(days=20), amount=999)
        _request("PW-4", "paid", midnight, paid=midnight + timedelta(minutes=1), amount=250, currency="USD")
        _request("PW-5", "expired", midnight, amount=123456)

    domain(seed)
    per_day = domain(reports.collected_per_day, 14)
    ugx = dict(per_day["UGX"])
    assert len(per_day["UGX"]) == 14 and per_day["UGX"][-1][0] == today
    assert ugx[today] == 5000 and ugx[today - timedelta(days=1)] == 7000 and sum(ugx.values()) == 12000
    assert dict(per_day["USD"])[today] == 250

    login_as("viewer")
    html = client.get("/dashboard/collections", headers=HTMX).get_data(as_text=True)
    assert 'viewBox="0 0 640 220"' in html and html.count('class="bar"') == 14
    assert re.search(rf'data-label="{today.strftime("%a %d %b %Y")}" data-value="5000"><title>[^<]+: UGX 5,000<', html)
    assert "UGX: UGX 12,000" in html
    assert re.search(r'id="collections-others">Also collected:\s*<span data-currency="USD">USD 2.50<', html)


def test_slow_payers_list_the_longest_to_pay_and_the_oldest_pending(client, login_as, domain):
    now = utcnow()

    def seed():
        agent = Agent.create(name="Amina", code="AG7")
        _request("PW-FAST", "paid", now - timedelta(days=2), paid=now - timedelta(days=2) + timedelta(minutes=2))
        _request("PW-SLOW", "paid", now - timedelta(days=3), paid=now - timedelta(days=1), agent=agent)
        _request("PW-MID", "paid", now - timedelta(hours=5), paid=now - timedelta(hours=2))
        _request("PW-OLD", "paid", now - timedelta(days=60), paid=now - timedelta(days=40))  # outside 30 days
        _request("PW-P2", "pending", now - timedelta(hours=1))
        _request("PW-P1", "pending", now - timedelta(hours=9))
        _request("PW-R", "review", now - timedelta(days=9))

    domain(seed)
    login_as("viewer")
    html = client.get("/dashboard/slow", headers=HTMX).get_data(as_text=True)
    paid = html.split('id="slowest-paid"')[1].split("</table>")[0]
    pending = html.split('id="oldest-pending"')[1].split("</table>")[0]
    assert re.findall(r'data-reference="([\w-]+)"', paid) == ["PW-SLOW", "PW-MID", "PW-FAST"]
    assert re.findall(r'data-reference="([\w-]+)"', pending) == ["PW-P1", "PW-P2"]
    assert "2 d" in paid and "3 h" in paid and "2 min" in paid and "AG7" in paid
