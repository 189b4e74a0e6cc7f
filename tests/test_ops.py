import pytest

from tests.conftest import wait_for
from webapp.plumbing import jobqueue


@pytest.mark.one_backend
def test_healthz_is_503_without_workers_or_scheduler(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["workers"]["ok"] is False and body["workers"]["count"] == 0
    assert body["workers"]["queues_without_worker"] == ["fast", "default", "slow"]
    assert body["delayed_jobs"]["ok"] is False
    assert all(q["scheduler"] is None for q in body["delayed_jobs"]["queues"].values())
    scheduler = body["scheduler"]
    assert scheduler["ok"] is False and scheduler["heartbeat_age_s"] is None
    assert scheduler["process_heartbeat_age_s"] is None
    assert sorted(scheduler["missing"]) == sorted(jobqueue.recurring_id(name) for name in jobqueue.RECURRING)


@pytest.mark.one_backend
def test_healthz_is_503_naming_redis_when_it_is_down(settings, app):
    from webapp import create_app

    broken = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    body = broken.test_client().get("/healthz").get_json()
    assert body["ok"] is False and body["redis"]["ok"] is False and "Connection" in body["redis"]["error"]
    assert body["database"]["ok"] is True
    assert body["workers"] == {"ok": False, "count": None}


@pytest.mark.one_backend
def test_healthz_is_ok_with_a_worker_and_the_scheduler_process(client, worker, scheduler):
    response = wait_for(lambda: (r := client.get("/healthz")).status_code == 200 and r, timeout=60,
                        message="/healthz to turn 200")
    body = response.get_json()
    assert body["workers"]["count"] == 1 and body["workers"]["each"][0]["pid"] == worker.pid
    assert body["workers"]["each"][0]["live"] and body["workers"]["each"][0]["heartbeat_age_s"] < 30
    # rq's scheduler of delayed jobs runs in the worker, looking every 0.2 s (jobs/worker.py)
    for held in body["delayed_jobs"]["queues"].values():
        assert held["ok"] and held["poll_interval_s"] == 0.2 and held["heartbeat_age_s"] < 10
    assert 0 <= body["scheduler"]["heartbeat_age_s"] < 30 and body["scheduler"]["missing"] == []
    assert 0 <= body["scheduler"]["process_heartbeat_age_s"] < 30


@pytest.mark.one_backend
def test_a_worker_that_stopped_beating_is_not_counted(client, app, worker, redis_conn):
    import signal

    wait_for(lambda: client.get("/healthz").get_json()["workers"]["count"] == 1, timeout=30, message="one worker")
    worker.send_signal(signal.SIGSTOP)  # alive to the OS, silent to Redis: still listed, no longer beating
    try:
        body = wait_for(lambda: (b := client.get("/healthz").get_json())["workers"]["count"] == 0 and b,
                        timeout=90, interval=1.0, message="the silent worker to stop counting")
        assert body["workers"]["registered"] == 1 and body["workers"]["each"][0]["live"] is False
    finally:
        worker.send_signal(signal.SIGCONT)
    wait_for(lambda: client.get("/healthz").get_json()["workers"]["count"] == 1, timeout=30, message="it counts again")


def test_metrics_are_for_admins_and_count_rows_by_status(client, login_as, app):
    from tests.ledger_helpers import new_request
    from webapp.storage import db

    assert client.get("/metrics").status_code == 302
    with app.app_context(), db.database.connection_context():
        new_request()
    login_as("admin")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'paywatch_requests{status="pending"} 1.0' in text
    assert 'paywatch_up{part="database"} 1.0' in text and "paywatch_queue_jobs" in text


def test_metrics_refuse_staff(client, login_as):
    login_as("staff")
    assert client.get("/metrics").status_code == 403


@pytest.mark.one_backend
def test_a_job_whose_record_is_gone_as_it_ends_leaves_the_worker_working(worker, redis_conn):
    """rq deletes a job kept for 0 s the moment it succeeds, as a flush of Redis right then does (seen:
    the worker then read the job's status back to count its duration, and quit)."""
    from rq import Queue

    default = Queue("default", connection=redis_conn)
    gone = default.enqueue("os.getpid", result_ttl=0)
    wait_for(lambda: redis_conn.sismember("paywatch:jobstats:names", "os.getpid") or worker.poll() is not None,
             timeout=30, message="the first job's duration counted")
    assert worker.poll() is None, worker.log_path.read_text()
    assert not redis_conn.exists(gone.key)
    kept = default.enqueue("os.getpid")
    wait_for(lambda: kept.get_status(refresh=True) == "finished" or worker.poll() is not None, timeout=30,
             message="the second job")
    assert worker.poll() is None, worker.log_path.read_text()
    assert redis_conn.hget("paywatch:jobstats:os.getpid", "outcome:unknown") == b"1"
