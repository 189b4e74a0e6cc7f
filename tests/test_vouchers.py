"""Voucher pools: import, one voucher per paid request, empty and low-stock alerts, pages, CLI, races."""
from __future__ import annotations

import csv
import io
import multiprocessing

import pytest

from tests.ledger_helpers import new_request
from webapp.domain import options, vouchers
from webapp.storage import db
from webapp.storage.models import Event, Notification, PaymentRequest, Voucher

SPAWN = multiprocessing.get_context("spawn")
ADMIN = "+256772000009"


@pytest.fixture
def ctx(ctx):
    options.update({"admin_phones": ADMIN}, actor="test")
    return ctx


def load(pool: str, *codes: str) -> vouchers.ImportReport:
    return vouchers.import_codes(pool, ["code", *codes], actor="test")


def paid(pool: str = "wifi", phone: str = "+256772123456", **extra) -> PaymentRequest:
    """A request of `pool` with on_paid run as the ledger's hook runs it: inside the payment's transaction."""
    request = new_request(voucher_pool=pool, phone=phone, **extra)
    with db.transaction():
        vouchers.on_paid(request)
    return PaymentRequest.get_by_id(request.id)


def alerts() -> list[Notification]:
    return list(Notification.select().where(Notification.kind == "admin_alert").order_by(Notification.id))


def test_an_import_adds_codes_and_reports_duplicates_and_bad_lines(ctx):
    first = load("wifi", "AAA1", "AAA2", "AAA2")
    assert (first.added, first.duplicates, first.rejected) == (2, ["AAA2"], [])
    second = vouchers.import_codes("wifi", ["AAA1", "AAA3", "has space", "", "x" * 65], actor="test")
    assert second.added == 1 and second.duplicates == ["AAA1"]
    assert [line for line, _, _ in second.rejected] == [3, 5]
    assert vouchers.counts("wifi") == (3, 3)
    assert Event.get(Event.action == "vouchers.imported").details["added"] == 2
    with pytest.raises(vouchers.VoucherError):
        load("bad pool!", "X1")


def test_a_paid_request_gets_exactly_one_voucher_and_the_customer_a_message(ctx):
    load("wifi", *(f"CODE{i}" for i in range(20)))
    request = paid()
    voucher = Voucher.get(Voucher.request == request.id)
    assert voucher.code == "CODE0" and voucher.assigned_at is not None
    with db.transaction():
        assert vouchers.on_paid(request).id == voucher.id  # twice: still the same one
    assert Voucher.select().where(Voucher.request.is_null(False)).count() == 1
    confirmation = Notification(kind="payment_confirmed_customer", phone=request.customer_phone,
                                request=request.id, context={})
    from webapp.config import settings
    from webapp.domain import message_texts

    assert message_texts.context_for(confirmation, settings().zone)["voucher"] == "CODE0"
    assert request.flag is None
    assert vouchers.on_paid(new_request(phone="+256772000001")) is None  # no pool: nothing to give


def test_an_empty_pool_flags_the_request_and_alerts_the_admins_once(ctx):
    load("wifi", "ONLY1")
    assert paid().flag is None
    first, second = paid(phone="+256772000001"), paid(phone="+256772000002")
    assert first.flag == second.flag == "voucher_pool_empty"
    assert not Voucher.select().where(Voucher.request.in_([first.id, second.id])).exists()
    empty = [a for a in alerts() if "is empty" in a.context["text"]]
    assert len(empty) == 1 and empty[0].phone == ADMIN
    load("wifi", "MORE1")  # a new spell: refilled (the all-clear), then empty again, alerts again
    assert len([a for a in alerts() if a.context["text"].startswith("[Paywatch] all clear: voucher pool empty")]) == 1
    paid(phone="+256772000003")
    paid(phone="+256772000004")
    assert len([a for a in alerts() if a.context["text"].startswith("[Paywatch] voucher pool empty")]) == 2


def test_a_pool_running_low_alerts_the_admins_once(ctx):
    load("wifi", *(f"C{i}" for i in range(12)))  # the low mark is 10 left
    paid(phone="+256772000001")
    paid(phone="+256772000002")
    assert alerts() == []
    paid(phone="+256772000003")  # 9 left
    paid(phone="+256772000004")  # 8 left
    low = alerts()
    assert len(low) == 1 and "running low: 9 of 12" in low[0].context["text"]


def test_the_used_codes_export_lists_pool_code_request_and_time(app, client, login_as):
    with app.app_context(), db.database.connection_context():
        load("wifi", "E1", "E2", "E3")
        request = paid()
    login_as("staff")
    response = client.get("/vouchers/wifi/used.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["pool", "code", "request", "assigned_at"]
    assert rows[1][:3] == ["wifi", "E1", request.reference] and len(rows) == 2


def test_the_pools_page_shows_counts_and_imports_a_csv(app, client, login_as):
    login_as("staff")
    page = client.get("/vouchers/import")
    assert page.status_code == 200
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    data = {"csrf_token": token, "pool": "wifi", "file": (io.BytesIO(b"code\nP1\nP2\nP2\nbad code\n"), "codes.csv")}
    done = client.post("/vouchers/import", data=data, content_type="multipart/form-data")
    body = done.get_data(as_text=True)
    assert done.status_code == 200
    assert 'id="import-added">2<' in body and 'id="import-duplicates">1<' in body and 'id="import-rejected">1<' in body
    refused = client.post("/vouchers/import", data={"csrf_token": token, "pool": "no good!", "codes": "X1"})
    assert refused.status_code == 422 and "pool name" in refused.get_data(as_text=True)
    pools = client.get("/vouchers/").get_data(as_text=True)
    assert 'id="pool-wifi"' in pools and "<td>2</td>" in pools


def test_viewers_see_the_pools_but_cannot_import(app, client, login_as):
    login_as("viewer")
    assert client.get("/vouchers/").status_code == 200
    assert client.get("/vouchers/import").status_code == 403
    assert client.get("/vouchers/wifi/used.csv").status_code == 403


def test_the_cli_imports_a_file_and_reports_duplicates(app, runner, tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code\nK1\nK2\nK1\n\n")
    result = runner.invoke(args=["vouchers", "import", "wifi", str(path)])
    assert result.exit_code == 0, result.output
    assert "wifi: 2 added, 1 duplicate(s), 0 rejected" in result.output and "duplicate: K1" in result.output
    again = runner.invoke(args=["vouchers", "import", "wifi", str(path)])
    assert "0 added, 3 duplicate(s)" in again.output
    bad = runner.invoke(args=["vouchers", "import", "no good!", str(path)])
    assert bad.exit_code != 0 and "pool name" in bad.output


# ---------------------------------------------------------------- concurrent payments


def pay_with_voucher(environ: dict, barrier, results, request_id: int) -> None:
    """One process: the ledger's hook for one paid request, released with its rivals."""
    from webapp import create_app
    from webapp.config import load_settings
    from webapp.domain import vouchers
    from webapp.storage import db
    from webapp.storage.models import PaymentRequest

    app = create_app(load_settings(environ))
    with app.app_context(), db.database.connection_context():
        request = PaymentRequest.get_by_id(request_id)
        barrier.wait(timeout=60)
        try:
            with db.transaction():
                voucher = vouchers.on_paid(request)
            results.put(("ok", request_id, voucher.code if voucher else None))
        except Exception as exc:  # reported to the test, which fails with it
            results.put(("crashed", request_id, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_n_concurrent_payments_against_n_minus_one_vouchers(ctx, environ):
    n = 6
    load("race", *(f"R{i}" for i in range(n - 1)))
    ids = [new_request(voucher_pool="race", phone=f"+25677200000{i}").id for i in range(n)]
    barrier, results = SPAWN.Barrier(n), SPAWN.Queue()
    processes = [SPAWN.Process(target=pay_with_voucher, args=(environ, barrier, results, i)) for i in ids]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert not [o for o in outcomes if o[0] == "crashed"], outcomes
    codes = [o[2] for o in outcomes if o[2]]
    assert len(codes) == n - 1 and len(set(codes)) == n - 1
    assert PaymentRequest.select().where(PaymentRequest.flag == "voucher_pool_empty").count() == 1
    assert Voucher.select().where(Voucher.request.is_null()).count() == 0
    assert len([a for a in alerts() if "is empty" in a.context["text"]]) == 1
