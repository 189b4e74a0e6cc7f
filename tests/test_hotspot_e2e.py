"""The hotspot seed end to end: a request registered through the API with a gateway and a
voucher pool is paid when ioTec says Success, and its one voucher reaches the customer
on WhatsApp — real worker, sandbox ioTec gateway, sandbox wppconnect server."""
import pytest
import requests

from sandbox.gateway import DEFAULT_WALLET_ID
from sandbox.gateway import make_app as make_gateway
from sandbox.server import ServerThread
from tests.conftest import wait_for
from webapp.domain import apikeys, options, sources, vouchers
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import PaymentRequest, Voucher

pytestmark = pytest.mark.slow
SECRETS = {"IOTEC_CLIENT_ID": "sandbox-client", "IOTEC_CLIENT_SECRET": "sandbox-secret"}


@pytest.fixture
def gateway_server(environ, monkeypatch):
    """The sandbox ioTec gateway; its credentials go into the environment (request it before `worker`)."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    environ.update(SECRETS)
    with ServerThread(make_gateway(advance_after_s=3600)) as server:
        yield server


def test_a_gateway_request_is_paid_and_its_voucher_delivered(whatsapp, gateway_server, app, client, worker):
    with app.app_context(), db.database.connection_context():
        options.update({"send_gap_ms": 0}, actor="test")
        config = {"provider": "iotec", "auth_url": gateway_server.url, "api_url": gateway_server.url,
                  "client_id_env": "IOTEC_CLIENT_ID", "client_secret_env": "IOTEC_CLIENT_SECRET",
                  "wallet_id": DEFAULT_WALLET_ID, "currency": "ITX"}
        source = sources.save({"kind": "gateway", "name": "hotspot", "interval_s": 5, "config": config},
                               actor="test")[0]
        vouchers.import_codes("wifi-1h", ["WIFI-AAA1", "WIFI-AAA2"], actor="test")
        key = apikeys.create("hotspot", "staff")[1]
    created = client.post("/api/v1/requests", headers={"Authorization": f"Bearer {key}"}, json={
        "amount": "5000", "currency": "UGX", "customer_name": "Jane Doe", "customer_phone": "+256772123456",
        "gateway": "hotspot", "collect": True, "voucher_pool": "wifi-1h"})
    assert created.status_code == 201, created.get_data(as_text=True)
    reference = created.get_json()["reference"]
    transaction = wait_for(lambda: requests.get(f"{gateway_server.url}/_sandbox/transactions", timeout=5)
                           .json()["transactions"], timeout=30, message="Paywatch to start the collection")[0]
    requests.post(f"{gateway_server.url}/_sandbox/transactions/{transaction['id']}/status",
                  json={"status": "Success"}, timeout=5)
    with app.app_context():
        jobqueue.enqueue("gateway_poll", source.id)  # what rq-scheduler does every interval_s
    message = wait_for(lambda: [m for m in whatsapp.messages("+256772123456") if "WIFI-AAA" in m["body"]],
                       timeout=30, message="the voucher on WhatsApp")[0]
    with app.app_context(), db.database.connection_context():
        request = PaymentRequest.get(PaymentRequest.reference == reference)
        voucher = Voucher.get(Voucher.request == request.id)
    assert request.status == "paid" and voucher.code in message["body"]
    api_view = client.get(f"/api/v1/requests/{reference}", headers={"Authorization": f"Bearer {key}"}).get_json()
    assert api_view["voucher"] == voucher.code and api_view["status"] == "paid"
