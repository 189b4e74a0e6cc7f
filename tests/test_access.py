"""Every route declares who may reach it; each role gets what its level allows."""
import re

import pytest

from webapp.storage.models import Role
from webapp.web.access import LEVELS, PUBLIC

# Routes not decorated with @access, and what guards them instead.
GUARDED_ELSEWHERE = {
    "static": "public static files",
    "rq_dashboard": "app-level before_request in webapp/web/ops.py (admins only)",
}
RANK = {PUBLIC: -1, Role.VIEWER: 0, Role.STAFF: 1, Role.ADMIN: 2}
API = ("api:staff", "api:admin")


def declared_routes(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        yield rule, getattr(view, "access", None)


def test_every_route_declares_its_access(app):
    missing = [
        rule.rule
        for rule, level in declared_routes(app)
        if level is None and rule.endpoint.split(".")[0] not in GUARDED_ELSEWHERE
    ]
    assert missing == [], f"routes without @access(...): {missing}"
    assert all(level in LEVELS for _, level in declared_routes(app) if level is not None)


def _url(rule):
    # Ids that exist nowhere: an allowed role gets 404, never a change to itself.
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "999999", rule.rule)


def _sent_to_login(response):
    return response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.STAFF, Role.ADMIN])
def test_each_role_reaches_exactly_what_its_level_allows(app, client, auth, login_as, role):
    if role:
        login_as(role)
    # A valid CSRF token, so that what answers is the access check, not CSRF.
    token = auth.csrf_token("/" if role else "/login")
    for rule, level in declared_routes(app):
        if level is None or level == PUBLIC or rule.endpoint == "auth.logout":
            continue  # logout ends the session the walk needs; tests/test_auth.py covers it
        if level in API:
            # A logged-in session is no API key: every API call wants its bearer key.
            response = client.get(_url(rule)) if "GET" in rule.methods else client.post(_url(rule), json={})
            assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized", rule.rule
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_url(rule), method=method, headers={"X-CSRFToken": token})
            where = f"{method} {rule.rule} as {role}"
            if role is None:
                assert _sent_to_login(response), where
            elif RANK[role] < RANK[level]:
                assert response.status_code == 403, where
            else:
                assert response.status_code != 403 and not _sent_to_login(response), where


@pytest.mark.parametrize("role, expected", [(None, 302), (Role.VIEWER, 403), (Role.STAFF, 403), (Role.ADMIN, 200)])
def test_the_rq_dashboard_is_for_admins_only(client, login_as, role, expected):
    if role:
        login_as(role)
    response = client.get("/ops/rq/")
    assert response.status_code == expected
    if role is None:
        assert "/login" in response.headers["Location"]


def test_api_routes_refuse_a_missing_key_and_accept_a_staff_key(app, client):
    from webapp.domain import apikeys
    from webapp.storage import db

    with app.app_context(), db.database.connection_context():
        key = apikeys.create("walk", "staff")[1]
    for rule, level in declared_routes(app):
        if level not in API:
            continue
        method = "GET" if "GET" in rule.methods else "POST"
        anonymous = client.open(_url(rule), method=method, json={})
        assert anonymous.status_code == 401, rule.rule
        keyed = client.open(_url(rule), method=method, json={}, headers={"Authorization": f"Bearer {key}"})
        assert keyed.status_code not in (401, 403), (rule.rule, keyed.get_data(as_text=True))
