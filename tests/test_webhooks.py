"""Outbound webhooks: events written with the change, signed Standard Webhooks deliveries to the
sandbox receiver by real RQ workers, retries, 410, rotation, replay, a Redis flush, private URLs."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from sandbox.server import ServerThread
from sandbox.webhook_receiver import make_app as make_receiver
from tests.conftest import wait_for
from webapp.domain import ledger, options, webhook_delivery, webhooks
from webapp.storage import db
from webapp.storage.models import Notification, WebhookDelivery, WebhookEndpoint, utcnow


@pytest.fixture
def environ(environ):
    return {**environ, "PAYWATCH_WEBHOOKS_ALLOW_PRIVATE": "1"}


@pytest.fixture
def receiver():
    server = ServerThread(make_receiver()).start()
    yield server
    server.stop()


def state(server):
    return server.app.extensions["receiver"]


def faults(server, statuses, **extra):
    state(server).statuses[:] = statuses
    state(server).retry_after = extra.get("retry_after")


def endpoint(domain, receiver, events=None, path="/hooks"):
    return domain(webhooks.create_endpoint, receiver.url + path, events, actor="test")


def pay(domain, request, txn="TX123456"):
    obs = ledger.PaymentObservation(source="api", source_ref=f"ref-{txn}", amount_minor=request.amount_minor,
                                    currency=request.currency, received_at=utcnow(), transaction_id=txn,
                                    note=request.reference)
    return domain(ledger.ingest_payment, obs, actor="test")


def deliveries(domain, **where):
    def read():
        query = WebhookDelivery.select().order_by(WebhookDelivery.id)
        for name, value in where.items():
            query = query.where(getattr(WebhookDelivery, name) == value)
        return list(query)

    return domain(read)


@pytest.fixture
def run_job(app):
    """Run a job function in this process as a worker would (its own connection, opened and closed)."""

    def run(name, *args):
        from jobs import webhooks as webhook_jobs

        with app.app_context():
            return getattr(webhook_jobs, name)(*args)

    return run


def published_signature(secret: str, msg_id: str, timestamp: str, body: str) -> str:
    """The Standard Webhooks algorithm written out, independent of any library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# ------------------------------------------------------------------ end to end, real worker


def test_a_paid_request_reaches_the_receiver_signed_with_the_published_algorithm(domain, make_request, receiver,
                                                                                  worker):
    hook = endpoint(domain, receiver, ["request.paid"])
    request = make_request(5000, customer_name="Jane")
    pay(domain, request)
    [got] = state(receiver).wait_for(1, timeout=20)
    headers, body = got["headers"], got["body"]
    assert headers["webhook-signature"] == published_signature(hook.secret, headers["webhook-id"],
                                                               headers["webhook-timestamp"], body)
    Webhook(hook.secret).verify(body, headers)  # and the maintained library agrees
    event = json.loads(body)
    assert event["type"] == "request.paid"
    assert event["data"]["reference"] == request.reference and event["data"]["status"] == "paid"
    assert event["data"]["amount"] == "5000" and event["data"]["payments"][0]["transaction_id"] == "TX123456"
    [delivery] = deliveries(domain)  # only the type the endpoint asked for
    assert delivery.event_id == headers["webhook-id"] and delivery.event == "request.paid"
    wait_for(lambda: deliveries(domain)[0].status == "delivered", message="the delivery to be recorded")


def test_a_500_then_200_gives_two_attempts_and_one_success(domain, make_request, receiver, worker):
    endpoint(domain, receiver, ["request.created"])
    faults(receiver, [500])
    make_request(7000)
    got = state(receiver).wait_for(2, timeout=30)
    assert [g["status"] for g in got] == [500, 200]
    assert got[0]["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"]  # stable across retries
    assert got[1]["received_at"] - got[0]["received_at"] >= 4.4  # 5 s ± 10 %
    wait_for(lambda: deliveries(domain)[0].status == "delivered", message="delivered")
    [delivery] = deliveries(domain)
    log = domain(webhook_delivery.attempts_of, delivery.id)
    assert delivery.attempts == 2 and [a.status_code for a in log] == [500, 200]
    assert "injected 500" in log[0].response_excerpt and all(a.duration_ms >= 0 for a in log)


def test_a_redis_flush_does_not_lose_a_delivery(domain, run_job, receiver, redis_conn, run_worker, make_request):
    hook = endpoint(domain, receiver)
    request = make_request(3000)
    redis_conn.flushdb()  # the job of request.created is gone; the row is not
    [delivery] = deliveries(domain)
    domain(lambda: WebhookDelivery.update(next_attempt_at=utcnow() - timedelta(seconds=30))
           .where(WebhookDelivery.id == delivery.id).execute())  # due long ago: its worker was down
    assert run_job("resend_lost_deliveries") == {"stuck": 0, "requeued": 1}
    assert run_job("resend_lost_deliveries") == {"stuck": 0, "requeued": 0}  # its job is waiting
    run_worker(queues=("fast",))
    [got] = state(receiver).received
    assert json.loads(got["body"])["data"]["reference"] == request.reference
    assert deliveries(domain)[0].status == "delivered" and hook.id == deliveries(domain)[0].endpoint_id


# ------------------------------------------------------------------ outcomes (the job run inline, real HTTP)


def test_a_410_stops_and_disables_the_endpoint_with_an_admin_alert(domain, run_job, receiver, make_request):
    domain(options.update, {"admin_phones": "+256772000001"}, actor="test")
    hook = endpoint(domain, receiver, ["request.created", "request.cancelled"])
    faults(receiver, [410])
    request = make_request(4000)
    [delivery] = deliveries(domain)
    assert run_job("deliver", delivery.id) == "failed"
    hook = domain(WebhookEndpoint.get_by_id, hook.id)
    assert not hook.is_active and "410" in hook.disabled_reason
    alerts = domain(lambda: [n.context["text"] for n in Notification.select().where(Notification.kind == "admin_alert")])
    assert alerts and "disabled" in alerts[0]
    domain(ledger.cancel_request, request.reference, actor="test")
    assert len(deliveries(domain)) == 1  # a disabled endpoint gets no new events
    assert run_job("deliver", delivery.id) is None and len(state(receiver).received) == 1


def test_4xx_stops_but_408_409_429_retry_honouring_retry_after(domain, run_job, receiver, make_request):
    endpoint(domain, receiver, ["request.created"])
    faults(receiver, [429, 404], retry_after=120)
    make_request(4000)
    [delivery] = deliveries(domain)
    before = utcnow()
    assert run_job("deliver", delivery.id) == "pending"
    delivery = deliveries(domain)[0]
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)  # Retry-After beats the 5 s step
    domain(lambda: WebhookDelivery.update(next_attempt_at=utcnow()).where(WebhookDelivery.id == delivery.id).execute())
    assert run_job("deliver", delivery.id) == "failed"
    assert deliveries(domain)[0].last_status == 404 and deliveries(domain)[0].attempts == 2


def test_the_retry_schedule_has_jitter_and_ends_after_eight_attempts():
    answer = webhook_delivery.Answer(503, 10)
    for attempts, base in enumerate([5, 300, 1800, 7200, 18000, 36000, 36000], start=1):
        delay = webhook_delivery.next_delay(attempts, answer)
        assert base * 0.9 <= delay <= base * 1.1
    assert webhook_delivery.next_delay(8, answer) is None
    assert webhook_delivery.next_delay(1, webhook_delivery.Answer(None, 10000, error="timeout")) is not None
    for code in (408, 409, 429):
        assert webhook_delivery.next_delay(1, webhook_delivery.Answer(code, 5)) is not None
    for code in (400, 401, 404, 410, 422):
        assert webhook_delivery.next_delay(1, webhook_delivery.Answer(code, 5)) is None


def test_an_endpoint_failing_for_five_days_is_disabled_with_an_alert(domain, run_job, receiver, make_request):
    domain(options.update, {"admin_phones": "+256772000001"}, actor="test")
    hook = endpoint(domain, receiver, ["request.created"])
    make_request(4000)
    make_request(4100)
    first, second = deliveries(domain)
    domain(lambda: WebhookEndpoint.update(failing_since=utcnow() - timedelta(days=4, hours=23))
           .where(WebhookEndpoint.id == hook.id).execute())
    faults(receiver, [500])
    assert run_job("deliver", first.id) == "pending"
    assert domain(WebhookEndpoint.get_by_id, hook.id).is_active  # not five days yet
    domain(lambda: WebhookEndpoint.update(failing_since=utcnow() - timedelta(days=5, minutes=1))
           .where(WebhookEndpoint.id == hook.id).execute())
    faults(receiver, [500])
    assert run_job("deliver", second.id) == "failed"  # disabling fails what waits
    hook = domain(WebhookEndpoint.get_by_id, hook.id)
    assert not hook.is_active and "every delivery failed since" in hook.disabled_reason
    assert [d.status for d in deliveries(domain)] == ["failed", "failed"]
    assert domain(lambda: Notification.select().where(Notification.kind == "admin_alert").count()) == 1


def test_a_success_clears_the_failure_record(domain, run_job, receiver, make_request):
    hook = endpoint(domain, receiver, ["request.created"])
    make_request(4000)
    domain(lambda: WebhookEndpoint.update(failing_since=utcnow() - timedelta(days=1)).execute())
    assert run_job("deliver", deliveries(domain)[0].id) == "delivered"
    assert domain(WebhookEndpoint.get_by_id, hook.id).failing_since is None


def test_rotation_keeps_old_receivers_valid_during_the_overlap(domain, run_job, receiver, make_request):
    hook = endpoint(domain, receiver, ["request.created"])
    old_secret = hook.secret
    rotated = domain(webhooks.rotate_secret, hook.id, actor="test")
    assert rotated.secret != old_secret and rotated.secret.startswith("whsec_")
    make_request(4000)
    run_job("deliver", deliveries(domain)[0].id)
    got = state(receiver).received[-1]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(got["body"], got["headers"])  # a receiver not yet updated
    Webhook(rotated.secret).verify(got["body"], got["headers"])  # and one that is
    # After the overlap only the new secret signs.
    domain(lambda: WebhookEndpoint.update(previous_secret_until=utcnow() - timedelta(seconds=1)).execute())
    make_request(4100)
    run_job("deliver", deliveries(domain)[1].id)
    got = state(receiver).received[-1]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 1
    Webhook(rotated.secret).verify(got["body"], got["headers"])
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old_secret).verify(got["body"], got["headers"])


def test_replay_sends_only_what_failed_and_resend_sends_one(domain, run_job, receiver, make_request):
    endpoint(domain, receiver, ["request.created"])
    since = utcnow()
    for amount in (4000, 4100, 4200):
        make_request(amount)
    first, second, third = deliveries(domain)
    faults(receiver, [200, 400, 400])
    for d in (first, second, third):
        run_job("deliver", d.id)
    assert [d.status for d in deliveries(domain)] == ["delivered", "failed", "failed"]
    hook_id = first.endpoint_id
    assert domain(webhook_delivery.replay_failed, hook_id, since, actor="test") == 2
    for d in (second, third):
        assert run_job("deliver", d.id) == "delivered"
    replayed = [g["headers"]["webhook-id"] for g in state(receiver).received[3:]]
    assert replayed == [second.event_id, third.event_id]  # the same events, nothing that had arrived
    assert domain(webhook_delivery.replay_failed, hook_id, since, actor="test") == 0
    domain(webhook_delivery.resend, first.id, actor="test")
    assert run_job("deliver", first.id) == "delivered"
    assert state(receiver).received[-1]["headers"]["webhook-id"] == first.event_id
    with pytest.raises(webhooks.WebhookError):
        domain(webhook_delivery.resend, 9999, actor="test")


# ------------------------------------------------------------------ events and the transaction


def test_events_are_written_in_the_transaction_of_the_change(domain, receiver, make_request):
    endpoint(domain, receiver)  # all events
    request = make_request(6000)
    pay(domain, request)

    def roll_back():
        with db.transaction():
            webhooks.request_event("request.cancelled", request)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        domain(roll_back)
    kinds = [d.event for d in deliveries(domain)]
    assert kinds == ["request.created", "payment.received", "request.paid"]
    assert len({d.event_id for d in deliveries(domain)}) == 3
    payload = deliveries(domain)[1].payload
    assert payload["data"]["transaction_id"] == "TX123456" and payload["type"] == "payment.received"


def test_each_ledger_change_writes_its_event(ctx, receiver):
    from tests.ledger_helpers import ago, new_request, pay as ledger_pay
    from webapp.domain import vouchers

    webhooks.create_endpoint(receiver.url, actor="test")  # every event type

    def types_of(reference=None, payment=None):
        rows = WebhookDelivery.select().order_by(WebhookDelivery.id)
        return [d.event for d in rows if (reference and d.payload["data"].get("reference") == reference)
                or (payment and d.payload["data"].get("id") == payment)]

    vouchers.import_codes("wifi", ["code", "WIFI-0001"], actor="test")
    voucher_request = new_request(4000, voucher_pool="wifi")
    ledger_pay(4000, transaction_id="QX1234567", note=voucher_request.reference)
    assert types_of(voucher_request.reference) == ["request.created", "voucher.assigned", "request.paid"]
    paid_event = WebhookDelivery.get(WebhookDelivery.event == "request.paid").payload
    assert paid_event["data"]["voucher"] == "WIFI-0001"  # the paid event carries the code

    unmatched = ledger_pay(777).payment
    assert types_of(payment=unmatched.id) == ["payment.received", "payment.unmatched"]

    first, second = new_request(5000, phone=None), new_request(5000, phone=None)
    doubtful = ledger_pay(5000).payment  # two candidates: both requests wait in review
    assert types_of(first.reference) == types_of(second.reference) == ["request.created", "request.in_review"]

    expiring = new_request(6000, now=ago(minutes=20))
    cancelled = new_request(6100)
    ledger.expire_due()
    ledger.cancel_request(cancelled.reference, actor="test")
    assert types_of(expiring.reference)[-1] == "request.expired"
    assert types_of(cancelled.reference)[-1] == "request.cancelled"

    ledger.flag_reversal("test", "QX1234567")
    assert "payment.reversed" in [d.event for d in WebhookDelivery.select()]
    assert types_of(voucher_request.reference)[-1] == "request.in_review"  # paid, then the money came back
    assert types_of(payment=doubtful.id) == ["payment.received"]  # review is told through its requests


def test_claim_received_is_emitted_for_the_payment_page(domain, receiver, make_request):
    endpoint(domain, receiver, ["claim.received"])
    request = make_request(6000)
    domain(webhooks.claim_received, request, "QWE123456", phone="+256772000002", claim_id=1)
    domain(webhooks.claim_received, request, "QWE123456", phone="+256772000002", claim_id=1)  # once per claim
    [delivery] = deliveries(domain)
    assert delivery.payload["data"]["claim"]["transaction_id"] == "QWE123456"
    assert delivery.payload["data"]["reference"] == request.reference


def test_nothing_is_written_when_no_endpoint_listens(domain, make_request):
    make_request(6000)
    assert deliveries(domain) == []


# ------------------------------------------------------------------ private addresses


def test_private_and_loopback_urls_are_refused_unless_allowed(app, domain, run_job, receiver, make_request):
    hook = endpoint(domain, receiver, ["request.created"])  # allowed in this test's environment
    app.config["PAYWATCH"] = app.config["PAYWATCH"].with_overrides(webhooks_allow_private=False)
    for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/",
                "http://localhost/x", "http://100.64.1.1/", "http://[::ffff:10.0.0.1]/", "ftp://example.com/x", "http://user:pw@example.com/"):
        with pytest.raises(webhooks.WebhookError):
            domain(webhooks.create_endpoint, url, actor="test")
    make_request(4000)  # at delivery time the address connected to is checked again
    [delivery] = deliveries(domain)
    run_job("deliver", delivery.id)
    log = domain(webhook_delivery.attempts_of, delivery.id)
    assert state(receiver).received == [] and "loopback" in log[0].error and log[0].status_code is None
    assert domain(WebhookEndpoint.get_by_id, hook.id).is_active  # a network error retries


def test_a_customers_claim_on_the_payment_page_writes_one_claim_received_event(domain, client, receiver,
                                                                                make_request):
    from tests.test_paypage import _claim

    endpoint(domain, receiver, events=["claim.received"])
    request = make_request(5000)
    assert _claim(client, request.pay_token, "QK12AB34CD").status_code == 303
    assert _claim(client, request.pay_token, "QK12AB34CD").status_code == 303  # the same claim again: no new event
    sent = deliveries(domain, event="claim.received")
    assert len(sent) == 1
    assert sent[0].payload["data"]["claim"]["transaction_id"] == "QK12AB34CD"
