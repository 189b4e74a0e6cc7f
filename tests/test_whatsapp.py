"""WhatsApp notifications end to end: real workers with rq's scheduler, the sandbox wppconnect server."""
from datetime import timedelta

import pytest

from webapp import db, jobqueue, options, whatsapp_state
from webapp.models import Agent, Notification
from tests.conftest import wait_for
from tests.ledger_helpers import new_request, pay

pytestmark = pytest.mark.slow
AGENT_PHONE, CUSTOMER_PHONE = "+256700000011", "+256772123456"


@pytest.fixture
def ctx(app):
    with app.app_context(), db.database.connection_context():
        options.update({"pending_alert_seconds": 2, "send_gap_ms": 0})
        yield app


def rows(**where):
    with db.database.connection_context():
        query = Notification.select().order_by(Notification.id)
        for key, value in where.items():
            query = query.where(getattr(Notification, key) == value)
        return list(query)


def make_request(app, **extra):
    with app.app_context(), db.database.connection_context():
        agent = Agent.get_or_none(Agent.code == "A1") or Agent.create(name="Sam", code="A1", phone=AGENT_PHONE)
        return new_request(agent_id=agent.id, phone=CUSTOMER_PHONE, **extra)


def test_an_unpaid_request_alerts_agent_and_customer_on_time(whatsapp, ctx, worker):
    request = make_request(ctx)
    due = request.created_at + timedelta(seconds=2)
    sent = wait_for(lambda: len(whatsapp.messages()) >= 2 and whatsapp.messages(), timeout=20,
                    message="both pending alerts")
    assert sorted(m["phone"] for m in sent) == [AGENT_PHONE.lstrip("+"), CUSTOMER_PHONE.lstrip("+")]
    assert all(request.reference in m["body"] and "still pending" in m["body"] for m in sent)
    for row in rows(request=request.id):
        assert row.status == "sent" and row.provider_id and row.sent_at >= due  # never early


def test_a_request_paid_before_its_alert_gets_a_confirmation_instead(whatsapp, ctx, worker):
    request = make_request(ctx)
    with ctx.app_context(), db.database.connection_context():
        pay(request.amount_minor, phone=CUSTOMER_PHONE, currency=request.currency)
    wait_for(lambda: len(whatsapp.messages()) >= 2, timeout=20, message="the confirmations")
    wait_for(lambda: all(r.status != "pending" for r in rows(request=request.id)), timeout=20, message="rows settled")
    bodies = [m["body"] for m in whatsapp.messages()]
    assert all("still pending" not in b for b in bodies) and any("Thank you" in b for b in bodies)
    kinds = {(r.kind, r.status) for r in rows(request=request.id)}
    assert ("pending_alert_customer", "cancelled") in kinds and ("payment_confirmed_customer", "sent") in kinds


def test_a_server_error_is_retried_and_sent_exactly_once(whatsapp, ctx, worker):
    whatsapp.control("faults", {"kind": "error", "count": 1})
    with ctx.app_context(), db.database.connection_context():
        from webapp import notify

        notify.admin_alert("test-alert", "hello admins")  # no admin phones yet: nothing
        options.update({"admin_phones": ["+256700000099"]})
        notify.admin_alert("test-alert-2", "hello admins")
    row = wait_for(lambda: [r for r in rows(kind="admin_alert") if r.status == "sent"], timeout=30,
                   message="the retried message")[0]
    assert row.attempts == 2 and len(whatsapp.messages("+256700000099")) == 1


def test_a_number_not_on_whatsapp_fails_for_good(whatsapp, ctx, worker):
    whatsapp.control("not-on-whatsapp", {"phones": [CUSTOMER_PHONE.lstrip("+")]})
    with ctx.app_context(), db.database.connection_context():
        options.update({"admin_phones": [CUSTOMER_PHONE]})
        from webapp import notify

        notify.admin_alert("x", "hi")
    row = wait_for(lambda: [r for r in rows(kind="admin_alert") if r.status == "failed"], timeout=20,
                   message="the failure")[0]
    assert "not on WhatsApp" in row.last_error and row.attempts == 1


def test_a_refused_secret_pauses_sending_and_shows_it(whatsapp, environ, ctx, run_worker):
    environ["WPPCONNECT_SECRET_KEY"] = "not-the-secret"
    with ctx.app_context(), db.database.connection_context():
        options.update({"admin_phones": ["+256700000099"]})
        from webapp import notify

        notify.admin_alert("x", "hi")
    run_worker(("fast",))  # started after the change: it sends with the wrong secret
    with ctx.app_context(), db.database.connection_context():
        assert "secret key" in (whatsapp_state.paused_reason() or "")
        row = Notification.get(Notification.dedupe_key == "admin_alert:x:+256700000099")
        assert row.status == "pending" and "secret key" in row.last_error
    assert whatsapp.messages() == []


def test_a_lost_redis_loses_nothing(whatsapp, ctx, redis_conn, worker):
    request = make_request(ctx)
    redis_conn.flushdb()  # the scheduled alert jobs are gone
    with ctx.app_context():
        jobqueue.enqueue("notification_sweep")
    wait_for(lambda: all(r.status == "pending" for r in rows(request=request.id)), timeout=5, message="rows kept")
    # The sweep only re-enqueues overdue rows; run it again once they are overdue.
    wait_for(lambda: _sweep_and_count(ctx, whatsapp) >= 2, timeout=40, interval=1.0, message="the sweep to deliver")


def _sweep_and_count(app, whatsapp):
    with app.app_context():
        jobqueue.enqueue("notification_sweep")
    return len(whatsapp.messages())


def test_duplicate_events_send_one_message(whatsapp, ctx, worker):
    with ctx.app_context(), db.database.connection_context():
        from webapp import notify

        options.update({"admin_phones": ["+256700000099"]})
        for _ in range(3):
            notify.admin_alert("same-event", "once please")
    wait_for(lambda: rows(kind="admin_alert") and rows(kind="admin_alert")[0].status == "sent", timeout=20,
             message="the one message")
    assert len(rows(kind="admin_alert")) == 1 and len(whatsapp.messages()) == 1


def test_caps_postpone_and_never_drop(whatsapp, ctx, worker):
    with ctx.app_context(), db.database.connection_context():
        from webapp import notify

        options.update({"admin_phones": ["+256700000099"], "cap_per_recipient_hour": 1})
        notify.admin_alert("one", "first")
        notify.admin_alert("two", "second")
    wait_for(lambda: len([r for r in rows(kind="admin_alert") if r.status == "sent"]) == 1, timeout=20,
             message="the first message")
    held = wait_for(lambda: [r for r in rows(kind="admin_alert") if r.status == "pending" and r.last_error],
                    timeout=20, message="the second to be postponed")[0]
    assert "per hour reached" in held.last_error and held.due_at > held.created_at + timedelta(minutes=50)
    assert len(whatsapp.messages()) == 1


def test_quiet_hours_hold_reminders_but_not_confirmations(whatsapp, ctx, worker):
    from datetime import datetime

    with ctx.app_context(), db.database.connection_context():
        from webapp import settings

        local = datetime.now(settings().zone)
        start = (local - timedelta(hours=1)).strftime("%H:%M")
        end = (local + timedelta(hours=1)).strftime("%H:%M")
        options.update({"quiet_start": start, "quiet_end": end})
    request = make_request(ctx)
    held = wait_for(lambda: [r for r in rows(request=request.id) if r.last_error and "quiet hours" in r.last_error],
                    timeout=20, message="the alert to wait for the end of quiet hours")
    assert all(r.status == "pending" for r in held)
    with ctx.app_context(), db.database.connection_context():
        pay(request.amount_minor, phone=CUSTOMER_PHONE, currency=request.currency)
    wait_for(lambda: any("Thank you" in m["body"] for m in whatsapp.messages()), timeout=20,
             message="the confirmation despite quiet hours")
