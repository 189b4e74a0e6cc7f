"""The portal scraper (jobs/portal.py) against the sandbox portal over real HTTP, into the real ledger."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from jobs import portal as scraper
from jobs.portal_table import PortalConfig, Unparseable, parse_amount
from sandbox.portal import make_app
from sandbox.server import ServerThread
from tests.conftest import wait_for
from webapp.domain import options, sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Agent, Event, Lead, Notification, Payment, PaymentRequest, Source

USER, PASSWORD = "demo", "demo-pass"
ADMIN_PHONE = "+256700000099"


def classic_config(url: str, **extra) -> dict:
    """The README's example: the sandbox portal's classic skin."""
    return {
        "base_url": url,
        "login": {"url": "/login", "form": "form#login-form",
                  "fields": {"username": "username", "password_input": "password"},
                  "username_env": "ACME_PORTAL_USER", "password_env": "ACME_PORTAL_PASSWORD",
                  "logged_in_selector": "a#logout"},
        "list": {"url": "/payments", "rows": "table#payments tr.payment-row", "next": "div.pager a.next",
                 "max_pages": 20},
        "columns": {"external_id": "ID", "created_at": "Created", "amount": "Amount", "status": "Status",
                    "customer_name": "Customer", "customer_phone": "Phone", "agent_code": "Agent",
                    "reference": "Reference"},
        "status_map": {"Pending": "pending", "Completed": "paid", "Failed": "failed", "Expired": "expired",
                       "Cancelled": "cancelled"},
        "date_format": "%Y-%m-%d %H:%M:%S", "timezone": "Africa/Kampala", "currency": "UGX", **extra,
    }


def ledger_config(url: str, **extra) -> dict:
    """The other skin: other ids, labels, field names, date format, zone and status words."""
    return {
        "base_url": url,
        "login": {"url": "/login", "form": "form.signin", "fields": {"username": "login", "password_input": "pin"},
                  "username_env": "ACME_PORTAL_USER", "password_env": "ACME_PORTAL_PASSWORD",
                  "logged_in_selector": "#account-bar a.signout"},
        "list": {"url": "/payments", "rows": "table#txn-list tr.txn", "next": "ul.pagination a[aria-label=Next]"},
        "columns": {"external_id": "Txn No.", "created_at": "date", "amount": "Amount", "currency": "Currency",
                    "status": "STATE", "customer_name": "Payer", "customer_phone": "MSISDN",
                    "agent_code": "Agent  Code", "reference": "Payment Ref"},
        "status_map": {"PENDING": "pending", "SUCCESS": "paid", "FAILED": "failed", "EXPIRED": "expired",
                       "CANCELLED": "cancelled"},
        "date_format": "%d/%m/%Y %H:%M", "timezone": "UTC", **extra,
    }


CONFIGS = {"classic": classic_config, "ledger": ledger_config}


class Portal:
    """A running sandbox portal and its control endpoints."""

    def __init__(self, url: str):
        self.url = url

    def control(self, path: str, body=None, method: str = "post") -> dict:
        response = requests.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=5)
        assert response.status_code < 300, response.text
        return response.json()

    def add(self, *rows: dict) -> None:
        self.control("payments", list(rows))

    def stats(self) -> dict:
        return self.control("stats", method="get")


@pytest.fixture(scope="module")
def running_servers():
    servers: list[ServerThread] = []
    yield servers
    stoppers = [threading.Thread(target=s.stop) for s in servers]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


@pytest.fixture
def start_portal(running_servers):
    def start(**options) -> Portal:
        options.setdefault("page_size", 3)
        server = ServerThread(make_app(username=USER, password=PASSWORD, **options)).start()
        running_servers.append(server)
        return Portal(server.url)

    return start


@pytest.fixture
def credentials(environ, monkeypatch):
    """The portal's login in the environment (this process's and the workers')."""
    values = {"ACME_PORTAL_USER": USER, "ACME_PORTAL_PASSWORD": PASSWORD}
    environ.update(values)
    for key, value in values.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def ctx(ctx, credentials):
    options.update({"admin_phones": [ADMIN_PHONE]}, actor="test")
    return ctx


def add_source(config: dict, name: str = "acme") -> int:
    source, _ = sources.save({"kind": "portal", "name": name, "interval_s": 60, "config": config}, actor="test")
    return source.id


def ago(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


def row(pid: str, minutes_ago: float, status: str = "Pending", **extra) -> dict:
    return {"id": pid, "created": ago(minutes_ago), "customer": "Jane Doe", "phone": "0772123456",
            "agent": "AG07", "amount": "50000", "status": status, "reference": f"INV-{pid}", **extra}


def request_of(external_id: str) -> PaymentRequest:
    return PaymentRequest.get(PaymentRequest.external_id == external_id)


def alarms(source_id: int) -> dict:
    return Source.get_by_id(source_id).state.get("alarms", {})


@pytest.mark.parametrize("skin", ["classic", "ledger"])
def test_each_skin_imports_rows_with_agents_amounts_statuses_and_times(ctx, start_portal, skin):
    portal = start_portal(skin=skin)
    portal.add(row("TX1", 50, "Completed", amount="75000"), row("TX2", 40, "Failed"),
               row("TX3", 30, "Pending", agent="AG09", phone="+256701000003", amount="5000"),
               row("TX4", 20, "Cancelled"), row("TX5", 10, "Expired"), row("TX6", 5, "Pending", amount="12500.00"))
    source_id = add_source(CONFIGS[skin](portal.url))

    summary = scraper.scrape(source_id)

    assert summary["pages"] == 2 and summary["rows"] == 6 and "error" not in summary
    assert (summary["created"], summary["paid"], PaymentRequest.select().count()) == (5, 1, 6)  # TX1: created paid
    assert {r.external_id: r.status for r in PaymentRequest.select()} == {
        "TX1": "paid", "TX2": "failed", "TX3": "pending", "TX4": "cancelled", "TX5": "expired", "TX6": "pending"}
    tx3 = request_of("TX3")
    assert (tx3.amount_minor, tx3.currency, tx3.customer_phone) == (5000, "UGX", "+256701000003")
    assert tx3.agent.code == "AG09" and Lead.get(Lead.phone == "+256701000003").agent_id == tx3.agent_id
    assert request_of("TX1").amount_minor == 75000 and request_of("TX6").amount_minor == 12500
    listed = {p["id"]: p["created"] for p in portal.control("payments", method="get")["payments"]}
    precision = timedelta(minutes=1) if skin == "ledger" else timedelta(0)  # that skin shows no seconds
    assert abs(tx3.created_at - datetime.fromisoformat(listed["TX3"])) <= precision
    assert Payment.get(Payment.request == request_of("TX1").id).source == "acme"
    stats = portal.stats()
    assert stats["logins"] == 1 and stats["csrf_rejections"] == 0 and stats["failed_logins"] == 0
    assert alarms(source_id) == {}


def test_an_unchanged_rescrape_fetches_one_page_and_changes_nothing(ctx, start_portal):
    portal = start_portal()
    portal.add(*[row(f"TX{i}", 100 - i, "Completed" if i % 2 else "Failed") for i in range(12)],
               row("TX99", 1, "Pending"))
    source_id = add_source(classic_config(portal.url))
    scraper.scrape(source_id)
    portal.control("stats/reset")
    events = Event.select().count()

    again = scraper.scrape(source_id)

    assert portal.stats()["pages_fetched"] <= 2 and portal.stats()["logins"] == 0  # the kept session
    assert again["created"] == again["paid"] == again["ended"] == 0
    assert PaymentRequest.select().count() == 13 and Event.select().count() == events


def test_a_pending_row_is_followed_down_the_pages_until_it_completes(ctx, start_portal):
    portal = start_portal()
    portal.add(row("OLD1", 300, "Completed"), row("PEND", 200, "Pending"), row("NEW0", 100, "Failed"))
    source_id = add_source(classic_config(portal.url))
    scraper.scrape(source_id)
    assert request_of("PEND").status == "pending"
    portal.add(*[row(f"N{i}", 90 - i, "Completed") for i in range(7)])  # PEND is now on page 3
    portal.control("payments/PEND", {"status": "Completed"})

    summary = scraper.scrape(source_id)

    assert request_of("PEND").status == "paid" and summary["paid"] == 1 + 7 and summary["pages"] == 3
    assert PaymentRequest.select().count() == 10
    assert PaymentRequest.select().where(PaymentRequest.external_id == "PEND").count() == 1
    portal.control("stats/reset")
    scraper.scrape(source_id)
    assert portal.stats()["pages_fetched"] == 1  # nothing pending any more: the old pages rest


def test_an_expired_session_costs_exactly_one_relogin(ctx, start_portal):
    portal = start_portal()
    portal.add(row("TX1", 30, "Completed"))
    source_id = add_source(classic_config(portal.url))
    scraper.scrape(source_id)
    portal.control("sessions/expire")
    portal.control("stats/reset")
    portal.add(row("TX2", 1))

    summary = scraper.scrape(source_id)

    assert summary["logins"] == 1 and portal.stats()["logins"] == 1 and portal.stats()["login_redirects"] == 1
    assert request_of("TX2").status == "pending"


def test_reordered_and_renamed_looking_columns_are_still_read_right(ctx, start_portal):
    portal = start_portal()
    portal.control("config", {"columns": ["status", "amount", "agent", "reference", "phone", "customer",
                                          "created", "id"],
                              "labels": {"status": "  STATUS ", "agent": "agent"}})
    portal.add(row("TX1", 10, "Completed", agent="AG03", amount="20000"))
    source_id = add_source(classic_config(portal.url))

    scraper.scrape(source_id)

    tx1 = request_of("TX1")
    assert (tx1.status, tx1.amount_minor, tx1.agent.code, tx1.customer_name) == ("paid", 20000, "AG03", "Jane Doe")


def test_a_removed_column_raises_one_alarm_naming_it_until_it_comes_back(ctx, start_portal):
    portal = start_portal()
    portal.add(row("TX1", 20, "Completed"))
    source_id = add_source(classic_config(portal.url))
    scraper.scrape(source_id)
    portal.control("faults", {"remove_column": ["Agent"]})
    portal.add(row("TX2", 5))

    first, second = scraper.scrape(source_id), scraper.scrape(source_id)

    assert "Agent" in first["error"] and second["error"] == first["error"]
    assert "Agent" in alarms(source_id)["column_missing:agent_code"]
    assert not sources.freshness(Source.get_by_id(source_id)).ok
    assert Event.select().where(Event.action == "source.alarm").count() == 1
    assert Notification.select().where(Notification.phone == ADMIN_PHONE).count() == 1  # one WhatsApp
    assert PaymentRequest.select().count() == 1  # nothing imported without its agent

    portal.control("faults", method="delete")
    scraper.scrape(source_id)
    assert alarms(source_id) == {} and request_of("TX2").agent.code == "AG07"
    assert sources.freshness(Source.get_by_id(source_id)).ok


def test_server_errors_and_throttling_back_off_and_lose_nothing(ctx, start_portal):
    portal = start_portal()
    portal.add(*[row(f"TX{i}", 50 - i) for i in range(5)])
    source_id = add_source(classic_config(portal.url, backoff_s=30))
    portal.control("faults", {"error_5xx": 1, "error_5xx_code": 503})

    failed = scraper.scrape(source_id)
    skipped = scraper.scrape(source_id)

    assert "503" in failed["error"] and failed["backoff_until"] and "backing off" in skipped["skipped"]
    source = Source.get_by_id(source_id)
    assert "503" in source.last_error and source.state["backoff_until"] and source.cursor["backoff"]["delay"] == 30
    portal.control("faults", {"status_429": 1})
    throttled = scraper.scrape(source_id, now=datetime.now(timezone.utc) + timedelta(seconds=31))
    assert "429" in throttled["error"] and Source.get_by_id(source_id).cursor["backoff"]["delay"] == 1  # Retry-After
    done = scraper.scrape(source_id, now=datetime.now(timezone.utc) + timedelta(seconds=33))
    assert "error" not in done and PaymentRequest.select().count() == 5
    assert Source.get_by_id(source_id).cursor["backoff"] is None and Source.get_by_id(source_id).last_error is None


def test_a_refused_login_raises_one_alarm_cleared_by_the_next_good_login(ctx, start_portal):
    portal = start_portal()
    portal.add(row("TX1", 5))
    source_id = add_source(classic_config(portal.url))
    portal.control("faults", {"refuse_logins": True})

    scraper.scrape(source_id)
    summary = scraper.scrape(source_id)

    assert "login refused" in summary["error"] and "login_refused" in alarms(source_id)
    assert Event.select().where(Event.action == "source.alarm").count() == 1
    assert PaymentRequest.select().count() == 0
    portal.control("faults", method="delete")
    scraper.scrape(source_id)
    assert alarms(source_id) == {} and request_of("TX1").status == "pending"


def test_an_unknown_status_is_never_guessed_but_alarmed_and_read_once_mapped(ctx, start_portal):
    portal = start_portal(skin="ledger")
    portal.add(row("TX1", 20, "Completed"), row("TX2", 10, "Pending"))
    config = ledger_config(portal.url)
    del config["status_map"]["SUCCESS"]
    source_id = add_source(config)

    summary = scraper.scrape(source_id)

    assert summary["unparseable"] == 1 and "SUCCESS" in alarms(source_id)["rows_unparseable"]
    assert [r.external_id for r in PaymentRequest.select()] == ["TX2"]
    add_source(ledger_config(portal.url))
    scraper.scrape(source_id)
    assert request_of("TX1").status == "paid" and alarms(source_id) == {}


def test_a_backlog_longer_than_max_pages_is_read_over_several_passes(ctx, start_portal):
    portal = start_portal()
    portal.add(*[row(f"TX{i:02d}", 200 - i, "Completed") for i in range(12)])  # 4 pages
    config = classic_config(portal.url)
    config["list"]["max_pages"] = 2
    source_id = add_source(config)

    first = scraper.scrape(source_id)
    portal.add(row("NEW", 1))
    later = [scraper.scrape(source_id) for _ in range(3)]

    assert first["pages"] == 2 and first["backlog_segments"] == 1
    # Each pass: page 1 (the new row first), then one page of backlog, until it is read.
    assert [s["pages"] for s in later] == [2, 2, 2] and [s["backlog_segments"] for s in later] == [1, 1, 0]
    assert PaymentRequest.select().count() == 13
    assert request_of("NEW").status == "pending"


@pytest.mark.parametrize("text, column, expected", [
    ("UGX 50,000", None, (50000, "UGX")), ("5,000.00", "UGX", (5000, "UGX")), ("50 000 UGX", None, (50000, "UGX")),
    ("KES 1,250.50", None, (125050, "KES")), ("USh 5,000", None, (5000, "UGX")), ("7500", None, (7500, "UGX")),
])
def test_amounts_are_read_with_their_currency(text, column, expected):
    cfg = PortalConfig.from_source(classic_config("http://portal", currency_aliases={"USh": "UGX"}))
    assert parse_amount(text, cfg, column) == expected


@pytest.mark.parametrize("text, column", [("5.000", None), ("UGX 5,000.50", None), ("KES 5", "UGX"),
                                          ("$ 20", None), ("-5,000", None), ("1,23,456", None), ("0", None)])
def test_ambiguous_amounts_are_refused(text, column):
    cfg = PortalConfig.from_source(classic_config("http://portal"))
    with pytest.raises(Unparseable):
        parse_amount(text, cfg, column)


# -- end to end: real workers, the sandbox WhatsApp server ---------------------------------------------
AGENT_PHONE, CUSTOMER_PHONE = "+256700000011", "+256772123456"


@pytest.fixture
def e2e(whatsapp, credentials, app, start_portal):
    with app.app_context(), db.database.connection_context():
        options.update({"pending_alert_seconds": 2, "send_gap_ms": 0}, actor="test")
        Agent.create(name="Sam", code="AG07", phone=AGENT_PHONE)
        portal = start_portal()
        source_id = add_source(classic_config(portal.url))
    return portal, source_id


def notifications(app, external_id: str) -> list[Notification]:
    with app.app_context(), db.database.connection_context():
        return list(Notification.select().join(PaymentRequest).where(PaymentRequest.external_id == external_id))


@pytest.mark.slow
def test_a_pending_row_alerts_agent_and_lead_after_the_delay(e2e, app, whatsapp, worker):
    portal, source_id = e2e
    portal.add(row("TX1", 0))
    jobqueue_enqueue(app, source_id)

    sent = wait_for(lambda: len(whatsapp.messages()) >= 2 and whatsapp.messages(), timeout=30,
                    message="both pending alerts")

    assert sorted(m["phone"] for m in sent) == [AGENT_PHONE.lstrip("+"), CUSTOMER_PHONE.lstrip("+")]
    assert all("still pending" in m["body"] for m in sent)
    # The server has the messages a moment before the worker writes down its answer.
    done = wait_for(lambda: (found := notifications(app, "TX1")) and all(n.status == "sent" for n in found) and found,
                    timeout=20, message="both rows marked sent")
    assert len(done) == 2 and all(n.sent_at >= n.request.created_at + timedelta(seconds=2) for n in done)


@pytest.mark.slow
def test_a_row_completed_before_the_delay_sends_a_confirmation_instead(e2e, app, whatsapp, worker):
    portal, source_id = e2e
    portal.add(row("TX1", 0))
    with app.app_context(), db.database.connection_context():
        scraper.scrape(source_id)
    portal.control("payments/TX1", {"status": "Completed"})
    jobqueue_enqueue(app, source_id)

    wait_for(lambda: len(whatsapp.messages()) >= 2, timeout=30, message="the confirmations")
    wait_for(lambda: all(n.status != "pending" for n in notifications(app, "TX1")), timeout=20, message="rows settled")
    assert all("still pending" not in m["body"] for m in whatsapp.messages())
    kinds = {(n.kind, n.status) for n in notifications(app, "TX1")}
    assert ("pending_alert_customer", "cancelled") in kinds and ("payment_confirmed_customer", "sent") in kinds


def jobqueue_enqueue(app, source_id: int) -> None:
    """Enqueue one pass as the scheduler would; the worker runs it."""
    with app.app_context(), db.database.connection_context():
        jobqueue.enqueue("portal_pass", source_id)


def test_a_paid_at_column_gives_the_rows_own_paid_time():
    from datetime import datetime, timedelta, timezone

    from jobs.portal_table import find_columns, parse_row

    cfg = PortalConfig.from_source(classic_config("http://portal", columns={
        "external_id": "ID", "created_at": "Created", "amount": "Amount", "status": "Status", "paid_at": "Paid"}))
    headers = ["ID", "Created", "Amount", "Status", "Paid"]
    positions, missing = find_columns(headers, cfg)
    assert missing == []
    row = parse_row(["T1", "2026-12-01 09:00:00", "5,000", "Completed", "2026-12-01 09:04:30"], positions, headers,
                    cfg, "acme", "UG")
    assert row.status == "paid" and row.paid_at == datetime(2026, 12, 1, 9, 4, 30, tzinfo=timezone(timedelta(hours=3)))
    pending = parse_row(["T2", "2026-12-01 09:00:00", "5,000", "Pending", ""], positions, headers, cfg, "acme", "UG")
    assert pending.paid_at is None
    with pytest.raises(Unparseable, match="T3"):
        parse_row(["T3", "2026-12-01 09:00:00", "5,000", "Completed", "yesterday"], positions, headers, cfg, "acme",
                  "UG")
