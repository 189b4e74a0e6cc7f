"""Outbound webhook endpoints through the API (/api/v1/webhook-endpoints) and the CLI (flask webhooks …)."""
from __future__ import annotations

import pytest

from tests import test_webhooks
from webapp.storage.models import Event, WebhookEndpoint

environ = test_webhooks.environ  # fixtures: private URLs allowed, a sandbox receiver
receiver = test_webhooks.receiver


@pytest.fixture
def api_key(domain):
    from webapp.domain import apikeys

    return {"Authorization": f"Bearer {domain(apikeys.create, 'integrator', 'staff')[1]}"}


def test_the_api_manages_endpoints(client, api_key, domain, receiver):
    created = client.post("/api/v1/webhook-endpoints", headers=api_key,
                          json={"url": receiver.url + "/a", "events": ["request.paid"], "description": "booking"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["request.paid"] and body["enabled"] is True
    listed = client.get("/api/v1/webhook-endpoints", headers=api_key).get_json()["data"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    changed = client.patch(f"/api/v1/webhook-endpoints/{body['id']}", headers=api_key,
                           json={"enabled": False, "events": []})
    assert changed.status_code == 200 and changed.get_json()["enabled"] is False and changed.get_json()["events"] == []
    assert client.get(f"/api/v1/webhook-endpoints/{body['id']}", headers=api_key).get_json()["enabled"] is False
    assert client.delete(f"/api/v1/webhook-endpoints/{body['id']}", headers=api_key).status_code == 204
    assert client.get(f"/api/v1/webhook-endpoints/{body['id']}", headers=api_key).status_code == 404
    assert domain(lambda: Event.select().where(Event.action.startswith("webhook_endpoint.")).count()) == 3


@pytest.mark.parametrize("body, field", [
    ({"url": "http://x.invalid/", "events": ["request.nope"]}, "events"),
    ({"url": "http://x.invalid/", "events": "request.paid"}, "events"),
    ({"url": "not a url"}, "url"),
    ({}, "url"),
    ({"url": "http://127.0.0.1/", "enabled": "yes"}, "enabled"),
])
def test_the_api_names_the_field_at_fault(client, api_key, body, field):
    answer = client.post("/api/v1/webhook-endpoints", headers=api_key, json=body)
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "validation_failed" and field in error["details"]


def test_the_api_needs_a_key(client):
    assert client.get("/api/v1/webhook-endpoints").status_code == 401
    assert client.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1/"}).status_code == 401


def test_the_cli_adds_and_lists_endpoints(runner, domain, receiver):
    added = runner.invoke(args=["webhooks", "add", receiver.url + "/cli", "--events", "request.paid,payment.received"])
    assert added.exit_code == 0, added.output
    assert "whsec_" in added.output and "webhook endpoint 1" in added.output
    listed = runner.invoke(args=["webhooks", "list"])
    assert "/cli" in listed.output and "request.paid, payment.received" in listed.output
    refused = runner.invoke(args=["webhooks", "add", receiver.url, "--events", "nope"])
    assert refused.exit_code != 0 and "unknown event type" in refused.output


def test_the_demo_adds_one_endpoint_at_the_sandbox_receiver(app, domain):
    from webapp.cli_webhooks import DEMO_URL, add_demo_endpoint

    with app.app_context():
        add_demo_endpoint()
        add_demo_endpoint()  # make demo twice: still one
    assert domain(lambda: [(e.url, e.events) for e in WebhookEndpoint.select()]) == [(DEMO_URL, [])]
