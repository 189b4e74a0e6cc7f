from tests.conftest import PASSWORD
from webapp.storage import db
from webapp.storage.models import Event, User


def events(action):
    with db.database.connection_context():
        return list(Event.select().where(Event.action == action))


def test_login_page_renders(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert b'name="csrf_token"' in page.data


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_a_user_logs_in_sees_the_dashboard_and_the_login_is_audited(client, auth, make_user):
    user = make_user("viewer")
    response = auth.login(user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and b"Pending requests" in page.data
    logins = events("auth.login")
    assert [e.subject for e in logins] == [f"user:{user.id}"]
    with db.database.connection_context():
        assert User.get_by_id(user.id).last_login_at is not None


def test_a_wrong_password_is_refused_and_audited(client, auth, make_user):
    user = make_user("staff")
    response = auth.login(user.email, "not the password")
    assert b"Email or password is not right" in response.data
    assert client.get("/").status_code == 302
    failed = events("auth.login_failed")
    assert failed[0].subject == f"user:{user.id}" and failed[0].details["reason"] == "bad password"
    assert "not the password" not in str(failed[0].details)


def test_an_unknown_email_is_refused_and_audited(auth):
    auth.login("nobody@example.com", "whatever-it-is")
    assert events("auth.login_failed")[0].subject == "email:nobody@example.com"


def test_a_deactivated_user_cannot_log_in(auth, make_user, client):
    user = make_user("staff")
    with db.database.connection_context():
        User.update(is_active=False).where(User.id == user.id).execute()
    auth.login(user.email)
    assert client.get("/").status_code == 302
    assert events("auth.login_failed")[0].details["reason"] == "inactive"


def test_a_post_without_csrf_token_is_refused(client, make_user):
    user = make_user("admin")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert b"the form came without its token" in response.data


def test_logins_are_throttled(client, auth, make_user):
    user = make_user("staff")
    statuses = [auth.login(user.email, "wrong password!").status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5
    assert statuses[5] == 429
    # Even the right password waits out the window.
    assert auth.login(user.email).status_code == 429


def test_logout_is_a_post_and_ends_the_session(client, auth, login_as):
    login_as("viewer")
    assert client.get("/logout").status_code == 405
    assert auth.logout().status_code == 302
    assert client.get("/").status_code == 302


def test_login_does_not_redirect_off_site(client, auth, make_user):
    user = make_user("viewer")
    token = auth.csrf_token("/login")
    response = client.post(
        "/login?next=//evil.example/", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.headers["Location"] == "/"


def test_session_cookie_is_http_only_and_same_site(client, auth, make_user):
    user = make_user("viewer")
    response = auth.login(user.email)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("paywatch_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_cookies_are_secure(settings):
    from webapp import create_app

    app = create_app(settings.with_overrides(secure_cookies=True))
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_a_user_changes_their_own_password_and_other_sessions_end(app, client, auth, make_user):
    user = make_user("staff")
    other = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(other).login(user.email)
    auth.login(user.email)
    token = auth.csrf_token("/account/password")
    response = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "a brand new secret", "confirm": "a brand new secret", "csrf_token": token},
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this session stays
    assert other.get("/").status_code == 302  # the other one is logged out
    assert events("user.password_changed")
    auth.logout()
    assert auth.login(user.email, "a brand new secret").status_code == 302


def test_a_wrong_current_password_does_not_change_it(client, auth, login_as):
    login_as("staff")
    token = auth.csrf_token("/account/password")
    response = client.post(
        "/account/password", data={"current": "nope nope nope", "new": "x" * 12, "confirm": "x" * 12, "csrf_token": token}
    )
    assert response.status_code == 400
    assert b"current password is not right" in response.data


def test_passwords_are_hashed_with_argon2(make_user):
    user = make_user("viewer")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_a_login_rehashes_a_password_made_with_other_argon2_parameters(app, make_user, auth):
    """The suite hashes with PAYWATCH_ARGON2_PROFILE=CHEAPEST; a hash of the default profile (what a
    database made elsewhere holds) still logs in, and is re-hashed with the configured profile."""
    from argon2 import PasswordHasher, profiles

    user = make_user("viewer")
    stronger = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY).hash(PASSWORD)
    with app.app_context(), db.database.connection_context():
        User.update(password_hash=stronger).where(User.id == user.id).execute()
    assert "m=65536" in stronger and "m=8," in user.password_hash

    assert auth.login(user.email).status_code == 302
    with app.app_context(), db.database.connection_context():
        assert "m=8," in User.get_by_id(user.id).password_hash
