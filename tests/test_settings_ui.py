"""The settings page (run-time options) and the API keys page: admins only."""
import re

import pytest
from werkzeug.datastructures import MultiDict

from webapp.domain import options
from webapp.storage import db
from webapp.storage.models import ApiKey, Event, Setting


def events(action):
    with db.database.connection_context():
        return list(Event.select().where(Event.action == action).order_by(Event.id))


def current(app):
    with app.app_context(), db.database.connection_context():
        return options.current()


def form_of(values):
    """What the browser sends for `values`: every field; a ticked checkbox sends "0" then "1"."""
    data = []
    for key, value in values.items():
        if isinstance(value, bool):
            data.append((key, "0"))
            if value:
                data.append((key, "1"))
        elif isinstance(value, list):
            data.append((key, ", ".join(value)))
        else:
            data.append((key, str(value)))
    return data


def post_settings(client, auth, **changes):
    token = auth.csrf_token("/settings/")
    values = {**current(client.application), **changes}
    return client.post("/settings/", data=MultiDict([*form_of(values), ("csrf_token", token)]))


@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_only_admins_reach_the_settings_and_api_keys_pages(client, auth, login_as, role):
    login_as(role)
    assert client.get("/settings/").status_code == 403
    assert client.get("/settings/api-keys").status_code == 403
    token = auth.csrf_token("/")
    assert client.post("/settings/", data={"tie_margin": "1", "csrf_token": token}).status_code == 403
    assert client.post("/settings/api-keys", data={"name": "x", "csrf_token": token}).status_code == 403


def test_the_settings_page_shows_every_option_with_its_current_value(app, client, login_as):
    login_as("admin")
    with app.app_context(), db.database.connection_context():
        options.update({"auto_confirm_threshold": 75}, actor="test")
    page = client.get("/settings/").get_data(as_text=True)
    for option in options.OPTIONS.values():
        assert option.label.replace("&", "&amp;") in page
    assert re.search(r'name="auto_confirm_threshold" value="75"', page)
    assert re.search(r'<option value="hybrid" selected>', page)  # PAYWATCH_VERIFICATION_MODE's default
    assert 'type="checkbox" role="switch" name="unique_amounts"' in page


def test_saving_a_change_persists_it_and_audits_old_and_new(app, client, auth, login_as):
    admin = login_as("admin")
    response = post_settings(client, auth, auto_confirm_threshold=80, verification_mode="manual", unique_amounts=True)
    assert response.status_code == 302
    values = current(app)
    assert values["auto_confirm_threshold"] == 80
    assert values["verification_mode"] == "manual"
    assert values["unique_amounts"] is True
    changed = {e.subject: e for e in events("setting.changed")}
    assert set(changed) == {"setting:auto_confirm_threshold", "setting:verification_mode", "setting:unique_amounts"}
    threshold = changed["setting:auto_confirm_threshold"]
    assert threshold.details == {"old": 60, "new": 80} and threshold.actor == f"user:{admin.id}"
    assert "Saved:" in client.get("/settings/").get_data(as_text=True)


def test_unticking_a_checkbox_turns_the_option_off(app, client, auth, login_as):
    login_as("admin")
    post_settings(client, auth, unique_amounts=True)
    post_settings(client, auth, unique_amounts=False)
    assert current(app)["unique_amounts"] is False


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("auto_confirm_threshold", "150", "must be between 1 and 100"),
        ("verification_mode", "sometimes", "must be one of automated, manual, hybrid"),
        ("match_skew_minutes", "five", "must be a whole number"),
    ],
)
def test_a_bad_value_is_refused_next_to_its_field_and_nothing_is_saved(app, client, auth, login_as, key, value, problem):
    login_as("admin")
    before = current(app)
    # A valid change in the same form must not be saved either.
    response = post_settings(client, auth, tie_margin=before["tie_margin"] + 1, **{key: value})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(rf'<small class="error" id="error-{key}">{problem}</small>', page), page
    assert current(app) == before
    assert events("setting.changed") == []
    with db.database.connection_context():
        assert Setting.select().count() == 0


# ------------------------------------------------------------------ API keys


def create_key(client, auth, name="booking site", role="staff"):
    token = auth.csrf_token("/settings/api-keys")
    response = client.post("/settings/api-keys", data={"name": name, "role": role, "csrf_token": token})
    assert response.status_code == 201, response.get_data(as_text=True)
    match = re.search(r'value="(pw_[0-9a-f]+_[A-Za-z0-9_-]+)"', response.get_data(as_text=True))
    assert match
    return response, match.group(1)


def test_a_new_api_key_is_shown_once_and_not_cached(client, auth, login_as):
    login_as("admin")
    response, key = create_key(client, auth)
    assert response.headers["Cache-Control"] == "no-store"
    assert "booking site" in response.get_data(as_text=True)
    assert key not in client.get("/settings/api-keys").get_data(as_text=True)
    assert key not in client.get("/settings/").get_data(as_text=True)  # nor flashed into the session


def test_the_api_keys_page_lists_keys_with_their_creator(client, auth, login_as):
    admin = login_as("admin")
    _, key = create_key(client, auth, name="shop", role="admin")
    page = client.get("/settings/api-keys").get_data(as_text=True)
    prefix = key.split("_")[1]
    assert f"pw_{prefix}_…" in page and admin.email in page and ">admin<" in page
    assert events("apikey.created")[0].details == {"name": "shop", "role": "admin"}


def test_only_a_hash_of_the_key_is_stored(client, auth, login_as):
    login_as("admin")
    _, key = create_key(client, auth)
    secret = key.split("_", 2)[2]
    with db.database.connection_context():
        row = ApiKey.select().dicts().get()
        stored = " ".join(str(v) for v in row.values())
        logged = " ".join(str(e.details) for e in Event.select())
    assert secret not in stored and key not in stored
    assert secret not in logged


def test_a_key_works_until_it_is_revoked(client, auth, login_as, app):
    login_as("admin")
    _, key = create_key(client, auth)
    api = app.test_client()  # no session cookie: the bearer key alone
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/health", headers=headers).status_code in (200, 503)

    with db.database.connection_context():
        key_id = ApiKey.get().id
    token = auth.csrf_token("/settings/api-keys")
    response = client.post(f"/settings/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    assert events("apikey.revoked")

    refused = api.get("/api/v1/health", headers=headers)
    assert refused.status_code == 401
    body = refused.get_json()
    assert body["success"] is False and body["error"]["code"] == "unauthorized"


def test_a_key_needs_a_name(client, auth, login_as):
    login_as("admin")
    token = auth.csrf_token("/settings/api-keys")
    response = client.post("/settings/api-keys", data={"name": " ", "role": "staff", "csrf_token": token})
    assert response.status_code == 400
    assert "needs a name" in response.get_data(as_text=True)
    with db.database.connection_context():
        assert ApiKey.select().count() == 0


def test_revoking_an_unknown_key_is_404(client, auth, login_as):
    login_as("admin")
    token = auth.csrf_token("/settings/api-keys")
    assert client.post("/settings/api-keys/4242/revoke", data={"csrf_token": token}).status_code == 404


def test_admin_phones_are_read_in_the_default_region_and_a_bad_one_is_refused(app, client, auth, login_as):
    login_as("admin")
    post_settings(client, auth, admin_phones=["0772 123456", "+256700000001"])
    assert current(app)["admin_phones"] == ["+256772123456", "+256700000001"]
    response = post_settings(client, auth, admin_phones=["12"])
    assert response.status_code == 400 and "12" in response.get_data(as_text=True)
