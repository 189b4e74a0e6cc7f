"""Login sessions end on the server: a copy of an ended session's cookie opens nothing."""
from datetime import timedelta

from tests.conftest import PASSWORD, AuthActions
from webapp.domain import login_sessions
from webapp.storage import db
from webapp.storage.models import Event, LoginSession, User, utcnow

COOKIE = "paywatch_session"


def cookie_of(client) -> str:
    return client.get_cookie(COOKIE).value


def replay(app, cookie: str):
    """A second browser holding a copy of the cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie)
    return thief


def logged_in(app, email: str):
    client = app.test_client()
    assert AuthActions(client).login(email).status_code == 302
    return client


def sent_to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def rows(user_id: int) -> list[LoginSession]:
    with db.database.connection_context():
        return list(LoginSession.select().where(LoginSession.user == user_id).order_by(LoginSession.id))


def test_an_old_cookie_replayed_after_logout_gets_the_login_page(app, client, auth, make_user):
    user = make_user("staff")
    auth.login(user.email)
    cookie = cookie_of(client)
    assert replay(app, cookie).get("/").status_code == 200  # a copy works while the session lives

    logout = auth.logout()
    assert logout.status_code == 302 and logout.headers["Clear-Site-Data"] == '"storage"'
    response = replay(app, cookie).get("/requests/")
    assert sent_to_login(response) and response.headers["Location"] == "/login?next=%2Frequests%2F"
    [row] = rows(user.id)
    assert row.end_reason == "logout" and row.ended_at is not None
    with db.database.connection_context():
        assert Event.get(Event.action == "auth.logout").subject == f"user:{user.id}"


def test_an_htmx_poll_with_an_ended_session_gets_401_and_a_redirect_to_login(app, client, auth, make_user):
    user = make_user("viewer")
    auth.login(user.email)
    cookie = cookie_of(client)
    auth.logout()
    response = replay(app, cookie).get(
        "/dashboard/counters", headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/payments/?page=2"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=%2Fpayments%2F"
    assert response.data == b""  # nothing for htmx to swap into the fragment


def test_a_json_call_with_an_ended_session_gets_401_in_the_error_format(app, client, auth, make_user):
    user = make_user("admin")
    auth.login(user.email)
    cookie = cookie_of(client)
    auth.logout()
    response = replay(app, cookie).get("/metrics", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_logging_out_on_one_device_keeps_the_others(app, make_user):
    user = make_user("staff")
    laptop, phone = logged_in(app, user.email), logged_in(app, user.email)
    AuthActions(laptop).logout()
    assert sent_to_login(laptop.get("/"))
    assert phone.get("/").status_code == 200
    assert [r.end_reason for r in rows(user.id)] == ["logout", None]


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, make_user):
    user = make_user("staff")
    here, elsewhere = logged_in(app, user.email), logged_in(app, user.email)
    stolen = cookie_of(elsewhere)
    auth = AuthActions(here)
    response = here.post("/account/password", data={
        "current": PASSWORD, "new": "a brand new secret", "confirm": "a brand new secret",
        "csrf_token": auth.csrf_token("/account/password")})
    assert response.status_code == 302
    assert here.get("/").status_code == 200
    assert sent_to_login(elsewhere.get("/")) and sent_to_login(replay(app, stolen).get("/"))
    assert [r.end_reason for r in rows(user.id)] == [None, "password_changed"]
    with db.database.connection_context():
        assert Event.get(Event.action == "user.password_changed").details == {"sessions_ended": 1}


def test_an_admin_reset_ends_every_session_of_that_user(app, client, login_as, auth, make_user):
    admin = login_as("admin")
    user = make_user("staff")
    theirs = logged_in(app, user.email)
    client.post(f"/users/{user.id}/reset-password", data={"csrf_token": auth.csrf_token("/users/")})
    assert sent_to_login(theirs.get("/"))
    assert [r.end_reason for r in rows(user.id)] == ["password_reset"]
    assert client.get("/").status_code == 200  # the admin's own session is not touched
    assert [r.end_reason for r in rows(admin.id)] == [None]


def test_admins_resetting_their_own_password_keep_the_session_they_use(app, client, login_as, auth):
    admin = login_as("admin")
    other_device = logged_in(app, admin.email)
    client.post(f"/users/{admin.id}/reset-password", data={"csrf_token": auth.csrf_token("/users/")})
    assert client.get("/").status_code == 200
    assert sent_to_login(other_device.get("/"))


def test_a_deactivated_user_stays_logged_out_after_reactivation(app, client, login_as, auth, make_user):
    login_as("admin")
    user = make_user("staff")
    theirs = logged_in(app, user.email)
    cookie = cookie_of(theirs)
    token = auth.csrf_token("/users/")
    client.post(f"/users/{user.id}/active/0", data={"csrf_token": token})
    assert sent_to_login(theirs.get("/"))
    client.post(f"/users/{user.id}/active/1", data={"csrf_token": token})
    assert sent_to_login(replay(app, cookie).get("/"))  # ended sessions never come back
    assert [r.end_reason for r in rows(user.id)] == ["deactivated"]


def test_a_session_ends_after_a_day_unused_or_thirty_days_after_login(app, make_user):
    user = make_user("viewer")
    start = utcnow()
    with app.app_context(), db.database.connection_context():
        idle = login_sessions.start(user, now=start)
        busy = login_sessions.start(user, now=start)
        assert login_sessions.user_for(idle, now=start + login_sessions.IDLE_LIMIT - timedelta(minutes=1)).id == user.id
        assert login_sessions.user_for(idle, now=start + 2 * login_sessions.IDLE_LIMIT) is None
        # Used every few hours: alive until its lifetime is over.
        at = start
        while at < start + login_sessions.LIFETIME - timedelta(hours=6):
            at += timedelta(hours=6)
            assert login_sessions.user_for(busy, now=at) is not None, at
        assert login_sessions.user_for(busy, now=start + login_sessions.LIFETIME + timedelta(hours=1)) is None
    assert [r.end_reason for r in rows(user.id)] == ["expired", "expired"]


def test_only_a_hash_of_the_key_is_stored_and_no_remember_cookie_is_set(app, client, auth, make_user):
    user = make_user("viewer")
    response = auth.login(user.email)
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token=")]
    key = app.session_interface.get_signing_serializer(app).loads(cookie_of(client))["_user_id"]
    [row] = rows(user.id)
    assert len(key) >= 40 and key not in row.key_hash and str(user.id) != key


def test_users_see_their_sessions_and_log_another_one_out(app, client, auth, make_user):
    user = make_user("staff")
    stranger = make_user("staff")
    phone = app.test_client()
    phone.environ_base["HTTP_USER_AGENT"] = "Phone browser 1.0"
    AuthActions(phone).login(user.email)
    AuthActions(client).login(user.email)
    strangers_session = logged_in(app, stranger.email)

    page = client.get("/account/sessions").get_data(as_text=True)
    mine, theirs = rows(user.id)[1], rows(user.id)[0]
    assert "Phone browser 1.0" in page and "this session" in page
    assert f'id="session-{mine.id}"' in page and f'id="session-{theirs.id}"' in page
    token = auth.csrf_token("/account/sessions")

    other_users = rows(stranger.id)[0].id
    assert client.post(f"/account/sessions/{other_users}/end", data={"csrf_token": token}).status_code == 404
    assert strangers_session.get("/").status_code == 200
    assert client.post(f"/account/sessions/{mine.id}/end", data={"csrf_token": token}).status_code == 400
    assert client.post(f"/account/sessions/{theirs.id}/end", data={"csrf_token": token}).status_code == 302
    assert sent_to_login(phone.get("/"))
    assert client.get("/").status_code == 200
    assert f'id="session-{theirs.id}"' not in client.get("/account/sessions").get_data(as_text=True)
    with db.database.connection_context():
        assert Event.get(Event.action == "auth.session_ended").details == {"session": theirs.id}
        assert User.get_by_id(user.id).is_active
