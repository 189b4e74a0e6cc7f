"""Gateway sources against the sandbox ioTec server over real HTTP: polling, collect, callbacks."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
import requests

from jobs import gateway
from jobs.iotec import GatewayError, IotecClient, forget_tokens
from sandbox.gateway import DEFAULT_WALLET_ID, make_app
from sandbox.server import ServerThread
from webapp.domain import apikeys, ledger, sources
from webapp.domain.sources import GATEWAY_META_KEY as META_KEY
from webapp.storage import db
from webapp.storage.models import Payment, PaymentRequest, Source, utcnow

HEADER, HEADER_VALUE = "X-Iotec-Secret", "callback-secret-123"
ENV = {"IOTEC_CLIENT_ID": "sandbox-client", "IOTEC_CLIENT_SECRET": "sandbox-secret",
       "IOTEC_CALLBACK_SECRET": HEADER_VALUE}


@pytest.fixture
def sandbox():
    # Nothing progresses by itself: each test forces the statuses it needs.
    with ServerThread(make_app(advance_after_s=3600)) as server:
        yield server


@pytest.fixture
def env(app, monkeypatch, environ):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    environ.update(ENV)  # for worker processes
    forget_tokens()
    return app


@contextmanager
def inside(app):
    """Domain calls; never held open around test-client requests (they close the connection)."""
    with app.app_context(), db.database.connection_context():
        yield


@pytest.fixture
def gateway_source(env, sandbox):
    config = {"provider": "iotec", "auth_url": sandbox.url, "api_url": sandbox.url,
              "client_id_env": "IOTEC_CLIENT_ID", "client_secret_env": "IOTEC_CLIENT_SECRET",
              "wallet_id": DEFAULT_WALLET_ID, "currency": "ITX",
              "callback_header_name": HEADER, "callback_header_env": "IOTEC_CALLBACK_SECRET"}
    with inside(env):
        return sources.save({"kind": "gateway", "name": "iotec", "interval_s": 5, "config": config}, actor="test")[0]


@pytest.fixture
def source(gateway_source, env):
    """The gateway source, with an app context and a connection held for domain calls."""
    with inside(env):
        yield gateway_source


def control(sandbox, path: str, body: dict | None = None, method: str = "POST") -> dict:
    response = requests.request(method, f"{sandbox.url}/_sandbox{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def stats(sandbox) -> dict:
    return control(sandbox, "/stats", method="GET")


def integrator_collects(sandbox, external_id: str, amount: int = 5000) -> str:
    """What an integrator does at ioTec before registering the request with Paywatch; returns ioTec's id."""
    token = requests.post(f"{sandbox.url}/connect/token", data={
        "client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "client_credentials"},
        timeout=5).json()["access_token"]
    body = {"category": "MobileMoney", "currency": "ITX", "walletId": DEFAULT_WALLET_ID, "payer": "0772123456",
            "amount": amount, "externalId": external_id}
    return requests.post(f"{sandbox.url}/api/collections/collect", json=body,
                         headers={"Authorization": f"Bearer {token}"}, timeout=5).json()["id"]


def force(sandbox, transaction_id: str, status: str, **extra) -> None:
    control(sandbox, f"/transactions/{transaction_id}/status", {"status": status, **extra})


def registered(external_id: str, *, amount: int = 5000, now=None, minutes: int = 15) -> PaymentRequest:
    return ledger.create_request(ledger.NewRequest(
        amount_minor=amount, currency="UGX", customer_name="Jane Doe", customer_phone="+256772123456",
        source="iotec", external_id=external_id, expires_in=timedelta(minutes=minutes)), actor="test", now=now)


def fresh(request: PaymentRequest) -> PaymentRequest:
    return PaymentRequest.get_by_id(request.id)


def polls(request: PaymentRequest) -> int:
    return (fresh(request).meta.get(META_KEY) or {}).get("polls", 0)


# ---------------------------------------------------------------- the token


def test_the_token_is_cached_and_refreshed_a_minute_before_it_expires(source, sandbox):
    t = [1000.0]
    client = IotecClient("iotec", source.config, clock=lambda: t[0])
    first = client.token()
    t[0] += 239
    assert client.token() == first and stats(sandbox)["tokens_issued"] == 1
    t[0] += 2  # 59 s left of 300
    assert client.token() != first and stats(sandbox)["tokens_issued"] == 2


def test_a_token_expiring_mid_run_is_refreshed_once_and_the_pass_goes_on(source, sandbox):
    first, second = registered("EXT-1"), registered("EXT-2")
    for ext in ("EXT-1", "EXT-2"):
        integrator_collects(sandbox, ext)
    gateway.run_pass(source.id)
    issued = stats(sandbox)["tokens_issued"]
    control(sandbox, "/tokens/expire")
    summary = gateway.run_pass(source.id, now=utcnow() + timedelta(seconds=5))
    assert summary["polled"] == 2 and summary["errors"] == []
    assert stats(sandbox)["tokens_issued"] == issued + 1
    assert polls(first) == polls(second) == 2


def test_bad_credentials_raise_a_permanent_error_and_an_alarm(source, sandbox, monkeypatch):
    monkeypatch.setenv("IOTEC_CLIENT_SECRET", "wrong")
    with pytest.raises(GatewayError) as caught:
        IotecClient("iotec", source.config).token()
    assert caught.value.permanent
    registered("EXT-1")
    summary = gateway.run_pass(source.id)
    assert "invalid_client" in summary["errors"][0]
    assert "gateway_auth" in sources.get("iotec").state["alarms"]


def test_both_ioTec_error_shapes_are_read(source, sandbox):
    client = IotecClient("iotec", source.config)
    with pytest.raises(GatewayError, match="Invalid ioTec wallet") as caught:
        client.config = {**client.config, "wallet_id": "00000000-0000-0000-0000-000000000000"}
        client.collect(external_id="X", amount_minor=5000, currency="UGX", payer="+256772123456")
    assert caught.value.permanent and caught.value.code == "BadRequest"
    with pytest.raises(GatewayError, match="Amount") as caught:
        client._api("POST", "/api/collections/collect", json={"payer": "0772123456"})
    assert caught.value.permanent


# ---------------------------------------------------------------- statuses


def test_sent_to_vendor_is_not_paid_and_success_pays_in_the_next_pass(source, sandbox):
    request = registered("EXT-1")
    txn = integrator_collects(sandbox, "EXT-1")
    force(sandbox, txn, "SentToVendor")
    now = utcnow()
    assert gateway.run_pass(source.id, now=now)["pending"] == 1
    assert fresh(request).status == "pending" and Payment.select().count() == 0
    force(sandbox, txn, "Success")
    summary = gateway.run_pass(source.id, now=now + timedelta(seconds=5))
    assert summary["paid"] == 1 and fresh(request).status == "paid"
    payment = Payment.get(Payment.request == request.id)
    vendor_txn = requests.get(f"{sandbox.url}/_sandbox/transactions", timeout=5).json()["transactions"][0]
    assert payment.source == "iotec" and payment.transaction_id == vendor_txn["vendorTransactionId"]
    assert fresh(request).meta[META_KEY]["id"] == txn
    assert gateway.run_pass(source.id, now=now + timedelta(seconds=10))["watched"] == 0


@pytest.mark.parametrize("status,ending", [("Failed", "failed"), ("Rejected", "failed"),
                                           ("RolledBack", "failed"), ("Cancelled", "cancelled")])
def test_an_ending_status_ends_the_request(source, sandbox, status, ending):
    request = registered("EXT-1")
    force(sandbox, integrator_collects(sandbox, "EXT-1"), status)
    gateway.run_pass(source.id)
    assert fresh(request).status == ending and Payment.select().count() == 0


@pytest.mark.parametrize("collected, reported, why", [
    (700, ..., "reports 700 UGX"),
    (4999.5, ..., "4999.5 UGX, not an exact amount"),
    (5000, None, "no amount"),
])
def test_a_success_for_an_inexact_missing_or_other_amount_never_pays_and_goes_to_review(
        source, sandbox, collected, reported, why):
    request = registered("EXT-1", amount=5000)
    txn = integrator_collects(sandbox, "EXT-1", amount=collected)
    force(sandbox, txn, "Success", **({} if reported is ... else {"amount": reported}))
    assert gateway.run_pass(source.id)["review"] == 1
    assert fresh(request).status == "review" and fresh(request).flag == "source_payment_doubtful"
    payment = Payment.get()
    assert payment.status == "review" and why in payment.reason
    assert gateway.run_pass(source.id, now=utcnow() + timedelta(minutes=5))["polled"] == 0  # ioTec said its last word
    assert Payment.select().count() == 1


def test_a_rollback_after_success_flags_the_request(source, sandbox):
    request = registered("EXT-1")
    txn = integrator_collects(sandbox, "EXT-1")
    force(sandbox, txn, "Success")
    gateway.run_pass(source.id)
    view = IotecClient("iotec", source.config).status(txn)
    force(sandbox, txn, "RolledBack")
    assert gateway.apply(source, fresh(request), IotecClient("iotec", source.config).status(txn), utcnow()) \
        == "reversed"
    assert view.paid and fresh(request).flag == "gateway_rolled_back" and fresh(request).status == "paid"


# ---------------------------------------------------------------- the schedule


def test_the_polling_period_grows_with_age_up_to_a_minute():
    period = [gateway.poll_period(timedelta(seconds=s), 5) for s in (0, 119, 120, 239, 240, 480, 960, 3600, 86400)]
    assert period == [5, 5, 10, 10, 20, 40, 60, 60, 60]
    assert gateway.poll_period(timedelta(hours=1), 90) == 90


def test_a_young_request_is_polled_every_pass_and_an_older_one_less_often(source, sandbox):
    start = utcnow()
    young = registered("EXT-Y", now=start)
    old = registered("EXT-O", now=start - timedelta(minutes=3))  # polled every 10 s at this age
    for ext in ("EXT-Y", "EXT-O"):
        integrator_collects(sandbox, ext)
    for step in range(5):  # passes 5 s apart
        gateway.run_pass(source.id, now=start + timedelta(seconds=5 * step))
    assert polls(young) == 5 and polls(old) == 3


def test_a_request_pending_for_ten_minutes_is_still_polled_and_paid(source, sandbox):
    start = utcnow() - timedelta(minutes=11)
    request = registered("EXT-1", now=start, minutes=30)
    txn = integrator_collects(sandbox, "EXT-1")
    assert gateway.run_pass(source.id)["polled"] == 1
    force(sandbox, txn, "Success")
    assert gateway.run_pass(source.id, now=utcnow() + timedelta(seconds=60))["paid"] == 1
    assert fresh(request).status == "paid"


def test_an_expired_request_is_polled_through_the_grace_period_and_pays_for_money_moved_in_time(source, sandbox):
    request = registered("EXT-1", now=utcnow() - timedelta(minutes=20), minutes=15)
    txn = integrator_collects(sandbox, "EXT-1")
    ledger.expire_due()
    assert fresh(request).status == "expired"
    before_expiry = (request.expires_at - timedelta(minutes=1)).timestamp()
    force(sandbox, txn, "Success", at=before_expiry)  # paid in time, reported late
    assert gateway.run_pass(source.id)["paid"] == 1 and fresh(request).status == "paid"
    late = registered("EXT-2", now=utcnow() - timedelta(hours=2), minutes=15)
    ledger.expire_due()
    assert gateway.run_pass(source.id, now=utcnow() + timedelta(seconds=5))["watched"] == 0
    assert fresh(late).status == "expired"


def test_a_success_for_money_that_moved_after_expiry_goes_to_review_flagged_late(source, sandbox):
    request = registered("EXT-1", now=utcnow() - timedelta(minutes=20), minutes=15)
    txn = integrator_collects(sandbox, "EXT-1")
    ledger.expire_due()
    force(sandbox, txn, "Success")  # the money moved now, five minutes after expiry
    assert gateway.run_pass(source.id)["review"] == 1
    payment = Payment.get()
    assert payment.status == "review" and payment.late and fresh(request).status == "expired"


# ---------------------------------------------------------------- through the API, with collect


@pytest.fixture
def api_key(gateway_source, env):
    with inside(env):
        return apikeys.create("integration", "staff")[1]


def post_request(client, key, **fields):
    body = {"amount": "5000", "currency": "UGX", "customer_name": "Jane Doe", "customer_phone": "+256772123456",
            **fields}
    return client.post("/api/v1/requests", json=body, headers={"Authorization": f"Bearer {key}"})


def test_the_api_registers_a_request_for_a_gateway_and_refuses_bad_ones(api_key, client):
    created = post_request(client, api_key, gateway="iotec", external_id="EXT-9")
    assert created.status_code == 201, created.json
    assert created.json["source"] == "iotec" and created.json["external_id"] == "EXT-9"
    unknown = post_request(client, api_key, gateway="nope", external_id="EXT-10")
    assert unknown.status_code == 422 and "nope" in unknown.json["error"]["message"]
    assert post_request(client, api_key, gateway="iotec").status_code == 422
    assert post_request(client, api_key, collect=True).status_code == 422
    assert post_request(client, api_key, gateway="iotec", collect=True, external_id="X").status_code == 422
    again = post_request(client, api_key, gateway="iotec", external_id="EXT-9")
    assert again.json["error"]["code"] == "external_id_taken"


def test_collect_stores_its_own_external_id_and_recovers_a_lost_answer(api_key, client, sandbox, env):
    created = post_request(client, api_key, gateway="iotec", collect=True).json
    with inside(env):
        source = sources.get("iotec")
        request = ledger.find_request(created["reference"])
        assert request.external_id.startswith("PW-") and request.meta[META_KEY]["collect_state"] == "queued"
        control(sandbox, "/faults", {"mode": "drop", "count": 2, "path": "/api/collections"})  # collect + lookup
        assert "unconfirmed" in gateway.run_collect(request.id)
        assert gateway.run_pass(source.id)["pending"] == 1
        collections = control(sandbox, "/transactions", method="GET")["transactions"]
        assert len(collections) == 1 and collections[0]["externalId"] == request.external_id
        assert collections[0]["amount"] == 5000 and collections[0]["payer"] == "256772123456"
        assert fresh(request).meta[META_KEY]["id"] == collections[0]["id"]
        assert gateway.run_collect(request.id)["skipped"] == "already started"
        assert len(control(sandbox, "/transactions", method="GET")["transactions"]) == 1


def test_a_collect_redis_lost_is_started_by_the_next_pass(api_key, client, sandbox, env, redis_control, run_worker):
    redis_control.stop()
    created = post_request(client, api_key, gateway="iotec", collect=True)
    assert created.status_code == 201, created.json
    redis_control.start()  # empty: the collect job was never queued
    with inside(env):
        request = ledger.find_request(created.json["reference"])
        gateway.run_pass(sources.get("iotec").id)
    run_worker(("default",))
    collections = control(sandbox, "/transactions", method="GET")["transactions"]
    assert [c["externalId"] for c in collections] == [request.external_id]


def test_a_refused_collect_fails_the_request(api_key, client, env):
    created = post_request(client, api_key, gateway="iotec", collect=True, amount="100").json  # ioTec minimum: 500
    with inside(env):
        result = gateway.run_collect(ledger.find_request(created["reference"]).id)
        assert "at least 500" in result["refused"]
        assert ledger.find_request(created["reference"]).status == "failed"


def test_a_request_registered_through_the_api_is_paid_within_one_interval(api_key, client, sandbox, env):
    created = post_request(client, api_key, gateway="iotec", collect=True).json
    with inside(env):
        source, request = sources.get("iotec"), ledger.find_request(created["reference"])
        start = utcnow()
        gateway.run_collect(request.id, now=start)
        txn = fresh(request).meta[META_KEY]["id"]
        for step in range(1, 4):
            gateway.run_pass(source.id, now=start + timedelta(seconds=5 * step))
        force(sandbox, txn, "Success")
        gateway.run_pass(source.id, now=start + timedelta(seconds=20))
        assert fresh(request).status == "paid"
    assert client.get(f"/api/v1/requests/{created['reference']}",
                      headers={"Authorization": f"Bearer {api_key}"}).json["status"] == "paid"


# ---------------------------------------------------------------- callbacks


def callback(client, body, headers=None):
    return client.post("/hooks/gateway/iotec", json=body, headers=headers or {})


def test_callbacks_without_the_header_are_refused(gateway_source, client):
    body = {"id": "x", "externalId": "EXT-1", "status": "Success"}
    assert callback(client, body).status_code == 401
    assert callback(client, body, {HEADER: "wrong"}).status_code == 401
    assert client.post("/hooks/gateway/unknown", json=body, headers={HEADER: HEADER_VALUE}).status_code == 404


def test_a_callback_while_redis_is_down_is_503_and_welcomes_a_retry(gateway_source, client, redis_control):
    redis_control.stop()
    response = callback(client, {"id": "txn-1", "status": "Success"}, {HEADER: HEADER_VALUE})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.json["error"]["code"] == "queue_unavailable"


def reread(env, response):
    """Run the re-read the callback queued, here (workers of other test runs share the test Redis)."""
    assert response.status_code == 202, response.json
    queued = response.json["queued"]
    with inside(env):
        return gateway.run_reread(sources.get("iotec").id, queued["id"], queued["external_id"])


def test_a_callback_is_checked_against_the_api_not_believed(gateway_source, sandbox, client, env):
    with inside(env):
        request = registered("EXT-1")
    txn = integrator_collects(sandbox, "EXT-1")
    lie = {"id": txn, "externalId": "EXT-1", "status": "Success", "amount": 5000}
    assert reread(env, callback(client, lie, {HEADER: HEADER_VALUE}))["change"] == "pending"
    with inside(env):
        assert fresh(request).status == "pending" and fresh(request).meta[META_KEY]["status"] == "Pending"
    force(sandbox, txn, "Success")
    assert reread(env, callback(client, {"id": txn}, {HEADER: HEADER_VALUE}))["change"] == "paid"
    with inside(env):
        assert fresh(request).status == "paid"



# ---------------------------------------------------------------- api_url forms, lookups that all fail


def test_iotec_api_url_works_with_and_without_a_trailing_api(source, sandbox):
    assert IotecClient("iotec", {**source.config, "api_url": sandbox.url + "/api/"}).api_url == sandbox.url
    assert IotecClient("iotec", {**source.config, "api_url": sandbox.url}).api_url == sandbox.url
    Source.update(config={**source.config, "api_url": sandbox.url + "/api"}).where(Source.id == source.id).execute()
    request = registered("EXT-API")
    force(sandbox, integrator_collects(sandbox, "EXT-API"), "Success")
    summary = gateway.run_pass(source.id)
    assert summary["polled"] == 1 and summary.get("not_found") is None and summary["paid"] == 1
    assert fresh(request).status == "paid"


def test_lookups_that_all_fail_raise_an_alarm_and_the_first_answer_clears_it(source, sandbox):
    good = source.config["api_url"]
    Source.update(config={**source.config, "api_url": sandbox.url + "/v9"}).where(Source.id == source.id).execute()
    for ext in ("EXT-1", "EXT-2"):
        registered(ext)
        integrator_collects(sandbox, ext)
    start = utcnow()
    assert gateway.run_pass(source.id, now=start)["not_found"] == 2  # 404 on every lookup
    assert "lookups_failing" not in sources.get("iotec").state.get("alarms", {})
    gateway.run_pass(source.id, now=start + timedelta(seconds=200))
    assert "lookups_failing" not in sources.get("iotec").state.get("alarms", {})  # under 5 min: not yet
    gateway.run_pass(source.id, now=start + timedelta(seconds=301))
    alarm = sources.get("iotec").state["alarms"]["lookups_failing"]
    assert "all 6 lookups" in alarm and "/v9" in alarm
    Source.update(config={**source.config, "api_url": good}).where(Source.id == source.id).execute()
    assert gateway.run_pass(source.id, now=start + timedelta(seconds=400))["pending"] == 2
    state = sources.get("iotec").state
    assert "lookups_failing" not in state["alarms"] and state["lookups_failed"] == 0
