"""/metrics for Prometheus: the bearer token or an admin's session, and the series read from the
database and Redis at scrape time (so every process answers the same)."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ledger_helpers import new_request, pay
from webapp import create_app
from webapp.config import ConfigError, load_settings
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Source, utcnow

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def metrics_app(environ, redis_conn):
    app = create_app(load_settings({**environ, "PAYWATCH_METRICS_TOKEN": TOKEN}))
    app.config["TESTING"] = True
    with app.app_context():
        db.upgrade()
    yield app
    db.database.obj.close()


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels…): value} from Prometheus text (parsed by prometheus_client)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, *sorted(s.labels.items()))] = s.value
    return found


def test_the_token_opens_metrics_and_a_wrong_one_gets_401(metrics_app):
    client = metrics_app.test_client()
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/plain")
    assert "paywatch_up" in ok.get_data(as_text=True)
    for header in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", "Bearer wrong"):
        refused = client.get("/metrics", headers={"Authorization": header})
        assert refused.status_code == 401, header
        assert refused.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics").status_code == 302  # no token, no session: the login page


def test_without_a_configured_token_every_bearer_is_refused(client):
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_an_admin_session_opens_metrics_and_staff_are_refused(client, login_as, auth):
    login_as("staff")
    assert client.get("/metrics").status_code == 403
    auth.logout()
    login_as("admin")
    assert client.get("/metrics").status_code == 200


def test_a_short_token_is_refused_at_start_naming_the_variable(environ):
    with pytest.raises(ConfigError, match="PAYWATCH_METRICS_TOKEN"):
        load_settings({**environ, "PAYWATCH_METRICS_TOKEN": "short"})


def test_the_series_count_what_the_database_holds(metrics_app):
    with metrics_app.app_context(), db.database.connection_context():
        request = new_request(5000)
        pay(5000, note=request.reference, source="mailbox-1", received_at=utcnow())  # confirmed: decisive reference
        pay(7777, source="portal-1")  # nothing asks 7777: unmatched
        Source.create(kind="portal", name="acme", state={"last_contact_at": utcnow().isoformat()})
    text = metrics_app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    got = samples(text)
    assert got[("paywatch_payments_seen", ("outcome", "confirmed"), ("source", "mailbox-1"))] == 1
    assert got[("paywatch_payments_seen", ("outcome", "unmatched"), ("source", "portal-1"))] == 1
    assert got[("paywatch_match_decisions_total", ("kind", "confirmed"))] == 1
    assert got[("paywatch_match_decisions_total", ("kind", "unmatched"))] == 1
    assert got[("paywatch_money_to_paid_seconds_count",)] == 1
    assert got[("paywatch_money_to_paid_seconds_bucket", ("le", "+Inf"))] == 1
    assert got[("paywatch_money_to_paid_seconds_bucket", ("le", "86400.0"))] == 1
    whatsapp = {k: v for k, v in got.items() if k[0] == "paywatch_whatsapp_messages"}
    assert whatsapp and all(dict(k[1:]).keys() == {"kind", "outcome"} for k in whatsapp)
    assert 0 <= got[("paywatch_source_last_contact_age_seconds", ("kind", "portal"), ("source", "acme"))] < 60
    assert ("paywatch_queue_jobs", ("queue", "fast")) in got
    assert "# TYPE paywatch_webhook_deliveries gauge" in text  # none yet: the family, no samples


def test_job_durations_come_from_what_real_workers_recorded(metrics_app, run_worker, environ):
    with metrics_app.app_context():
        jobqueue.enqueue("heartbeat")
        jobqueue.enqueue("heartbeat")
    run_worker(queues=("fast",))
    text = metrics_app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    got = samples(text)
    assert got[("paywatch_job_duration_seconds_count", ("job", "heartbeat"))] == 2
    assert got[("paywatch_job_duration_seconds_bucket", ("job", "heartbeat"), ("le", "+Inf"))] == 2
    runs = {k: v for k, v in got.items() if k[0] == "paywatch_job_runs_total"}
    assert runs == {("paywatch_job_runs_total", ("job", "heartbeat"), ("outcome", "finished")): 2}, runs
