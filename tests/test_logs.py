"""Logs: one line per event (rq's own handler no longer doubles them), routine recurring jobs at
DEBUG, LOG_FORMAT=json with request/job ids, and no secret in the output of real processes."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from webapp.config import ROOT
from webapp.plumbing import jobqueue, logs

SECRETS = {
    "SECRET_KEY": "sk-never-logged-0123456789abcdef",
    "PAYWATCH_ADMIN_PASSWORD": "admin-pass-never-logged-42",
    "PAYWATCH_SMTP_URL": "smtp://ops:smtp-pass-never-logged-77@127.0.0.1:9",
}


@pytest.fixture
def environ(environ, whatsapp):
    return {**environ, **SECRETS, "LOG_FORMAT": "json", "PAYWATCH_ADMIN_EMAIL": "admin@shop.example",
            "PAYWATCH_ALERT_EMAILS": "ops@shop.example", "PAYWATCH_MAIL_FROM": "paywatch@shop.example"}


def test_configure_installs_one_handler_and_takes_rq_handlers_away():
    from rq.logutils import setup_loghandlers

    setup_loghandlers("INFO", name="rq.worker")  # what `rq worker` does before our app exists
    logs.configure("INFO", "text")
    logs.configure("INFO", "json")  # every create_app calls it again
    root = logging.getLogger()
    assert [type(h).__name__ for h in root.handlers if type(h).__name__ == "_PaywatchHandler"] == ["_PaywatchHandler"]
    assert logging.getLogger("rq.worker").handlers == []


def test_bind_rejects_an_unknown_field():
    with pytest.raises(ValueError, match="unknown log context field"):
        with logs.bind(customer="x"):
            pass


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_a_worker_logs_each_event_once_in_json_with_job_ids_and_no_secret(app, domain, environ, run_worker,
                                                                          tmp_path):
    from webapp.domain import alerts, outbox

    domain(outbox.test_message, "+256772123456", actor="test")  # a WhatsApp send: uses the secret key
    domain(alerts.open_alert, alerts.NO_SCHEDULER, "paywatch", "test")  # its mail fails: SMTP port 9 is closed
    with app.app_context():
        routine = jobqueue.enqueue("heartbeat", job_id=jobqueue.recurring_id("heartbeat"))
    output = run_worker(queues=("fast",))
    lines = _lines(output)
    assert lines and all({"time", "level", "logger", "message", "job_id"} <= set(line) for line in lines)
    done = [line for line in lines if line["message"].startswith("Job OK") or "Successfully completed" in line["message"]]
    assert done and len({line["message"] for line in done}) == len(done)  # each event once
    assert routine.id not in output and "Successfully completed heartbeat" not in output  # routine: DEBUG
    mail_lines = [line for line in lines if line["logger"] == "jobs.alert_mail"]
    assert mail_lines and all(line["job_id"] == alerts.mail_job_id(1) for line in mail_lines)

    # A full run: the CLI too (a backup, a health check) with the same secrets set.
    env = {**os.environ, **environ}
    for args in (["db", "backup", str(tmp_path / "b.db")], ["ops", "check", "web"], ["ops", "check", "worker"]):
        done_cli = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
        output += done_cli.stdout + done_cli.stderr
    output += _web_log(environ)
    for name, value in {**SECRETS, "WPPCONNECT_SECRET_KEY": environ["WPPCONNECT_SECRET_KEY"]}.items():
        secret = value.split(":")[2].split("@")[0] if name == "PAYWATCH_SMTP_URL" else value
        assert secret not in output, f"{name} appears in the logs"


def _web_log(environ) -> str:
    """Run gunicorn (the web process) for a few requests; its whole output."""
    import requests

    from tests.conftest import _background, _stop, venv_bin, wait_for
    from tests.smtp_server import _free_port

    port = _free_port()
    web = _background(environ, "web", [venv_bin("gunicorn"), "-c", "gunicorn.conf.py", "--bind",
                                       f"127.0.0.1:{port}", "wsgi:app"])
    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            try:
                return requests.get(f"{base}/healthz", timeout=10).status_code in (200, 503)
            except requests.RequestException:  # not up yet, or slow to answer on a loaded machine
                return False

        wait_for(up, timeout=60, message="gunicorn to answer")
        requests.get(f"{base}/login", timeout=30)
        requests.get(f"{base}/api/v1/requests", headers={"Authorization": "Bearer pw_wrong"}, timeout=30)
    finally:
        _stop(web)
    text = web.log_path.read_text()
    assert '"GET /healthz HTTP/1.1"' in text and '"GET /api/v1/requests HTTP/1.1" 401' in text, text
    return text


def test_a_web_request_logs_its_request_id(app, client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get("/healthz", headers={"X-Request-ID": "req-abc.123"})
    assert response.headers["X-Request-ID"] == "req-abc.123"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id <x>"}).headers["X-Request-ID"] != "bad id <x>"
    with app.test_request_context(headers={"X-Request-ID": "req-xyz"}):
        app.preprocess_request()
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
        logs.Context().filter(record)
    assert record.request_id == "req-xyz" and record.job_id is None


def test_a_jobs_log_lines_name_its_source_or_request(ctx, make_request):
    from jobs import _log_context
    from webapp.domain import sources
    from webapp.storage.models import Notification

    request = make_request(customer_phone="+256772000001")
    row = Notification.create(kind="reminder", phone="+256772000001", request=request.id, dedupe_key="r:1")
    source, _ = sources.save({"kind": "mailbox", "name": "shop-mail", "config": {
        "host": "127.0.0.1", "username_env": "U", "password_env": "P"}}, actor="test")
    assert _log_context("jobs.whatsapp.send_notification", (row.id,)) == {"reference": request.reference}
    assert _log_context("jobs.gateway.collect", (request.id,)) == {"reference": request.reference}
    assert _log_context("jobs.mailbox.fetch", (source.id,)) == {"source": "shop-mail"}
    assert _log_context("jobs.schedule.heartbeat", ()) == {}
    with logs.bind(source="shop-mail", reference=request.reference):
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
        logs.Context().filter(record)
    assert (record.source, record.reference) == ("shop-mail", request.reference)
