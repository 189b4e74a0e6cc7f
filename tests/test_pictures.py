"""The dashboard's pictures: time to pay, collections by source and by agent, unmatched and review
per day, WhatsApp outcomes per day — server-side SVG read back here as XML (bars, heights, labels)."""
import re
import xml.etree.ElementTree as ET
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from webapp.domain import reports
from webapp.storage.models import Agent, Event, Notification, Payment, PaymentRequest, utcnow

HTMX = {"HX-Request": "true"}
KAMPALA = ZoneInfo("Africa/Kampala")  # the test environment's PAYWATCH_TIMEZONE (UTC+3)
SVG = "{http://www.w3.org/2000/svg}"


def svg(html: str, chart_id: str) -> ET.Element:
    found = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', html, re.S)
    assert found, f"no chart {chart_id}"
    return ET.fromstring(found.group(0).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def bars(chart: ET.Element) -> list[dict]:
    """Every bar: its label, series, value, and drawn height."""
    return [{"label": r.get("data-label"), "series": r.get("data-series"), "value": int(r.get("data-value")),
             "height": float(r.get("height")), "width": float(r.get("width"))}
            for r in chart.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]


def texts(chart: ET.Element) -> list[str]:
    return [t.text for t in chart.iter(f"{SVG}text")]


def _paid(reference, created, took, *, agent=None, amount=10000, currency="UGX", seen_settled=False):
    return PaymentRequest.create(reference=reference, amount_minor=amount, requested_minor=amount, currency=currency,
                                 agent=agent, status="paid", created_at=created, expires_at=created + timedelta(days=9),
                                 paid_at=created + took, seen_settled=seen_settled)


def _payment(ref, source, amount, received, *, request=None, status="confirmed", currency="UGX"):
    return Payment.create(source=source, source_ref=ref, amount_minor=amount, currency=currency, received_at=received,
                          status=status, request=request)


def test_time_to_pay_is_a_histogram_of_the_last_30_days(client, login_as, domain):
    now = utcnow()

    def seed():
        _paid("PW-1", now - timedelta(hours=1), timedelta(seconds=30))
        _paid("PW-2", now - timedelta(hours=2), timedelta(seconds=45))
        _paid("PW-3", now - timedelta(days=2), timedelta(minutes=10))
        _paid("PW-4", now - timedelta(days=9), timedelta(days=5))
        _paid("PW-5", now - timedelta(days=3), timedelta(hours=2), seen_settled=True)  # no true time to pay
        _paid("PW-6", now - timedelta(days=50), timedelta(minutes=1))  # paid before the window

    domain(seed)
    assert dict(domain(reports.time_to_pay_histogram)) == {
        "< 1 min": 2, "1–5 min": 0, "5–15 min": 1, "15–60 min": 0, "1–3 h": 0, "3–12 h": 0, "12–24 h": 0,
        "1–3 d": 0, "3–7 d": 1, "> 7 d": 0}

    login_as("viewer")
    html = client.get("/dashboard/pictures", headers=HTMX).get_data(as_text=True)
    chart = svg(html, "time-to-pay-chart")
    drawn = bars(chart)
    assert [b["label"] for b in drawn] == [label for _, label in reports.TIME_TO_PAY_BUCKETS]
    assert [b["value"] for b in drawn] == [2, 0, 1, 0, 0, 0, 0, 0, 1, 0]
    tallest = drawn[0]["height"]
    assert tallest > 0 and drawn[2]["height"] == drawn[8]["height"] == tallest / 2 and drawn[1]["height"] == 0
    # Every bucket is named under its bar (short), and the axis says the top figure.
    assert {"< 1m", "5–15m", "3–7d", "> 7d"} <= set(texts(chart)) and "2" in texts(chart)
    assert chart.find(f"{SVG}title").text == "Paid requests by time to pay, last 30 days"
    # The same figures in the table under it.
    table = html.split('id="time-to-pay-figures"')[1].split("</details>")[0]
    assert re.findall(r'<th scope="row">([^<]+)</th><td class="count">(\d+)</td>', table)[:3] == [
        ("&lt; 1 min", "2"), ("1–5 min", "0"), ("5–15 min", "1")]


def test_collections_by_source_and_agent_sum_confirmed_payments_of_the_window(client, login_as, domain):
    now = utcnow()

    def seed():
        amina = Agent.create(name="Amina", code="AG7")
        brian = Agent.create(name="Brian", code="AG8")
        r1, r2, r3 = (_paid(f"PW-{i}", now - timedelta(days=1), timedelta(minutes=5), agent=agent)
                      for i, agent in ((1, amina), (2, brian), (3, None)))
        _payment("a", "mailbox", 30000, now - timedelta(days=1), request=r1)
        _payment("b", "mailbox", 5000, now - timedelta(days=2), request=r2)
        _payment("c", "portal", 20000, now - timedelta(hours=3), request=r1)
        _payment("d", "gateway", 7000, now - timedelta(hours=1), request=r3)
        _payment("e", "portal", 99999, now - timedelta(hours=1), status="unmatched")  # not collected
        _payment("f", "portal", 4000, now - timedelta(days=45), request=r2)  # before the window
        _payment("g", "gateway", 300, now - timedelta(hours=1), request=r2, currency="USD")  # another currency

    domain(seed)
    assert domain(reports.collections_by, "source", "UGX") == [("mailbox", 35000), ("portal", 20000), ("gateway", 7000)]
    assert domain(reports.collections_by, "agent", "UGX") == [("AG7", 50000), ("no agent", 7000), ("AG8", 5000)]
    assert domain(reports.collections_by, "source", "UGX", limit=2) == [("mailbox", 35000), ("others", 27000)]

    login_as("viewer")
    html = client.get("/dashboard/pictures", headers=HTMX).get_data(as_text=True)
    by_agent = bars(svg(html, "collections-by-agent-chart"))
    assert [(b["label"], b["value"]) for b in by_agent] == [("AG7", 50000), ("no agent", 7000), ("AG8", 5000)]
    assert by_agent[0]["width"] == 10 * by_agent[2]["width"]  # sideways bars: the length is the figure
    by_source = svg(html, "collections-by-source-chart")
    assert [b["label"] for b in bars(by_source)] == ["mailbox", "portal", "gateway"]
    assert {"mailbox", "UGX 35,000", "gateway", "UGX 7,000"} <= set(texts(by_source))
    assert "UGX of confirmed payments received, by source." in html


def test_unmatched_and_review_are_counted_per_local_day(client, login_as, domain):
    today = utcnow().astimezone(KAMPALA).date()
    midnight = datetime.combine(today, time.min, tzinfo=KAMPALA)

    def seed():
        # 00:30 in Kampala is 21:30 UTC the day before: today here.
        Event.create(at=midnight + timedelta(minutes=30), actor="system", action="payment.unmatched", subject="payment:1")
        Event.create(at=midnight - timedelta(minutes=30), actor="system", action="payment.unmatched", subject="payment:2")
        Event.create(at=midnight - timedelta(minutes=40), actor="system", action="payment.review", subject="payment:3")
        Event.create(at=midnight - timedelta(minutes=50), actor="system", action="payment.review", subject="payment:4")
        Event.create(at=midnight, actor="system", action="payment.confirmed", subject="payment:5")  # not a landing
        Event.create(at=midnight - timedelta(days=31), actor="system", action="payment.review", subject="payment:6")

    domain(seed)
    trend = domain(reports.review_trend)
    assert len(trend) == 30 and trend[-1] == (today, 1, 0) and trend[-2] == (today - timedelta(days=1), 1, 2)
    assert sum(u + r for _, u, r in trend) == 4

    login_as("viewer")
    html = client.get("/dashboard/pictures", headers=HTMX).get_data(as_text=True)
    drawn = bars(svg(html, "review-trend-chart"))
    yesterday = (today - timedelta(days=1)).strftime("%a %d %b %Y")
    assert [(b["label"], b["series"], b["value"]) for b in drawn] == [
        (yesterday, "unmatched", 1), (yesterday, "review", 2), (today.strftime("%a %d %b %Y"), "unmatched", 1)]
    # Stacked: yesterday's column (1 + 2) is the tallest; today's single segment is a third of it.
    assert abs(drawn[0]["height"] + drawn[1]["height"] - 3 * drawn[2]["height"]) < 0.2


def test_whatsapp_outcomes_per_day_are_stacked_sent_delivered_failed(client, login_as, domain):
    now = utcnow()
    today = now.astimezone(KAMPALA).date()

    def seed():
        for i, (status, ack, sent_at, due_at) in enumerate([
            ("sent", None, now, now), ("sent", 1, now, now), ("sent", 2, now, now), ("sent", 3, now, now),
            ("sent", 4, now - timedelta(days=1), now - timedelta(days=1)),
            ("failed", None, None, now - timedelta(days=1)), ("failed", None, None, now),
            ("pending", None, None, now), ("cancelled", None, None, now),
            ("sent", 3, now - timedelta(days=40), now - timedelta(days=40)),
        ]):
            Notification.create(kind="reminder", phone="+256700000001", status=status, ack=ack, sent_at=sent_at,
                                due_at=due_at, dedupe_key=f"n{i}")

    domain(seed)
    outcomes = domain(reports.whatsapp_outcomes)
    assert outcomes[-1] == (today, 2, 2, 1) and outcomes[-2] == (today - timedelta(days=1), 0, 1, 1)
    assert sum(sum(values) for _, *values in outcomes) == 7

    login_as("viewer")
    html = client.get("/dashboard/pictures", headers=HTMX).get_data(as_text=True)
    chart = svg(html, "whatsapp-chart")
    today_label = today.strftime("%a %d %b %Y")
    assert [(b["series"], b["value"]) for b in bars(chart) if b["label"] == today_label] == [
        ("sent", 2), ("delivered", 2), ("failed", 1)]
    assert {"sent", "delivered", "failed"} <= set(texts(chart))  # the legend
    table = html.split('id="whatsapp-figures"')[1].split("</details>")[0]
    assert re.search(rf'<th scope="row">{today_label}</th><td class="count">2</td><td class="count">2</td>'
                     r'<td class="count">1</td>', table)


def test_with_nothing_in_30_days_each_picture_says_so(client, login_as):
    login_as("viewer")
    # The dashboard itself answers without the charts' queries: its placeholder fetches them at once.
    dashboard = client.get("/").get_data(as_text=True)
    assert re.search(r'id="pictures"[^>]*hx-get="/dashboard/pictures" hx-trigger="load, every 60s"', dashboard)
    assert "Loading the charts" in dashboard
    page = client.get("/dashboard/pictures", headers=HTMX).get_data(as_text=True)
    assert re.search(r'id="pictures"[^>]*hx-get="/dashboard/pictures" hx-trigger="every 60s"', page)
    for text in ("No request was paid in the last 30 days.", "No UGX payment confirmed in the last 30 days.",
                 "No payment went unmatched or to review in the last 30 days.",
                 "No WhatsApp message was sent or failed in the last 30 days."):
        assert text in page
    assert page.count("No UGX payment confirmed in the last 30 days.") == 2  # by source and by agent
    assert "<svg" not in page.split('id="pictures"')[1].split("</section>")[0]
    partial = client.get("/dashboard/pictures", headers=HTMX).get_data(as_text=True)
    assert partial.startswith('<section id="pictures"')
    assert client.get("/dashboard/pictures").status_code == 302  # opened by hand: the dashboard
