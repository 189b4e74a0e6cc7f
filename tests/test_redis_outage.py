"""Redis is not the record: with the test's own redis-server stopped, flushed or replaced for
real, what was committed answers its normal success, is never doubled, and the work it owes
is done by real workers and the scheduler process once Redis is back — with no operator step."""
import os
import signal
import threading
from datetime import timedelta

import pytest
from rq.job import Job
from rq_scheduler import Scheduler

from tests.conftest import wait_for
from webapp.domain import apikeys, options
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Notification, PaymentRequest

pytestmark = pytest.mark.slow
CUSTOMER = "+256772123456"
REQUEST = {"amount": "5000", "currency": "UGX", "customer_name": "Jane Doe", "customer_phone": CUSTOMER}


@pytest.fixture
def fast_alerts(app):
    """Pending alerts due 2 s after a request appears; no pause between sends."""
    with app.app_context(), db.database.connection_context():
        options.update({"pending_alert_seconds": 2, "send_gap_ms": 0}, actor="test")


@pytest.fixture
def key(app):
    with app.app_context(), db.database.connection_context():
        return apikeys.create("integration", "staff")[1]


def post_request(client, key, idempotency_key: str):
    return client.post("/api/v1/requests", json=REQUEST,
                       headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key})


def count(app, model) -> int:
    with app.app_context(), db.database.connection_context():
        return model.select().count()


def sent_to(whatsapp, phone: str) -> list[dict]:
    return whatsapp.messages(phone)


def health(client) -> dict:
    return client.get("/healthz").get_json()


# ------------------------------------------------------------------ Redis stopped


def test_a_request_posted_while_redis_is_down_is_created_once_and_alerted_once_it_is_back(
        whatsapp, fast_alerts, app, client, key, worker, scheduler, redis_control):
    redis_control.stop()

    first = post_request(client, key, "order-1")
    again = post_request(client, key, "order-1")

    assert first.status_code == 201, first.get_data(as_text=True)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["reference"] == first.get_json()["reference"]
    assert count(app, PaymentRequest) == 1
    with app.app_context(), db.database.connection_context():
        assert [n.status for n in Notification.select()] == ["pending"]  # the record, waiting for Redis

    redis_control.start()  # a brand-new, empty Redis: every job and schedule it held is gone
    sent = wait_for(lambda: sent_to(whatsapp, CUSTOMER), timeout=120, interval=0.5,
                    message="the pending alert, once Redis is back")
    assert len(sent) == 1 and "still pending" in sent[0]["body"]
    assert worker.poll() is None and scheduler.poll() is None  # both outlived the outage


def test_the_ledger_commits_and_keeps_its_outbox_rows_while_redis_is_down(app, make_request, redis_control):
    redis_control.stop()
    request = make_request(customer_phone=CUSTOMER)
    with app.app_context(), db.database.connection_context():
        assert PaymentRequest.get_by_id(request.id).status == "pending"
        assert Notification.select().where(Notification.request == request.id).count() == 1


def test_staff_create_a_request_in_the_ui_while_redis_is_down(client, auth, login_as, app, redis_control):
    login_as("staff")
    token = auth.csrf_token("/requests/new")
    redis_control.stop()
    response = client.post("/requests/", data={"csrf_token": token, "amount": "5000", "currency": "UGX",
                                               "customer_phone": "0772 123456"}, follow_redirects=True)
    assert response.status_code == 200 and "created" in response.get_data(as_text=True)
    assert count(app, PaymentRequest) == 1


@pytest.mark.one_backend
def test_staff_can_log_in_while_redis_is_down(client, auth, make_user, redis_control):
    user = make_user("staff")
    redis_control.stop()  # the login rate limit lives in Redis; it falls back to memory
    assert auth.login(user.email).status_code == 302
    assert client.get("/").status_code == 200


def test_two_calls_with_one_idempotency_key_at_once_store_one_request(app, key):
    start, answers = threading.Barrier(2), []

    def call():
        client = app.test_client()
        start.wait()
        answers.append(post_request(client, key, "order-race"))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [201, 201]
    assert len({a.get_json()["reference"] for a in answers}) == 1
    assert count(app, PaymentRequest) == 1


# ------------------------------------------------------------------ Redis flushed


def test_a_flushed_redis_gets_its_schedule_back_and_sends_what_was_due(
        whatsapp, fast_alerts, app, make_request, worker, scheduler, redis_control, redis_conn):
    recurring = {jobqueue.recurring_id(name) for name in jobqueue.RECURRING}
    scheduled = lambda: {job.id for job in Scheduler(connection=redis_conn).get_jobs()}  # noqa: E731
    wait_for(lambda: scheduled() >= recurring, timeout=30, message="the schedule, registered at start")
    make_request(customer_phone=CUSTOMER)  # its alert is a delayed job in Redis…

    redis_control.flush()  # …gone, with the schedule and the workers' registrations

    wait_for(lambda: scheduled() >= recurring, timeout=30, message="the schedule, back by itself")
    sent = wait_for(lambda: sent_to(whatsapp, CUSTOMER), timeout=120, interval=0.5, message="the alert")
    assert len(sent) == 1


@pytest.mark.one_backend
def test_health_counts_two_workers_when_two_run_also_after_a_flush(start_worker, scheduler, client, redis_control):
    pids = {start_worker().pid, start_worker().pid}
    ok = wait_for(lambda: (h := health(client))["ok"] and h, timeout=60, message="all healthy")
    assert ok["workers"]["count"] == 2 and {w["pid"] for w in ok["workers"]["each"]} == pids

    redis_control.flush()

    after = wait_for(lambda: (h := health(client))["ok"] and h, timeout=60, message="healthy again after the flush")
    assert after["workers"]["count"] == 2 and after["workers"]["registered"] == 2
    assert {w["pid"] for w in after["workers"]["each"]} == pids


# ------------------------------------------------------------------ rq's scheduler of delayed jobs


def delayed_job_scheduler(client) -> int:
    """The pid of the process moving delayed jobs (all queues held by one)."""
    held = wait_for(lambda: (h := health(client)["delayed_jobs"])["ok"] and len(pids_of(h)) == 1 and h, timeout=30,
                    message="one rq scheduler to hold every queue")
    return pids_of(held).pop()


def pids_of(delayed_jobs: dict) -> set[int]:
    return {queue["pid"] for queue in delayed_jobs["queues"].values()}


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("PPid:")).split()[1])


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def delayed_heartbeat_runs(app) -> None:
    with app.app_context():
        job = jobqueue.enqueue_in("heartbeat", timedelta(seconds=1))
    wait_for(lambda: Job.fetch(job.id, connection=job.connection).get_status() == "finished", timeout=30,
             message="a delayed job to run")


@pytest.mark.one_backend
def test_the_delayed_job_scheduler_is_started_again_when_its_process_dies(app, client, worker):
    first = delayed_job_scheduler(client)
    assert parent_of(first) == worker.pid

    os.kill(first, signal.SIGKILL)  # stock rq would start another only at its next maintenance, 10 min on

    wait_for(lambda: delayed_job_scheduler(client) != first, timeout=30, message="another scheduler")
    delayed_heartbeat_runs(app)


@pytest.mark.one_backend
def test_a_killed_worker_leaves_no_scheduler_behind_and_another_takes_over(app, client, start_worker):
    workers = {process.pid: process for process in (start_worker(), start_worker())}
    first = delayed_job_scheduler(client)
    holder = workers.pop(parent_of(first))

    holder.kill()  # SIGKILL: no chance to stop its scheduler

    wait_for(lambda: not running(first), timeout=30, message="the orphaned scheduler to stop")
    wait_for(lambda: parent_of(delayed_job_scheduler(client)) in workers, timeout=30,
             message="the other worker's scheduler")
    delayed_heartbeat_runs(app)
