import re

from tests.conftest import PASSWORD, AuthActions
from webapp.storage import db
from webapp.storage.models import Event, User


def audit(action):
    with db.database.connection_context():
        return list(Event.select().where(Event.action == action))


def test_a_viewer_gets_403_on_the_users_page(client, login_as):
    login_as("viewer")
    assert client.get("/users/").status_code == 403


def test_staff_get_403_on_the_users_page(client, login_as):
    login_as("staff")
    assert client.get("/users/").status_code == 403


def test_an_admin_creates_a_user(client, auth, login_as):
    login_as("admin")
    token = auth.csrf_token("/users/")
    response = client.post(
        "/users/",
        data={"email": "New.Person@Example.com", "name": "New", "role": "viewer", "password": "long enough pw", "csrf_token": token},
    )
    assert response.status_code == 302
    with db.database.connection_context():
        user = User.get(User.email == "new.person@example.com")
    assert user.role == "viewer"
    created = audit("user.created")
    assert any(e.subject == f"user:{user.id}" for e in created)


def test_a_duplicate_email_is_refused_with_a_message(client, auth, login_as, make_user):
    login_as("admin")
    existing = make_user("staff")
    token = auth.csrf_token("/users/")
    response = client.post(
        "/users/", data={"email": existing.email, "role": "viewer", "password": "long enough pw", "csrf_token": token}
    )
    assert response.status_code == 400
    assert b"already exists" in response.data


def test_an_admin_changes_a_role_and_it_is_audited(client, auth, login_as, make_user):
    admin = login_as("admin")
    user = make_user("viewer")
    token = auth.csrf_token("/users/")
    client.post(f"/users/{user.id}/role", data={"role": "staff", "csrf_token": token})
    with db.database.connection_context():
        assert User.get_by_id(user.id).role == "staff"
    event = audit("user.role_changed")[0]
    assert event.actor == f"user:{admin.id}" and event.details == {"old": "viewer", "new": "staff"}


def test_deactivating_a_user_logs_them_out(app, client, auth, login_as, make_user):
    login_as("admin")
    user = make_user("staff")
    theirs = app.test_client()
    AuthActions(theirs).login(user.email)
    assert theirs.get("/").status_code == 200
    client.post(f"/users/{user.id}/active/0", data={"csrf_token": auth.csrf_token("/users/")})
    assert theirs.get("/").status_code == 302
    assert audit("user.deactivated")


def test_the_last_admin_cannot_be_demoted_or_deactivated(client, auth, login_as):
    admin = login_as("admin")
    token = auth.csrf_token("/users/")
    client.post(f"/users/{admin.id}/role", data={"role": "viewer", "csrf_token": token})
    client.post(f"/users/{admin.id}/active/0", data={"csrf_token": token})
    with db.database.connection_context():
        admin = User.get_by_id(admin.id)
    assert admin.role == "admin" and admin.is_active
    assert b"last active admin" in client.get("/users/").data


def test_a_password_reset_shows_the_new_password_once_and_it_works(app, client, auth, login_as, make_user):
    login_as("admin")
    user = make_user("viewer")
    response = client.post(f"/users/{user.id}/reset-password", data={"csrf_token": auth.csrf_token("/users/")})
    assert response.headers["Cache-Control"] == "no-store"
    new_password = re.search(r"<code>([^<]+)</code>", response.get_data(as_text=True)).group(1)
    assert b"<code>" not in client.get("/users/").data
    other = AuthActions(app.test_client())
    assert other.login(user.email, PASSWORD).status_code == 200  # old one refused
    assert other.login(user.email, new_password).status_code == 302
    assert audit("user.password_reset")


def test_the_cli_creates_a_user(runner):
    result = runner.invoke(args=["users", "create", "cli@example.com", "--role", "admin", "--password", "cli password 1"])
    assert result.exit_code == 0, result.output
    with db.database.connection_context():
        assert User.get(User.email == "cli@example.com").role == "admin"


def test_the_cli_refuses_a_short_password(runner):
    result = runner.invoke(args=["users", "create", "cli@example.com", "--password", "short"])
    assert result.exit_code != 0 and "at least 10 characters" in result.output


def test_bootstrap_creates_the_first_admin_once(runner):
    first = runner.invoke(args=["users", "bootstrap"])
    assert "password:" in first.output
    with db.database.connection_context():
        assert User.select().where(User.role == "admin").count() == 1
    second = runner.invoke(args=["users", "bootstrap"])
    assert "users exist" in second.output
