"""Source definitions, their CLI, health and alarms (raised once, cleared when fixed)."""
import json

import pytest

from webapp.domain import options, sources
from webapp.storage import db
from webapp.storage.models import Event, Notification, Source

PORTAL = {
    "kind": "portal", "name": "acme-portal", "interval_s": 30,
    "config": {"base_url": "http://127.0.0.1:1", "login": {"username_env": "ACME_USER", "password_env": "ACME_PASSWORD"},
               "list": {"url": "/payments"}, "columns": {"amount": "Amount"}, "status_map": {"Completed": "paid"}},
}


@pytest.mark.parametrize("change, message", [
    ({"kind": "fax"}, "kind must be one of"),
    ({"name": "Bad Name!"}, "name must be"),
    ({"interval_s": 0}, "interval_s"),
    ({"config": {"base_url": "x"}}, "config is missing login, list, columns, status_map"),
    ({"config": {**PORTAL["config"], "login": {"password": "hunter2"}}}, "config holds a secret (password)"),
])
def test_a_bad_source_is_refused_naming_the_problem(ctx, change, message):
    with pytest.raises(sources.SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sources.save({**PORTAL, **change}, actor="test")
    assert Source.select().count() == 0


def test_saving_twice_updates_the_same_source(ctx):
    first, created = sources.save(PORTAL, actor="test")
    second, created_again = sources.save({**PORTAL, "interval_s": 90}, actor="test")
    assert created and not created_again and first.id == second.id and second.interval_s == 90


def test_an_alarm_is_raised_once_tells_the_admins_once_and_clears(ctx):
    options.update({"admin_phones": ["+256700000001"]}, actor="test")
    source, _ = sources.save(PORTAL, actor="test")
    assert sources.raise_alarm(source.id, "column_missing", "column 'Amount' is missing") is True
    assert sources.raise_alarm(source.id, "column_missing", "column 'Amount' is missing") is False
    alerts = list(Notification.select().where(Notification.kind == "admin_alert"))
    assert len(alerts) == 1 and alerts[0].phone == "+256700000001"
    assert alerts[0].context["text"].endswith("column 'Amount' is missing")
    fresh = sources.freshness(Source.get_by_id(source.id))
    assert fresh.ok is False and fresh.alarms == {"column_missing": "column 'Amount' is missing"}
    assert sources.clear_alarm(source.id, "column_missing") is True
    assert sources.clear_alarm(source.id, "column_missing") is False
    actions = [e.action for e in Event.select().where(Event.subject == "source:acme-portal")]
    assert actions == ["source.added", "source.alarm", "source.alarm_cleared"]


def test_a_source_is_fresh_after_a_recent_good_pass(ctx):
    source, _ = sources.save(PORTAL, actor="test")
    assert sources.freshness(source).ok is False  # never ran
    sources.record_pass(source.id, ok=True, rows=3)
    fresh = sources.freshness(Source.get_by_id(source.id))
    assert fresh.ok and fresh.state["rows"] == 3
    sources.record_pass(source.id, ok=False, error="HTTP 503 from the portal")
    assert Source.get_by_id(source.id).last_error == "HTTP 503 from the portal"


def test_the_cli_adds_and_lists_sources(runner, tmp_path, redis_conn):
    path = tmp_path / "portal.json"
    path.write_text(json.dumps(PORTAL))
    added = runner.invoke(args=["sources", "add", "--file", str(path)])
    assert added.exit_code == 0 and "added portal source 'acme-portal'" in added.output, added.output
    listed = runner.invoke(args=["sources", "list"])
    assert "acme-portal" in listed.output and "stale" in listed.output


def test_the_cli_names_what_is_wrong_with_a_file(runner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    result = runner.invoke(args=["sources", "add", "--file", str(path)])
    assert result.exit_code != 0 and "not valid JSON" in result.output
    path.write_text(json.dumps({**PORTAL, "kind": "fax"}))
    result = runner.invoke(args=["sources", "add", "--file", str(path)])
    assert result.exit_code != 0 and "kind must be one of" in result.output


def test_api_health_lists_each_source(app, client):
    from webapp.domain import apikeys

    with app.app_context(), db.database.connection_context():
        key = apikeys.create("h", "staff")[1]
        sources.save(PORTAL, actor="test")
    body = client.get("/api/v1/health", headers={"Authorization": f"Bearer {key}"}).get_json()
    assert [s["name"] for s in body["sources"]] == ["acme-portal"] and body["sources"][0]["ok"] is False


def test_a_source_not_heard_from_for_three_intervals_raises_silent_and_clears_when_heard_again(ctx):
    from datetime import timedelta

    from webapp.storage.models import utcnow

    options.update({"admin_phones": ["+256700000001"]}, actor="test")
    source, _ = sources.save(PORTAL, actor="test")  # interval 30 s: silent after 3 × 30 + 60 s
    start = utcnow()
    sources.record_pass(source.id, ok=True, now=start, last_contact_at=start)
    assert sources.check_silence(start + timedelta(seconds=149)) == {"raised": [], "cleared": []}
    assert sources.check_silence(start + timedelta(seconds=151)) == {"raised": ["acme-portal"], "cleared": []}
    alarms = Source.get_by_id(source.id).state["alarms"]
    assert "no contact since" in alarms["silent"] and "30 s" in alarms["silent"]
    assert sources.check_silence(start + timedelta(seconds=200))["raised"] == []  # raised once, told once
    assert Notification.select().where(Notification.kind == "admin_alert").count() == 1
    # Failed passes without contact do not count as being heard from.
    sources.record_pass(source.id, ok=False, error="HTTP 503", now=start + timedelta(seconds=210))
    assert "silent" in Source.get_by_id(source.id).state["alarms"]
    later = start + timedelta(seconds=220)
    sources.record_pass(source.id, ok=True, now=later, last_contact_at=later)
    assert sources.check_silence(later + timedelta(seconds=1)) == {"raised": [], "cleared": ["acme-portal"]}
    assert sources.freshness(Source.get_by_id(source.id)).alarms == {}


def test_a_source_never_heard_from_is_silent_three_intervals_after_it_was_added(ctx):
    from datetime import timedelta

    source, _ = sources.save(PORTAL, actor="test")
    assert sources.check_silence(source.created_at + timedelta(seconds=100))["raised"] == []
    assert sources.check_silence(source.created_at + timedelta(seconds=151))["raised"] == ["acme-portal"]
    assert "since it was added" in Source.get_by_id(source.id).state["alarms"]["silent"]
