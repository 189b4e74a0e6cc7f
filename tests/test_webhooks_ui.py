"""Settings → Webhooks: admins only; create (secret shown once), edit, attempts, resend, replay, rotate."""
from __future__ import annotations

import pytest

from tests import test_webhooks
from webapp.domain import webhooks
from webapp.storage.models import Event, WebhookDelivery, WebhookEndpoint, utcnow

environ = test_webhooks.environ  # fixtures: private URLs allowed, a sandbox receiver
receiver = test_webhooks.receiver


@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_only_admins_reach_the_webhooks_pages(client, auth, login_as, domain, receiver, role):
    hook = domain(webhooks.create_endpoint, receiver.url, actor="test")
    login_as(role)
    token = auth.csrf_token("/")
    assert client.get("/settings/webhooks/").status_code == 403
    assert client.get(f"/settings/webhooks/{hook.id}").status_code == 403
    for path in ("/settings/webhooks/", f"/settings/webhooks/{hook.id}/rotate", f"/settings/webhooks/{hook.id}/replay"):
        assert client.post(path, data={"url": receiver.url, "csrf_token": token}).status_code == 403


def test_a_post_without_the_csrf_token_is_refused(client, login_as, receiver, domain):
    login_as("admin")
    assert client.post("/settings/webhooks/", data={"url": receiver.url}).status_code == 400
    assert domain(WebhookEndpoint.select().count) == 0


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(client, auth, login_as, receiver, domain):
    login_as("admin")
    token = auth.csrf_token("/settings/webhooks/")
    answer = client.post("/settings/webhooks/", data={"url": receiver.url + "/x", "events": ["request.paid"],
                                                      "description": "booking", "enabled": ["0", "1"],
                                                      "csrf_token": token})
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    [hook] = domain(lambda: list(WebhookEndpoint.select()))
    assert hook.secret in answer.get_data(as_text=True) and hook.events == ["request.paid"]
    page = client.get("/settings/webhooks/").get_data(as_text=True)
    assert receiver.url + "/x" in page and hook.secret not in page
    refused = client.post("/settings/webhooks/", data={"url": "ftp://nope", "csrf_token": token})
    assert refused.status_code == 400 and "must be an http" in refused.get_data(as_text=True)


def test_the_endpoint_page_edits_shows_attempts_resends_replays_and_rotates(client, auth, login_as, receiver, domain,
                                                                            app, make_request):
    login_as("admin")
    hook = domain(webhooks.create_endpoint, receiver.url + "/p", ["request.created"], actor="test")
    since = utcnow()
    make_request(4000)
    [delivery] = domain(lambda: list(WebhookDelivery.select()))
    receiver.app.extensions["receiver"].statuses[:] = [400]
    from jobs import webhooks as webhook_jobs

    with app.app_context():
        assert webhook_jobs.deliver(delivery.id) == "failed"
    page = client.get(f"/settings/webhooks/{hook.id}").get_data(as_text=True)
    assert delivery.event_id in page and "injected 400" in page and "Resend" in page
    token = auth.csrf_token(f"/settings/webhooks/{hook.id}")

    saved = client.post(f"/settings/webhooks/{hook.id}", data={
        "url": receiver.url + "/q", "events": ["request.created", "request.paid"], "description": "d",
        "enabled": ["0", "1"], "csrf_token": token})
    assert saved.status_code == 302
    assert domain(WebhookEndpoint.get_by_id, hook.id).url == receiver.url + "/q"

    local = since.astimezone(app.config["PAYWATCH"].zone).replace(tzinfo=None, second=0, microsecond=0)
    replayed = client.post(f"/settings/webhooks/{hook.id}/replay", data={"since": local.isoformat(timespec="minutes"),
                                                                         "csrf_token": token})
    assert replayed.status_code == 302
    assert domain(WebhookDelivery.get_by_id, delivery.id).status == "pending"
    assert client.post(f"/settings/webhooks/{hook.id}/replay", data={"since": "soon", "csrf_token": token}
                       ).status_code == 400

    with app.app_context():
        assert webhook_jobs.deliver(delivery.id) == "delivered"
    assert client.post(f"/settings/webhooks/deliveries/{delivery.id}/resend",
                       data={"csrf_token": token}).status_code == 302
    assert domain(WebhookDelivery.get_by_id, delivery.id).status == "pending"

    rotated = client.post(f"/settings/webhooks/{hook.id}/rotate", data={"csrf_token": token})
    new = domain(WebhookEndpoint.get_by_id, hook.id)
    assert new.secret in rotated.get_data(as_text=True) and new.previous_secret == hook.secret
    actions = domain(lambda: [e.action for e in Event.select().where(Event.action.startswith("webhook"))])
    assert {"webhook_endpoint.changed", "webhook_endpoint.replayed", "webhook_delivery.resent",
            "webhook_endpoint.secret_rotated"} <= set(actions)

    assert client.post(f"/settings/webhooks/{hook.id}/delete", data={"csrf_token": token}).status_code == 302
    assert domain(WebhookEndpoint.select().count) == 0
