"""The demo's traffic speaks the demo's currency and today's date and mostly pays requests that exist:
the sandbox portal and IMAP server, the demo's own source files, and Paywatch's real passes over them."""
from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from jobs import mailbox
from jobs import portal as scraper
from sandbox import demo_traffic
from sandbox.imap import append, start_imap
from sandbox.portal import make_app as make_portal
from sandbox.server import ServerThread
from webapp.config import settings
from webapp.domain import sources
from webapp.storage.models import Payment, PaymentRequest, PaymentStatus, utcnow

DEMO = Path(__file__).resolve().parent.parent / "sandbox" / "demo"
USER, PASSWORD = "payments", "payments-pass"


@pytest.fixture
def demo_world(environ, monkeypatch):
    """The sandbox portal and mailbox the demo runs, and the demo's credentials."""
    values = {"ACME_PORTAL_USER": "demo", "ACME_PORTAL_PASSWORD": "demo-pass",
              "SHOP_IMAP_USER": USER, "SHOP_IMAP_PASSWORD": PASSWORD}
    environ.update(values)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    portal = ServerThread(make_portal(currency="UGX")).start()
    imap = start_imap(users={USER: PASSWORD})
    yield portal.url, imap
    imap.stop()
    portal.stop()


def _demo_source(name: str, **changes) -> int:
    spec = json.loads((DEMO / name).read_text())
    spec["config"].update(changes)
    spec["interval_s"] = 60
    return sources.save(spec, actor="test")[0].id


def test_the_demo_traffic_is_in_ugx_dated_today_and_mostly_pays_open_requests(ctx, demo_world):
    portal_url, imap = demo_world
    portal_id = _demo_source("portal.json", base_url=portal_url)
    mailbox_id = _demo_source("mailbox.json", host=imap.host, port=imap.port)
    traffic = demo_traffic.DemoTraffic(portal_url, lambda raw: append(imap, USER, PASSWORD, "INBOX", raw),
                                       currency=settings().currency, rng=random.Random(7))
    assert settings().currency == "UGX"
    # Ten simulated minutes; Paywatch reads the portal and the mailbox every minute.
    for second in range(600):
        traffic.step()
        if second % 60 == 0:
            scraper.scrape(portal_id)
            mailbox.fetch.__wrapped__(mailbox_id)
    scraper.scrape(portal_id)
    mailbox.fetch.__wrapped__(mailbox_id)

    counts = traffic.counts
    print("demo traffic:", counts)
    assert counts["customers"] >= 20 and counts["mail"] >= 6 and counts["portal"] >= 5, counts
    assert counts["strangers"] >= 1, counts
    rows = requests.get(f"{portal_url}/_sandbox/payments", timeout=10).json()["payments"]
    assert {row["currency"] for row in rows} == {"UGX"}

    zone, today = settings().zone, utcnow().astimezone(settings().zone).date()
    mailed = list(Payment.select().where(Payment.source == "demo-mailbox"))
    assert len(mailed) == counts["mail"] + counts["strangers"]
    assert {p.currency for p in mailed} == {"UGX"}
    assert {p.received_at.astimezone(zone).date() for p in mailed} == {today}
    confirmed = [p for p in mailed if p.status == PaymentStatus.CONFIRMED]
    # Every customer's mail pays their request by itself; only the strangers' wait for staff.
    assert len(confirmed) == counts["mail"], [(p.sender_name, p.status) for p in mailed]
    assert len(confirmed) / len(mailed) >= 0.75
    for payment in confirmed:
        request = PaymentRequest.get_by_id(payment.request_id)
        assert (request.amount_minor, request.customer_phone, request.currency) == (
            payment.amount_minor, payment.sender_phone, "UGX")
    made = list(PaymentRequest.select().where(PaymentRequest.source == "demo-portal"))
    assert {r.currency for r in made} == {"UGX"}
    assert {r.created_at.astimezone(zone).date() for r in made} == {today}


def test_in_another_currency_only_the_portal_pays():
    traffic = demo_traffic.DemoTraffic("http://127.0.0.1:9", lambda raw: None, currency="KES", rng=random.Random(1))
    assert {traffic._fate() for _ in range(200)} == {"portal", "never"}


def test_pay_by_mail_quotes_the_reference_and_is_dated_now():
    delivered: list[bytes] = []
    sample = demo_traffic.pay_by_mail(delivered.append, 5000, name="Jane Doe", phone="0772123456",
                                      reference="PW-7KQ2M9")
    text = delivered[0].decode()
    assert "You have received UGX 5,000 from Jane Doe, 256772123456" in text and "Reason: PW-7KQ2M9" in text
    assert sample.expected["amount_minor"] == 5000 and sample.expected["currency"] == "UGX"
    assert f"{(utcnow() + timedelta(hours=3)):%Y-%m-%d}" in text  # dated now, in Kampala time as MTN writes


def test_the_sandbox_whatsapp_log_page_lists_what_it_received():
    from sandbox.whatsapp import connect_session
    from sandbox.whatsapp import make_app as make_whatsapp

    server = ServerThread(make_whatsapp("key", step_seconds=0.01, ack_delays=None)).start()
    try:
        token = connect_session(server.url, "paywatch", "key")
        sent = requests.post(f"{server.url}/api/paywatch/send-message", timeout=10,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"phone": "256772123456", "message": "Paid: Jane paid UGX 5,000 for PW-7KQ2M9."})
        assert sent.status_code == 201, sent.text
        page = requests.get(f"{server.url}/_sandbox/log", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "+256772123456" in page.text and "Paid: Jane paid UGX 5,000 for PW-7KQ2M9." in page.text
        assert "1 message(s), newest first" in page.text
    finally:
        server.stop()


def test_the_whatsapp_session_page_links_the_sandbox_log_in_the_demo(environ, redis_conn, make_user):
    from webapp import create_app
    from webapp.config import load_settings
    from webapp.storage import db
    from tests.conftest import PASSWORD as USER_PASSWORD

    def page(**env) -> str:
        app = create_app(load_settings({**environ, "WPPCONNECT_URL": "http://127.0.0.1:21465", **env}))
        with app.app_context():
            db.upgrade()
        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = login.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        client.post("/login", data={"email": user.email, "password": USER_PASSWORD, "csrf_token": token})
        return client.get("/notifications/whatsapp").get_data(as_text=True)

    user = make_user("viewer")
    assert 'href="http://127.0.0.1:21465/_sandbox/log"' in page(PAYWATCH_DEMO="1")
    assert "_sandbox/log" not in page()


def test_make_demo_runs_the_sandbox_in_the_demos_currency(tmp_path):
    from webapp.cli import _procfile

    lines = _procfile(tmp_path, True, "UGX").read_text().splitlines()
    assert lines[-1] == "sandbox: python -m sandbox --currency UGX"
    assert _procfile(tmp_path, False, "UGX").name == "Procfile"
