"""The WhatsApp watchdog (status-session + check-connection-session against the sandbox wppconnect)
and the session page: state, last check, last message sent, reconnect attempts, the test message."""
from __future__ import annotations

from datetime import timedelta

import pytest

from webapp.domain import alerts, whatsapp_session
from webapp.storage.models import Alert, Notification, NotificationStatus, utcnow

SESSION = "paywatch"


@pytest.fixture
def send(client, auth):
    def post(path, data=None, **kwargs):
        token = auth.csrf_token("/notifications/")
        return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)

    return post


def _session_check(app):
    from jobs import watchdog

    with app.app_context():
        return watchdog.session_check()


def test_the_watchdog_records_each_check_reconnects_and_alerts_when_down_too_long(whatsapp, app, domain, redis_conn):
    state = _session_check(app)
    assert state["session"] == "CONNECTED" and state["checked_at"] and not state.get("down_since")

    whatsapp.control(f"sessions/{SESSION}/state", {"state": "CLOSED"})
    state = _session_check(app)
    assert state["down_since"] and state["reconnect_attempts"] == 1  # start-session asked once
    redis_conn.delete("paywatch:whatsapp:reconnect")

    # Still down (waiting for a QR scan) well past whatsapp_down_minutes (5): the alert opens, once.
    whatsapp.control(f"sessions/{SESSION}/state", {"state": "QRCODE"})
    domain(whatsapp_session.update, down_since=(utcnow() - timedelta(minutes=6)).isoformat())
    state = _session_check(app)
    assert state["session"] == "QRCODE" and state["reconnect_attempts"] == 1  # a QR needs a person, not a retry
    _session_check(app)
    assert domain(lambda: [a.key for a in Alert.select().where(Alert.kind == alerts.WHATSAPP_DOWN)]) == ["session"]
    assert domain(alerts.is_open, alerts.WHATSAPP_DOWN, "session")

    whatsapp.control(f"sessions/{SESSION}/state", {"state": "CONNECTED"})
    state = _session_check(app)
    assert state["session"] == "CONNECTED" and state["down_since"] is None
    assert not domain(alerts.is_open, alerts.WHATSAPP_DOWN, "session")


def test_an_unreachable_server_counts_as_down(app, domain, environ):
    from webapp import create_app
    from webapp.config import load_settings

    unreachable = create_app(load_settings({**environ, "WPPCONNECT_URL": "http://127.0.0.1:9",
                                            "WPPCONNECT_SECRET_KEY": "x"}))
    state = _session_check(unreachable)
    assert state["session"] == "UNREACHABLE" and "cannot reach wppconnect" in state["last_error"]
    assert state["down_since"]


def test_the_session_page_shows_last_check_last_message_and_reconnects(client, login_as, domain):
    sent_at = utcnow() - timedelta(minutes=3)
    domain(Notification.create, kind="admin_alert", phone="+256700000001", status=NotificationStatus.SENT,
           sent_at=sent_at, dedupe_key="x:1")
    domain(whatsapp_session.update, session="CLOSED", checked_at=utcnow().isoformat(), reconnect_attempts=4,
           last_reconnect_at=utcnow().isoformat(), down_since=utcnow().isoformat())
    login_as("viewer")
    page = client.get("/notifications/whatsapp").get_data(as_text=True)
    local = sent_at.astimezone(client.application.config["PAYWATCH"].zone)
    assert local.strftime("%Y-%m-%d %H:%M") in page.split('id="session-last-sent">')[1].split("<")[0]
    assert page.split('id="session-reconnects">')[1].startswith("4 (last ")
    assert 'id="session-down-since"' in page and 'id="session-checked">—' not in page
    assert 'id="session-test"' not in page  # admins only


def test_an_admin_sends_a_test_message_through_the_outbox(client, login_as, domain, send):
    login_as("admin")
    response = send("/notifications/whatsapp/test-message", {"phone": "0772 123456"}, follow_redirects=True)
    assert response.status_code == 200 and "Test message queued for +256772123456" in response.get_data(as_text=True)
    rows = domain(lambda: [(n.kind, n.phone, n.status) for n in Notification.select()])
    assert rows == [("admin_alert", "+256772123456", "pending")]
    assert send("/notifications/whatsapp/test-message", {"phone": "12"}).status_code == 400
    assert domain(Notification.select().count) == 1


def test_a_test_message_needs_an_admin(client, login_as, send):
    login_as("staff")
    assert send("/notifications/whatsapp/test-message", {"phone": "+256772123456"}).status_code == 403


def test_a_test_message_needs_a_csrf_token(client, login_as, domain):
    login_as("admin")
    assert client.post("/notifications/whatsapp/test-message", data={"phone": "+256772123456"}).status_code == 400
    assert domain(Notification.select().count) == 0
