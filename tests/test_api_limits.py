"""Per-key API rate limits: the default and a key's own, counted on Redis, 429 in the error format."""
from __future__ import annotations

import re

import pytest

from webapp.config import ConfigError, load_settings
from webapp.domain import apikeys
from webapp.storage import db
from webapp.storage.models import ApiKey


def make_key(app, rate_limit=None, name="integration"):
    with app.app_context(), db.database.connection_context():
        return apikeys.create(name, "staff", rate_limit=rate_limit)[1]


def call(client, key):
    return client.get("/api/v1/requests", headers={"Authorization": f"Bearer {key}"})


def test_a_key_over_its_own_limit_gets_429_with_retry_after_in_the_error_format(app, client):
    key = make_key(app, "3 per minute")
    answers = [call(client, key) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
    assert 0 < int(answers[0].headers["RateLimit-Reset"]) <= 60

    over = call(client, key)
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["RateLimit-Remaining"] == "0" and over.headers["RateLimit-Limit"] == "3"
    body = over.get_json()
    assert body["success"] is False and body["error"]["code"] == "rate_limited"
    assert set(body["error"]) == {"code", "message", "details", "timestamp"}


def test_each_key_has_its_own_count(app, client):
    busy, quiet = make_key(app, "2 per minute", "busy"), make_key(app, "2 per minute", "quiet")
    assert [call(client, busy).status_code for _ in range(3)] == [200, 200, 429]
    assert call(client, quiet).status_code == 200


def test_keys_without_their_own_limit_get_paywatch_api_rate_limit(environ, redis_conn):
    from webapp import create_app

    app = create_app(load_settings({**environ, "PAYWATCH_API_RATE_LIMIT": "2 per hour"}))
    with app.app_context():
        db.upgrade()
    key = make_key(app)
    client = app.test_client()
    first = call(client, key)
    assert first.headers["RateLimit-Limit"] == "2" and 3000 < int(first.headers["RateLimit-Reset"]) <= 3600
    assert [call(client, key).status_code for _ in range(2)] == [200, 429]


def test_the_count_lives_in_redis_where_every_web_process_sees_it(app, client, redis_conn):
    key = make_key(app, "5 per minute")
    call(client, key)
    prefix = key.split("_")[1]
    assert any(prefix in name.decode() for name in redis_conn.keys("*api-key*"))


def test_with_redis_down_the_api_still_answers_and_still_limits(app, client, redis_control):
    key = make_key(app, "2 per minute")
    redis_control.stop()
    try:
        answers = [call(client, key) for _ in range(3)]
    finally:
        redis_control.start()
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].get_json()["error"]["code"] == "rate_limited"


def test_a_bad_default_limit_stops_start_up_naming_the_variable(environ):
    with pytest.raises(ConfigError, match="PAYWATCH_API_RATE_LIMIT"):
        load_settings({**environ, "PAYWATCH_API_RATE_LIMIT": "lots"})
    with pytest.raises(ConfigError, match="at least one"):
        load_settings({**environ, "PAYWATCH_API_RATE_LIMIT": "0 per minute"})


def test_the_cli_creates_a_key_with_its_own_limit_and_refuses_a_bad_one(app, runner):
    result = runner.invoke(args=["apikeys", "create", "hotspot", "--rate-limit", "100 per minute"])
    assert result.exit_code == 0, result.output
    assert "100 per minute" in result.output
    refused = runner.invoke(args=["apikeys", "create", "other", "--rate-limit", "fast please"])
    assert refused.exit_code != 0 and "rate limit" in refused.output
    with app.app_context(), db.database.connection_context():
        assert [(k.name, k.rate_limit) for k in ApiKey.select()] == [("hotspot", "100 per minute")]


def test_the_settings_page_sets_a_keys_limit(app, client, auth, login_as):
    login_as("admin")
    token = auth.csrf_token("/settings/api-keys")
    form = {"name": "shop", "role": "staff", "rate_limit": "10/second", "csrf_token": token}
    created = client.post("/settings/api-keys", data=form)
    assert created.status_code == 201
    key = re.search(r'value="(pw_[0-9a-f]+_[A-Za-z0-9_-]+)"', created.get_data(as_text=True)).group(1)
    assert call(app.test_client(), key).headers["RateLimit-Limit"] == "10"
    assert "10/second" in client.get("/settings/api-keys").get_data(as_text=True)

    refused = client.post("/settings/api-keys", data={**form, "name": "other", "rate_limit": "many"})
    assert refused.status_code == 400 and "rate limit" in refused.get_data(as_text=True)
    with app.app_context(), db.database.connection_context():
        assert ApiKey.select().count() == 1


def test_with_several_limits_the_tightest_one_decides_and_is_shown(app, client):
    key = make_key(app, "5 per minute; 2 per hour")
    answers = [call(client, key) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "2" and answers[0].headers["RateLimit-Remaining"] == "1"
