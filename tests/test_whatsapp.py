"""WhatsApp notifications end to end: real workers with rq's scheduler, the sandbox wppconnect server."""
from datetime import timedelta

import pytest
import requests

from tests.conftest import wait_for
from tests.ledger_helpers import new_request, pay
from webapp.domain import options, whatsapp_session
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Agent, Notification

pytestmark = pytest.mark.slow
AGENT_PHONE, CUSTOMER_PHONE = "+256700000011", "+256772123456"


@pytest.fixture
def ctx(ctx):
    options.update({"pending_alert_seconds": 2, "send_gap_ms": 0}, actor="test")
    return ctx


def rows(**where):
    with db.database.connection_context():
        query = Notification.select().order_by(Notification.id)
        for key, value in where.items():
            query = query.where(getattr(Notification, key) == value)
        return list(query)


def agent_request(app, **extra):
    """A request of agent A1 (created on first use) for CUSTOMER_PHONE."""
    with app.app_context(), db.database.connection_context():
        agent = Agent.get_or_none(Agent.code == "A1") or Agent.create(name="Sam", code="A1", phone=AGENT_PHONE)
        return new_request(agent_id=agent.id, phone=CUSTOMER_PHONE, **extra)


def test_an_unpaid_request_alerts_agent_and_customer_on_time(whatsapp, ctx, worker):
    request = agent_request(ctx)
    due = request.created_at + timedelta(seconds=2)
    sent = wait_for(lambda: len(whatsapp.messages()) >= 2 and whatsapp.messages(), timeout=20,
                    message="both pending alerts")
    assert sorted(m["phone"] for m in sent) == [AGENT_PHONE.lstrip("+"), CUSTOMER_PHONE.lstrip("+")]
    assert all(request.reference in m["body"] and "still pending" in m["body"] for m in sent)
    # The server has the messages a moment before the worker writes down its answer.
    done = wait_for(lambda: (found := rows(request=request.id)) and all(r.status == "sent" for r in found) and found,
                    timeout=20, message="both rows marked sent")
    assert len(done) == 2 and all(row.provider_id and row.sent_at >= due for row in done)  # never early


def test_a_request_paid_before_its_alert_gets_a_confirmation_instead(whatsapp, ctx, worker):
    request = agent_request(ctx)
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
        from webapp.domain import outbox

        outbox.admin_alert("test-alert", "hello admins")  # no admin phones yet: nothing
        options.update({"admin_phones": ["+256700000099"]}, actor="test")
        outbox.admin_alert("test-alert-2", "hello admins")
    row = wait_for(lambda: [r for r in rows(kind="admin_alert") if r.status == "sent"], timeout=30,
                   message="the retried message")[0]
    assert row.attempts == 2 and len(whatsapp.messages("+256700000099")) == 1


def test_a_number_not_on_whatsapp_fails_for_good(whatsapp, ctx, worker):
    whatsapp.control("not-on-whatsapp", {"phones": [CUSTOMER_PHONE.lstrip("+")]})
    with ctx.app_context(), db.database.connection_context():
        options.update({"admin_phones": [CUSTOMER_PHONE]}, actor="test")
        from webapp.domain import outbox

        outbox.admin_alert("x", "hi")
    row = wait_for(lambda: [r for r in rows(kind="admin_alert") if r.status == "failed"], timeout=20,
                   message="the failure")[0]
    assert "not on WhatsApp" in row.last_error and row.attempts == 1


def test_a_refused_secret_pauses_sending_and_shows_it(whatsapp, environ, ctx, run_worker):
    environ["WPPCONNECT_SECRET_KEY"] = "not-the-secret"
    with ctx.app_context(), db.database.connection_context():
        options.update({"admin_phones": ["+256700000099"]}, actor="test")
        from webapp.domain import outbox

        outbox.admin_alert("x", "hi")
    run_worker(("fast",))  # started after the change: it sends with the wrong secret
    with ctx.app_context(), db.database.connection_context():
        assert "secret key" in (whatsapp_session.paused_reason() or "")
        row = Notification.get(Notification.dedupe_key == "admin_alert:x:+256700000099")
        assert row.status == "pending" and "secret key" in row.last_error
    assert whatsapp.messages() == []


def test_a_lost_redis_loses_nothing(whatsapp, ctx, redis_conn, worker):
    request = agent_request(ctx)
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
        from webapp.domain import outbox

        options.update({"admin_phones": ["+256700000099"]}, actor="test")
        for _ in range(3):
            outbox.admin_alert("same-event", "once please")
    wait_for(lambda: rows(kind="admin_alert") and rows(kind="admin_alert")[0].status == "sent", timeout=20,
             message="the one message")
    assert len(rows(kind="admin_alert")) == 1 and len(whatsapp.messages()) == 1


def test_caps_postpone_and_never_drop(whatsapp, ctx, worker):
    with ctx.app_context(), db.database.connection_context():
        from webapp.domain import outbox

        options.update({"admin_phones": ["+256700000099"], "cap_per_recipient_hour": 1}, actor="test")
        outbox.admin_alert("one", "first")
        outbox.admin_alert("two", "second")
    wait_for(lambda: len([r for r in rows(kind="admin_alert") if r.status == "sent"]) == 1, timeout=20,
             message="the first message")
    held = wait_for(lambda: [r for r in rows(kind="admin_alert") if r.status == "pending" and r.last_error],
                    timeout=20, message="the second to be postponed")[0]
    assert "per hour reached" in held.last_error and held.due_at > held.created_at + timedelta(minutes=50)
    assert len(whatsapp.messages()) == 1


def test_quiet_hours_hold_reminders_but_not_confirmations(whatsapp, ctx, worker):
    from datetime import datetime

    with ctx.app_context(), db.database.connection_context():
        from webapp.config import settings

        local = datetime.now(settings().zone)
        start = (local - timedelta(hours=1)).strftime("%H:%M")
        end = (local + timedelta(hours=1)).strftime("%H:%M")
        options.update({"quiet_start": start, "quiet_end": end}, actor="test")
    request = agent_request(ctx)
    held = wait_for(lambda: [r for r in rows(request=request.id) if r.last_error and "quiet hours" in r.last_error],
                    timeout=20, message="the alert to wait for the end of quiet hours")
    assert all(r.status == "pending" for r in held)
    with ctx.app_context(), db.database.connection_context():
        pay(request.amount_minor, phone=CUSTOMER_PHONE, currency=request.currency)
    wait_for(lambda: any("Thank you" in m["body"] for m in whatsapp.messages()), timeout=20,
             message="the confirmation despite quiet hours")


# -- unknown outcomes: wppconnect's chat is checked before anything is sent again -------

ADMIN_PHONE = "+256700000099"


@pytest.fixture
def quick_timeout(environ):
    """wppconnect calls give up after 2 s instead of 20 (request it before `ctx` and `worker`)."""
    environ["WPPCONNECT_TIMEOUT"] = "2"


def alert(app, key="float-low", text="Paywatch: the float is low") -> Notification:
    with app.app_context(), db.database.connection_context():
        from webapp.domain import outbox

        options.update({"admin_phones": [ADMIN_PHONE], "send_gap_ms": 0}, actor="test")
        outbox.admin_alert(key, text)
    return rows(dedupe_key=f"admin_alert:{key}:{ADMIN_PHONE}")[0]


def row_of(row_id: int) -> Notification:
    with db.database.connection_context():
        return Notification.get_by_id(row_id)


def row_when(row_id: int, test, message: str, timeout: float = 40) -> Notification:
    """The row once `test(row)` holds."""
    def probe():
        row = row_of(row_id)
        return row if test(row) else None

    return wait_for(probe, timeout=timeout, message=message)


def set_checks(row_id: int, checks: int) -> None:
    with db.database.connection_context():
        Notification.update(checks=checks).where(Notification.id == row_id).execute()


@pytest.mark.parametrize("fault", ["timeout", "reset"])
def test_a_send_that_went_out_unanswered_is_found_in_the_chat_not_sent_again(whatsapp, quick_timeout, ctx, worker,
                                                                              fault):
    whatsapp.control("faults", {"kind": fault, "seconds": 5, "count": 1})  # stored, then no answer
    row = alert(ctx)
    done = row_when(row.id, lambda r: r.status == "sent", "the row recorded as sent")
    [message] = whatsapp.messages(ADMIN_PHONE)
    assert done.provider_id == message["id"] and done.attempts == 1
    assert "found in the WhatsApp chat" in done.last_error and done.unconfirmed_since is None


@pytest.mark.parametrize("history", ["no chat yet", "the same text an hour ago"])
def test_a_send_that_timed_out_without_going_out_is_sent_once_after_the_check(whatsapp, quick_timeout, ctx, worker,
                                                                             history):
    whatsapp.control("faults", {"kind": "hang", "seconds": 4, "count": 1})  # no answer, nothing sent
    row = alert(ctx)
    if history != "no chat yet":
        unknown = row_when(row.id, lambda r: r.status == "pending" and r.unconfirmed_since, "the unknown outcome")
        # Before the check: older than the try, so it is not taken for it; and a reply.
        whatsapp.control("chat-message", {"phone": ADMIN_PHONE, "body": unknown.body, "from_me": True, "age": 3600})
        whatsapp.control("chat-message", {"phone": ADMIN_PHONE, "body": "noted"})
    done = row_when(row.id, lambda r: r.status == "sent", "the row sent after the check")
    [message] = whatsapp.messages(ADMIN_PHONE)  # the API's sends only
    assert done.provider_id == message["id"] and done.attempts == 2 and done.last_error is None


def test_a_message_recorded_on_another_row_is_not_taken_for_the_try(whatsapp, quick_timeout, ctx, worker):
    first = alert(ctx, key="float-low-1")
    first = row_when(first.id, lambda r: r.status == "sent", "the first alert")
    whatsapp.control("faults", {"kind": "hang", "seconds": 4, "count": 1})
    second = alert(ctx, key="float-low-2")  # the same text, seconds later: its try never arrives
    done = row_when(second.id, lambda r: r.status == "sent", "the second alert")
    messages = whatsapp.messages(ADMIN_PHONE)
    assert [m["id"] for m in messages] == [first.provider_id, done.provider_id]
    assert messages[0]["body"] == messages[1]["body"] and done.attempts == 2


def test_a_worker_killed_after_the_call_leaves_one_message(whatsapp, ctx, worker, run_worker):
    whatsapp.control("faults", {"kind": "timeout", "seconds": 30, "count": 1})
    row = alert(ctx)
    wait_for(lambda: whatsapp.messages(ADMIN_PHONE), timeout=20, message="wppconnect to take the message")
    worker.kill()  # SIGKILL, in the middle of the call
    worker.wait(timeout=10)
    stuck = row_of(row.id)
    assert stuck.status == "sending" and stuck.unconfirmed_since is not None
    # The sweep acts 90 s after the claim: move the row's times back instead of waiting.
    with db.database.connection_context():
        Notification.update(claimed_at=stuck.claimed_at - timedelta(seconds=91),
                            due_at=stuck.due_at - timedelta(seconds=91)).where(Notification.id == row.id).execute()
    with ctx.app_context():
        jobqueue.enqueue("notification_sweep")
    run_worker()  # the sweep puts it back to pending and enqueues it; the send job checks first
    done = row_of(row.id)
    [message] = whatsapp.messages(ADMIN_PHONE)
    assert done.status == "sent" and done.provider_id == message["id"] and done.attempts == 1


def test_a_check_that_cannot_answer_never_resends_and_ends_failed_with_retry(whatsapp, quick_timeout, app, worker,
                                                                              client, login_as, auth):
    from jobs.whatsapp import MAX_CHECKS

    whatsapp.control("faults", {"kind": "timeout", "seconds": 5, "count": 1})
    whatsapp.control("faults", {"kind": "history_error"})  # every get-messages fails
    row = alert(app)  # (not `ctx`: its open connection and the test client's would clash)
    waiting = row_when(row.id, lambda r: r.checks == 1, "a failed check")
    assert waiting.status == "pending" and "not re-sent" in waiting.last_error
    assert len(whatsapp.messages(ADMIN_PHONE)) == 1
    set_checks(row.id, MAX_CHECKS - 1)  # as after all but the last check (minutes of them)
    failed = row_when(row.id, lambda r: r.status == "failed", "the row to fail visibly")
    assert "Look at the chat" in failed.last_error and len(whatsapp.messages(ADMIN_PHONE)) == 1
    login_as("staff")
    assert f'id="retry-{row.id}"' in client.get("/notifications/").get_data(as_text=True)
    requests.delete(f"{whatsapp.url}/_sandbox/faults", timeout=5)  # wppconnect reads chats again
    retried = client.post(f"/notifications/{row.id}/retry", data={"csrf_token": auth.csrf_token("/notifications/")})
    assert retried.status_code == 302
    done = row_when(row.id, lambda r: r.status == "sent", "the retried row")
    [message] = whatsapp.messages(ADMIN_PHONE)
    assert done.provider_id == message["id"] and "found in the WhatsApp chat" in done.last_error


def test_staff_retry_after_the_checks_gave_up_sends_if_the_check_still_cannot_answer(whatsapp, quick_timeout, ctx,
                                                                                      worker, domain):
    from jobs.whatsapp import MAX_CHECKS
    from webapp.domain import outbox

    whatsapp.control("faults", {"kind": "hang", "seconds": 4, "count": 1})
    whatsapp.control("faults", {"kind": "history_error"})
    row = alert(ctx)
    row_when(row.id, lambda r: r.status == "pending" and r.unconfirmed_since, "the unknown outcome")
    set_checks(row.id, MAX_CHECKS - 1)  # before the first check: it is the last one
    row_when(row.id, lambda r: r.status == "failed", "the row to fail visibly")
    assert whatsapp.messages(ADMIN_PHONE) == []
    domain(outbox.retry, row.id, actor="test")  # staff looked at the phone: nothing there
    done = row_when(row.id, lambda r: r.status == "sent", "the retried row")
    [message] = whatsapp.messages(ADMIN_PHONE)
    assert done.provider_id == message["id"] and done.attempts == 1
