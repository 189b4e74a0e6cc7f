"""The sandbox ioTec gateway speaks contracts/iotec.md over real HTTP."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
from flask import Flask, request

from sandbox.gateway import DEFAULT_WALLET_ID, make_app
from sandbox.server import ServerThread

STEP = 10  # advance_after_s used by these tests


class Clock:
    """A hand-driven clock for the gateway's `now=`."""

    def __init__(self, start: float = 1_767_225_600.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Gateway:
    """A tiny ioTec client for the tests: token, collect, status, control calls."""

    def __init__(self, url: str):
        self.url = url
        self.token: str | None = None

    def get_token(self, **form) -> requests.Response:
        data = {"client_id": "sandbox-client", "client_secret": "sandbox-secret",
                "grant_type": "client_credentials", **form}
        return requests.post(f"{self.url}/connect/token", data=data, timeout=5)

    def login(self) -> "Gateway":
        self.token = self.get_token().json()["access_token"]
        return self

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def collect(self, timeout: float = 5, **fields) -> requests.Response:
        body = {"category": "MobileMoney", "currency": "ITX", "walletId": DEFAULT_WALLET_ID,
                "payer": "0111777771", "amount": 700, "externalId": "PW-1", **fields}
        body = {k: v for k, v in body.items() if v is not ...}
        return requests.post(f"{self.url}/api/collections/collect", json=body,
                             headers=self.headers(), timeout=timeout)

    def status(self, id: str) -> requests.Response:
        return requests.get(f"{self.url}/api/collections/status/{id}", headers=self.headers(), timeout=5)

    def by_external_id(self, ext: str) -> requests.Response:
        return requests.get(f"{self.url}/api/collections/external-id/{ext}",
                            headers=self.headers(), timeout=5)

    def control(self, method: str, endpoint: str, **body) -> requests.Response:
        return requests.request(method, f"{self.url}/_sandbox/{endpoint}", json=body or None, timeout=5)


class Receiver:
    """A callback receiver on its own ServerThread; records (headers, body) pairs."""

    def __init__(self):
        self.calls: list[tuple[dict, dict]] = []
        self.cond = threading.Condition()
        app = Flask("receiver")
        app.add_url_rule("/hook", "hook", self.hook, methods=["POST"])
        self.server = ServerThread(app)

    def hook(self):
        with self.cond:
            self.calls.append((dict(request.headers), request.get_json()))
            self.cond.notify_all()
        return ""

    def wait_for(self, n: int, timeout: float = 5) -> list[tuple[dict, dict]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= n, timeout), self.calls
            return list(self.calls)


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def running(clock):
    # One gateway per module, reset before each test: stopping a ServerThread costs 0.5 s.
    with ServerThread(make_app(now=clock, advance_after_s=STEP)) as srv:
        yield srv


@pytest.fixture
def server(running):
    requests.post(f"{running.url}/_sandbox/reset", timeout=5).raise_for_status()
    return running


@pytest.fixture
def gw(server):
    return Gateway(server.url).login()


@pytest.fixture(scope="module")
def running_receiver():
    r = Receiver()
    with r.server:
        yield r


@pytest.fixture
def receiver(running_receiver):
    with running_receiver.cond:
        running_receiver.calls.clear()
    return running_receiver


def wait_until(predicate, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.02)


def test_it_issues_a_300_second_bearer_token(server):
    r = Gateway(server.url).get_token()
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] == 300 and body["token_type"] == "Bearer"
    assert body["access_token"].count(".") == 2 and body["scope"]


def test_it_accepts_client_credentials_in_basic_auth(server):
    r = requests.post(f"{server.url}/connect/token", data={"grant_type": "client_credentials"},
                      auth=("sandbox-client", "sandbox-secret"), timeout=5)
    assert r.status_code == 200


def test_a_wrong_secret_is_invalid_client(server):
    r = Gateway(server.url).get_token(client_secret="nope")
    assert (r.status_code, r.json()) == (400, {"error": "invalid_client"})


def test_another_grant_type_is_unsupported(server):
    r = Gateway(server.url).get_token(grant_type="password")
    assert (r.status_code, r.json()) == (400, {"error": "unsupported_grant_type"})


def test_the_api_answers_401_with_an_empty_body_without_a_token(server):
    anonymous = Gateway(server.url)
    for r in (anonymous.collect(), anonymous.status("x"), anonymous.by_external_id("PW-1")):
        assert (r.status_code, r.content) == (401, b"")


def test_an_unknown_token_is_401(gw):
    gw.token = "made.up.token"
    assert gw.collect().status_code == 401


def test_a_token_stops_working_when_its_300_seconds_are_up(gw, clock):
    clock.advance(299)
    assert gw.collect().status_code == 200
    clock.advance(1)
    assert gw.collect().status_code == 401


def test_the_token_lifetime_is_configurable(clock):
    with ServerThread(make_app(now=clock, token_ttl_s=60)) as srv:
        g = Gateway(srv.url)
        assert g.get_token().json()["expires_in"] == 60
        g.login()
        clock.advance(60)
        assert g.collect().status_code == 401


def test_expiring_tokens_from_control_makes_every_token_401(gw):
    assert gw.control("POST", "tokens/expire").json() == {"expired": 1}
    assert gw.collect().status_code == 401


def test_collect_returns_a_pending_collection_view_model(gw):
    r = gw.collect(payer="256772123456", amount=700, externalId="PW-42", payerName="Amina",
                   payerNote="Invoice PW-42", payeeNote="shop", currency="UGX")
    assert r.status_code == 200
    c = r.json()
    assert c["status"] == "Pending" and c["statusCode"] == "pending" and c["statusMessage"]
    assert (c["externalId"], c["amount"], c["currency"], c["payer"]) == ("PW-42", 700, "UGX", "256772123456")
    assert (c["payerName"], c["payerNote"], c["payeeNote"]) == ("Amina", "Invoice PW-42", "shop")
    assert c["wallet"]["id"] == DEFAULT_WALLET_ID and c["vendor"] == "Mtn"
    assert c["vendorTransactionId"] is None and c["transactions"] == []
    assert c["lastUpdated"] is None and c["processedAt"] is None and c["createdAt"].endswith("Z")
    assert c["totalTransactionCharge"] == c["transactionCharge"] + c["vendorCharge"]
    assert len(c["id"]) == 36


def test_the_vendor_follows_the_payer_prefix(gw):
    assert gw.collect(payer="0752123456").json()["vendor"] == "Airtel"
    assert gw.collect(payer="0111777771").json()["vendor"] == "Mock"


def test_collect_requires_a_payer(gw):
    r = gw.collect(payer=...)
    assert r.status_code == 400
    assert r.json() == {"message": "Payer is required", "code": "BadRequest"}


def test_collect_rejects_an_amount_below_500(gw):
    r = gw.collect(amount=499)
    assert r.status_code == 400 and r.json()["code"] == "BadRequest" and "500" in r.json()["message"]


def test_a_missing_amount_is_answered_as_problem_details(gw):
    r = gw.collect(amount=...)
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 400 and body["title"] and "Amount" in body["errors"]


def test_a_non_numeric_amount_is_answered_as_problem_details(gw):
    r = gw.collect(amount="700")
    assert r.status_code == 400 and "$.amount" in r.json()["errors"]


def test_a_foreign_wallet_is_an_invalid_ioTec_wallet(gw):
    r = gw.collect(walletId="00000000-0000-0000-0000-000000000000")
    assert (r.status_code, r.json()) == (400, {"message": "Invalid ioTec wallet", "code": "BadRequest"})


def test_status_by_id_and_by_external_id_return_the_same_collection(gw):
    created = gw.collect(externalId="PW-7").json()
    by_id, by_ext = gw.status(created["id"]), gw.by_external_id("PW-7")
    assert by_id.status_code == by_ext.status_code == 200
    assert by_id.json() == by_ext.json() == created


def test_unknown_ids_and_external_ids_are_404(gw):
    assert gw.status("2c0f3a57-9d0e-4b51-8d3c-7b2f1a6e9c40").status_code == 404
    assert gw.by_external_id("never-sent").status_code == 404


def test_an_external_id_may_be_reused_and_the_newest_is_returned(gw, clock):
    first = gw.collect(externalId="dup").json()
    clock.advance(1)
    second = gw.collect(externalId="dup").json()
    assert first["id"] != second["id"]
    assert gw.by_external_id("dup").json()["id"] == second["id"]


@pytest.mark.parametrize(("payer", "path"), [
    ("0111777771", ["Pending", "SentToVendor", "Success"]),
    ("256111777775", ["Pending", "SentToVendor", "Success"]),
    ("0111777991", ["Pending", "SentToVendor", "Failed"]),
    ("256111777999", ["Pending", "SentToVendor", "Failed"]),
    ("0111777781", ["Pending", "Pending", "Pending"]),
    ("0111777791", ["Pending", "SentToVendor", "SentToVendor"]),
    ("0772123456", ["Pending", "SentToVendor", "Success"]),
])
def test_the_payer_number_decides_the_progression(gw, clock, payer, path):
    id = gw.collect(payer=payer).json()["id"]
    seen = []
    for _ in path:
        seen.append(gw.status(id).json()["status"])
        clock.advance(STEP)
    assert seen == path


def test_success_carries_a_vendor_transaction_id_and_processed_at(gw, clock):
    id = gw.collect(payer="0111777771").json()["id"]
    clock.advance(2 * STEP)
    c = gw.status(id).json()
    assert c["status"] == "Success" and c["vendorTransactionId"] and c["processedAt"]


def test_sent_to_vendor_is_not_final(gw, clock):
    id = gw.collect(payer="0111777791").json()["id"]
    clock.advance(25 * STEP)
    c = gw.status(id).json()
    assert c["status"] == "SentToVendor" and c["processedAt"] is None
    assert c["vendorTransactionId"] is None


def test_callbacks_arrive_with_the_static_header(gw, clock, receiver):
    gw.control("PUT", "callback", url=f"{receiver.server.url}/hook",
               header_name="X-Iotec-Secret", header_value="s3cret")
    id = gw.collect(payer="0111777771").json()["id"]
    clock.advance(2 * STEP)
    gw.control("POST", "advance")
    calls = receiver.wait_for(2)
    assert [body["status"] for _, body in calls] == ["SentToVendor", "Success"]
    assert all(h["X-Iotec-Secret"] == "s3cret" and body["id"] == id for h, body in calls)


def test_callbacks_can_be_configured_in_the_factory(clock, receiver):
    app = make_app(now=clock, advance_after_s=0, callback_url=f"{receiver.server.url}/hook",
                   callback_header_name="X-Key", callback_header_value="k")
    with ServerThread(app) as srv:
        g = Gateway(srv.url).login()
        g.collect(payer="0111777991")
        g.control("POST", "advance")
        calls = receiver.wait_for(2)
    assert [body["status"] for _, body in calls] == ["SentToVendor", "Failed"]
    assert calls[0][0]["X-Key"] == "k"


def test_a_failing_callback_is_only_counted(gw, clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    gw.control("PUT", "callback", url=dead, header_name="X", header_value="y")
    id = gw.collect(payer="0111777771").json()["id"]
    clock.advance(2 * STEP)
    assert gw.status(id).json()["status"] == "Success"
    wait_until(lambda: gw.control("GET", "stats").json()["callbacks_failed"] == 2)


def test_forcing_a_status_applies_now_and_stops_the_progression(gw, clock):
    id = gw.collect(payer="0111777781").json()["id"]
    assert gw.control("POST", f"transactions/{id}/status", status="Success").json()["status"] == "Success"
    assert gw.status(id).json()["status"] == "Success"
    gw.control("POST", f"transactions/{id}/status", status="RolledBack")
    clock.advance(10 * STEP)
    assert gw.status(id).json()["status"] == "RolledBack"


def test_forcing_an_unknown_status_or_transaction_is_refused(gw):
    id = gw.collect().json()["id"]
    assert gw.control("POST", f"transactions/{id}/status", status="Paid").status_code == 400
    assert gw.control("POST", "transactions/nope/status", status="Success").status_code == 404


def test_an_outcome_can_be_set_for_a_payer(gw, clock):
    gw.control("POST", "outcomes", payer="+256772000001", outcome="Failed")
    failing = gw.collect(payer="0772000001").json()["id"]
    other = gw.collect(payer="0772000002").json()["id"]
    clock.advance(2 * STEP)
    assert gw.status(failing).json()["status"] == "Failed"
    assert gw.status(other).json()["status"] == "Success"


def test_the_default_outcome_can_be_changed(gw, clock):
    gw.control("POST", "outcomes", outcome="Failed")
    id = gw.collect(payer="0772000003").json()["id"]
    clock.advance(2 * STEP)
    assert gw.status(id).json()["status"] == "Failed"


def test_listing_transactions_shows_each_with_its_outcome(gw):
    gw.collect(payer="0111777991", externalId="a")
    gw.collect(payer="0111777771", externalId="b")
    listed = gw.control("GET", "transactions").json()["transactions"]
    assert [(t["externalId"], t["sandboxOutcome"]) for t in listed] == [("a", "Failed"), ("b", "Success")]


def test_an_injected_error_answers_5xx_and_creates_nothing(gw):
    gw.control("POST", "faults", mode="error", status=503, path="/api/collections/collect")
    assert gw.collect(externalId="lost").status_code == 503
    assert gw.by_external_id("lost").status_code == 404
    assert gw.collect(externalId="lost").status_code == 200


def test_a_dropped_collect_response_can_be_recovered_by_external_id(gw):
    gw.control("POST", "faults", mode="drop", path="/api/collections/collect")
    with pytest.raises(requests.ConnectionError):
        gw.collect(externalId="PW-lost")
    recovered = gw.by_external_id("PW-lost")
    assert recovered.status_code == 200 and recovered.json()["status"] == "Pending"


def test_a_delayed_answer_times_the_client_out_but_the_work_is_done(gw):
    gw.control("POST", "faults", mode="delay", delay_s=30, path="/api/collections/collect")
    with pytest.raises(requests.ReadTimeout):
        gw.collect(externalId="PW-slow", timeout=0.3)
    assert gw.by_external_id("PW-slow").status_code == 200
    gw.control("POST", "reset")  # releases the held answer


def test_faults_are_used_up_after_count_requests(gw):
    gw.control("POST", "faults", mode="error", count=2)
    assert [gw.collect().status_code for _ in range(3)] == [503, 503, 200]
    assert gw.control("GET", "faults").json() == {"faults": []}


def test_reset_forgets_collections_tokens_and_stats(gw):
    gw.collect(externalId="gone")
    gw.control("POST", "reset")
    assert gw.collect().status_code == 401
    gw.login()
    assert gw.by_external_id("gone").status_code == 404
    assert gw.control("GET", "stats").json()["collects"] == 0


def test_stats_count_token_requests_collects_and_status_reads(gw):
    gw.get_token(client_secret="bad")
    id = gw.collect().json()["id"]
    gw.status(id)
    gw.by_external_id("PW-1")
    stats = gw.control("GET", "stats").json()
    assert (stats["token_requests"], stats["tokens_issued"]) == (2, 1)
    assert (stats["collects"], stats["status_reads"]) == (1, 2)


def test_make_app_refuses_an_unknown_default_outcome():
    with pytest.raises(ValueError, match="default_outcome"):
        make_app(default_outcome="Paid")
