"""Billing-database sources on real MariaDB and PostgreSQL, with the sandbox ioTec gateway.

The billing system's side (the PHP portal inserting rows, cancelling one) is played
by plain SQL on the billing database (tests/billing_helpers.py); Paywatch's side runs
its real passes and write-back jobs (inline, and through a real RQ worker).
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from jobs import billing as billing_jobs
from jobs import gateway
from sandbox.tcp_proxy import TcpProxy
from tests.billing_helpers import REQUIRED, BillingDb, seed_source
from tests.conftest import wait_for
from tests.test_gateway import env, force, gateway_source, integrator_collects, sandbox, source  # noqa: F401 (fixtures)
from webapp.domain import billing_writeback, ledger, sources
from webapp.plumbing import billing_db
from webapp.storage.models import BillingRow, BillingWriteback, Event, PaymentRequest, Source, WritebackStatus, utcnow


@pytest.fixture(params=["mariadb", "postgres"])
def billing(request, monkeypatch, environ):
    try:
        bdb = BillingDb(request.param)
    except billing_db.BillingDbError as exc:
        if REQUIRED[request.param]:
            raise  # CI said this server answers: not answering now is a failure
        pytest.skip(f"the {request.param} leg needs a server that answers: {exc}")
    monkeypatch.setenv("BILLING_DATABASE_URL", bdb.url)
    environ["BILLING_DATABASE_URL"] = bdb.url  # for worker processes
    yield bdb
    billing_db.close_all()
    bdb.drop()


@pytest.fixture
def hotspot(source, billing):
    """The seed's source file (both tables, the billing database's vouchers) beside the gateway source `iotec`."""
    return sources.save(seed_source(), actor="test")[0]


def request_of(row_id: int, table: str = "payment_requests") -> PaymentRequest:
    link = BillingRow.get(BillingRow.table_name == table, BillingRow.row_id == str(row_id))
    return PaymentRequest.get_by_id(link.request_id)


def writebacks(request: PaymentRequest) -> list[BillingWriteback]:
    return list(BillingWriteback.select().where(BillingWriteback.request == request.id).order_by(BillingWriteback.id))


def run_writebacks(request: PaymentRequest) -> list[dict]:
    return [billing_jobs.run_writeback(wb.id) for wb in writebacks(request)]


# ---------------------------------------------------------------- the source file


def test_sources_add_names_the_missing_table_or_column(source, billing):
    spec = seed_source()
    spec["config"]["tables"][0]["phone"] = "msisdn_nope"
    with pytest.raises(sources.SourceError, match="table 'payment_requests' has no column 'msisdn_nope'"):
        sources.save(spec, actor="test")
    spec = seed_source()
    spec["config"]["tables"][1]["table"] = "legacy_txns"
    with pytest.raises(sources.SourceError, match="no table 'legacy_txns'"):
        sources.save(spec, actor="test")
    spec = seed_source()
    del spec["config"]["tables"][0]["external_id"]
    with pytest.raises(sources.SourceError, match=r"tables\[0\] \(payment_requests\) is missing external_id"):
        sources.save(spec, actor="test")
    with pytest.raises(sources.SourceError, match="BILLING_NOPE_URL: is not set"):
        sources.save(seed_source(url_env="BILLING_NOPE_URL"), actor="test")
    saved = sources.save(seed_source(), actor="test")[0]
    assert saved.kind == "database" and saved.interval_s == 5 and sources.PASS_JOBS["database"] == "billing_poll"


# ---------------------------------------------------------------- reading and writing back


def test_pending_rows_in_both_tables_become_paid_with_a_voucher(hotspot, billing, sandbox, source, run_worker):
    billing.add_vouchers("WIFI-AAA1", "WIFI-BBB2")
    new_row = billing.new_request("PR-1001")
    legacy_row = billing.new_transaction("TX-2001", amount=3000)
    ids = {ref: integrator_collects(sandbox, ref, amount=amt) for ref, amt in (("PR-1001", 5000), ("TX-2001", 3000))}

    first = billing_jobs.run_pass(hotspot.id)
    assert first["registered"] == 2 and not first["errors"]
    assert billing_jobs.run_pass(hotspot.id)["registered"] == 0  # idempotent on table + id
    new, legacy = request_of(new_row), request_of(legacy_row, "transactions")
    assert (new.source, new.external_id, new.amount_minor, new.customer_phone) == ("iotec", "PR-1001", 5000,
                                                                                     "+256772123456")
    assert (legacy.external_id, legacy.amount_minor, legacy.currency) == ("TX-2001", 3000, "UGX")

    for txn in ids.values():
        force(sandbox, txn, "Success")
    gateway.run_pass(source.id)
    assert PaymentRequest.get_by_id(new.id).status == "paid"
    run_worker(queues=("default",))  # the write-back jobs the ledger queued with the payment

    codes = {billing.request_row(new_row)["voucher_code"], billing.transaction_row(legacy_row)["voucher_code"]}
    assert codes == {"WIFI-AAA1", "WIFI-BBB2"}
    assert billing.request_row(new_row)["status"] == "paid"
    assert billing.transaction_row(legacy_row)["status"] == "SUCCESS"
    assert sorted(v[1] for v in billing.vouchers()) == [1, 1]
    done = writebacks(new)[0]
    assert (done.status, done.written, done.expected) == ("done", "paid", "pending")
    assert BillingRow.get(BillingRow.request == new.id).status_seen == "paid"  # our write is not their change
    assert billing_jobs.run_pass(hotspot.id)["observed"] == 0  # reading our own write back changes nothing


def test_a_failed_collection_writes_failed_and_no_voucher(hotspot, billing, sandbox, source, redis_conn, run_worker):
    billing.add_vouchers("WIFI-AAA1")
    row = billing.new_request("PR-1002")
    txn = integrator_collects(sandbox, "PR-1002")
    billing_jobs.run_pass(hotspot.id)
    force(sandbox, txn, "Failed")
    gateway.run_pass(source.id)
    request = request_of(row)
    assert request.status == "failed"
    redis_conn.flushdb()  # the queued write-back job is lost with Redis; its outbox row is not
    assert billing_jobs.run_sweep()["queued"] == 1
    run_worker(queues=("default",))
    assert writebacks(request)[0].status == "done"
    assert billing.request_row(row) == {"status": "failed", "voucher_code": None}
    assert billing.vouchers() == [("WIFI-AAA1", 0, None)]
    # A row nobody pays expires with the request: the legacy table's value for it is its failed one.
    legacy = billing.new_transaction("TX-1003")
    billing_jobs.run_pass(hotspot.id)
    assert ledger.expire_due(now=utcnow() + timedelta(hours=1)) == 1
    assert run_writebacks(request_of(legacy, "transactions"))[0]["written"] == "FAILED"
    assert billing.transaction_row(legacy) == {"status": "FAILED", "voucher_code": None}


def test_two_paid_rows_racing_for_the_last_voucher_one_gets_it_the_other_is_flagged(hotspot, billing, sandbox,
                                                                                    source, app):
    billing.add_vouchers("WIFI-LAST")
    rows = [billing.new_request(f"PR-20{i}") for i in (1, 2)]
    for i in (1, 2):
        force(sandbox, integrator_collects(sandbox, f"PR-20{i}"), "Success")
    billing_jobs.run_pass(hotspot.id)
    gateway.run_pass(source.id)
    wb_ids = [writebacks(request_of(r))[0].id for r in rows]
    start, results = threading.Barrier(2), {}

    def write(wb_id: int) -> None:  # two workers at once, each with its own connection
        from webapp.storage import db

        conn = billing_db.Connection(billing_db.parse_url(billing.url)).open()
        with app.app_context(), db.database.connection_context():
            start.wait(timeout=10)
            results[wb_id] = billing_jobs.run_writeback(wb_id, conn=conn)
        conn.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in wb_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(str(r["voucher"]) for r in results.values()) == ["None", "WIFI-LAST"]
    assert sorted(str(billing.request_row(r)["voucher_code"]) for r in rows) == ["None", "WIFI-LAST"]
    assert all(billing.request_row(r)["status"] == "paid" for r in rows)
    flags = sorted(str(request_of(r).flag) for r in rows)
    assert flags == ["None", billing_writeback.VOUCHER_FLAG]
    winner = next(r for r in rows if billing.request_row(r)["voucher_code"] == "WIFI-LAST")
    assert billing.vouchers() == [("WIFI-LAST", 1, winner)]


def test_a_row_the_billing_system_cancelled_meanwhile_is_not_overwritten(hotspot, billing, sandbox, source):
    billing.add_vouchers("WIFI-AAA1")
    row, other = billing.new_request("PR-3001"), billing.new_request("PR-3002")
    txn = integrator_collects(sandbox, "PR-3001")
    billing_jobs.run_pass(hotspot.id)
    # The billing system cancels a row, then the customer's money arrives anyway.
    billing.execute("UPDATE payment_requests SET status = 'cancelled' WHERE id = %s", (row,))
    force(sandbox, txn, "Success")
    gateway.run_pass(source.id)
    request = request_of(row)
    assert request.status == "paid"
    assert run_writebacks(request)[0]["status"] == WritebackStatus.CONFLICT
    assert billing.request_row(row) == {"status": "cancelled", "voucher_code": None}
    assert billing.vouchers() == [("WIFI-AAA1", 0, None)]  # no code spent on it
    assert PaymentRequest.get_by_id(request.id).flag == billing_writeback.CHANGED_FLAG
    # A cancel seen before the gateway speaks ends the request; the write-back writes nothing.
    billing.execute("UPDATE payment_requests SET status = 'cancelled' WHERE id = %s", (other,))
    assert billing_jobs.run_pass(hotspot.id)["observed"] == 1
    cancelled = request_of(other)
    assert cancelled.status == "cancelled"
    assert Event.get(Event.action == "request.cancelled", Event.subject == f"request:{cancelled.reference}").actor \
        == "source:hotspot-billing"
    result = run_writebacks(cancelled)[0]
    assert result["status"] == "done" and billing.request_row(other)["status"] == "cancelled"


def test_database_down_raises_the_alarm_then_the_pass_catches_up(source, billing, sandbox, monkeypatch):
    host, port = billing.sql.target.host, billing.sql.target.port
    proxy = TcpProxy(host, port).start()
    proxied = billing.url.replace(f"@{host}:{port}/", f"@127.0.0.1:{proxy.port}/")
    monkeypatch.setenv("BILLING_DATABASE_URL", proxied)
    try:
        hotspot = sources.save(seed_source(), actor="test")[0]
        paid_row = billing.new_request("PR-4001")
        force(sandbox, integrator_collects(sandbox, "PR-4001"), "Success")
        assert billing_jobs.run_pass(hotspot.id)["registered"] == 1
        proxy.stop()  # the database goes away, its open connection with it
        gateway.run_pass(source.id)  # paid meanwhile: the write-back cannot reach the database
        wb = writebacks(request_of(paid_row))[0]
        assert "error" in billing_jobs.run_writeback(wb.id)
        late_row = billing.new_request("PR-4002")
        down = billing_jobs.run_pass(hotspot.id)
        assert "error" in down
        state = Source.get_by_id(hotspot.id).state
        assert "database_unreachable" in state["alarms"] and not sources.freshness(Source.get_by_id(hotspot.id)).ok
        assert BillingWriteback.get_by_id(wb.id).status == "pending"

        proxy.start()  # back, on the same port
        wait_for(lambda: "error" not in billing_jobs.run_pass(hotspot.id), timeout=15, interval=0.2,
                 message="the pass to reach the database again (after its back-off)")
        assert "database_unreachable" not in Source.get_by_id(hotspot.id).state["alarms"]
        assert request_of(late_row).status == "pending"  # caught up from the cursor
        assert billing_writeback.due(utcnow() + timedelta(minutes=10)) == [wb.id]
        assert billing_jobs.run_writeback(wb.id)["status"] == "done"
        assert billing.request_row(paid_row)["status"] == "paid"
        assert billing_db.opened_count() == 1  # one connection for this process, whatever happened
    finally:
        proxy.stop()


def test_a_voucher_from_our_own_pool_is_written_into_the_row_and_shown_on_the_request_page(
        gateway_source, env, billing, sandbox, client, login_as):
    from tests.test_gateway import inside
    from webapp.domain import vouchers

    with inside(env):  # domain calls; the test client below opens its own connections
        spec = seed_source(voucher_pool="wifi-1day")
        del spec["config"]["vouchers"]
        hotspot = sources.save(spec, actor="test")[0]
        vouchers.import_codes("wifi-1day", ["code", "OURS-0001"], actor="test")
        row = billing.new_transaction("TX-5001", amount=5000)
        txn = integrator_collects(sandbox, "TX-5001")
        billing_jobs.run_pass(hotspot.id)
        force(sandbox, txn, "Success")
        gateway.run_pass(gateway_source.id)
        request = request_of(row, "transactions")
        assert run_writebacks(request)[0]["voucher"] == "OURS-0001"
    assert billing.transaction_row(row) == {"status": "SUCCESS", "voucher_code": "OURS-0001"}
    assert billing.vouchers() == []  # the billing database's own table is not touched

    login_as("viewer")
    page = client.get(f"/requests/{request.reference}").get_data(as_text=True)
    assert "Billing write-back" in page and f"Row <code>{row}</code> of table <code>transactions</code>" in page
    assert "OURS-0001" in page and ">done<" in page


def test_a_source_file_with_a_bad_shape_is_refused_before_any_connection():
    from webapp.domain import billing

    spec = seed_source()["config"]
    for change, message in (
        ({"tables": []}, "tables must be a non-empty list"),
        ({"voucher_pool": "wifi"}, "either voucher_pool"),
        ({"tables": [{**spec["tables"][0], "status": "status; DROP TABLE x"}]}, "plain table or column name"),
        ({"tables": [{**spec["tables"][1], "timezone": "Mars/Olympus"}]}, "unknown time zone"),
        ({"vouchers": {"table": "vouchers"}}, "vouchers is missing id, code, used, request_id, used_value"),
    ):
        with pytest.raises(billing.BillingConfigError, match=message):
            billing.parse_config({**spec, **change})
    parsed = billing.parse_config(spec)
    legacy = parsed.table("transactions")
    assert (legacy.meaning("SUCCESS"), legacy.meaning("CANCELLED"), legacy.meaning("WHATEVER")) == \
        ("paid", "cancelled", None)
    assert (legacy.value_for("expired"), legacy.currency_value) == ("FAILED", "UGX")
