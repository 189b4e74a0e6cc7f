import os
import subprocess

from webapp import jobqueue
from webapp.config import ROOT

from tests.conftest import venv_bin, wait_for


def test_healthz_is_503_without_workers_or_scheduler(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["workers"] == {"ok": False, "count": 0}
    assert body["scheduler"] == {"ok": False, "heartbeat_age_s": None}


def test_healthz_is_503_naming_redis_when_it_is_down(settings, app):
    from webapp import create_app

    broken = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    body = broken.test_client().get("/healthz").get_json()
    assert body["ok"] is False and body["redis"]["ok"] is False and "Connection" in body["redis"]["error"]
    assert body["database"]["ok"] is True


def test_healthz_is_ok_with_a_worker_and_a_fresh_heartbeat(app, client, environ, redis_conn):
    with app.app_context():
        jobqueue.enqueue("heartbeat")
    worker = subprocess.Popen(
        [venv_bin("rq"), "worker", "--url", environ["REDIS_URL"], "-w", "jobs.worker.Worker", "fast"],
        cwd=ROOT, env={**os.environ, **environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        response = wait_for(lambda: (r := client.get("/healthz")).status_code == 200 and r, timeout=30,
                            message="/healthz to turn 200")
        body = response.get_json()
        assert body["workers"]["count"] == 1
        assert 0 <= body["scheduler"]["heartbeat_age_s"] < 30
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_metrics_are_for_admins_and_count_rows_by_status(client, login_as, app):
    from webapp import db
    from tests.ledger_helpers import new_request

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
