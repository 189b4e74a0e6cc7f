"""The WhatsApp session page (/notifications/whatsapp): state, last check, last message sent,
reconnect attempts; admins check, start or close the session and send a test message.

The buttons only enqueue the `whatsapp_session` job (the answer shows on the page, polled every
3 s); the test message is an ordinary outbox row (kind admin_alert), so it obeys pacing and
shows in the notification log with its outcome.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from webapp.config import settings
from webapp.domain import options, outbox, whatsapp_session
from webapp.domain.phones import PhoneError, to_e164
from webapp.plumbing import jobqueue
from webapp.storage.models import Role
from webapp.web.access import access, actor
from webapp.web.htmx import is_partial_request, render

bp = Blueprint("whatsapp_session", __name__, url_prefix="/notifications/whatsapp")

# Buttons of the session page → the argument of jobs.watchdog.session_action.
SESSION_ACTIONS = {"check": "status", "start": "start", "close": "close"}


def _when(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def session_view() -> dict[str, Any]:
    """whatsapp_session.get() for the page: times parsed, a QR only when it is a data: image URL."""
    state = whatsapp_session.get()
    qrcode = state.get("qrcode") or ""
    return {
        "session": state.get("session") or "unknown", "paused": state.get("paused"),
        "last_error": state.get("last_error"),
        "qrcode": qrcode if qrcode.startswith("data:image/") else None,
        "last_sent_at": whatsapp_session.last_sent_at(), "checked_at": _when(state.get("checked_at")),
        "updated_at": _when(state.get("updated_at")), "down_since": _when(state.get("down_since")),
        "reconnect_attempts": int(state.get("reconnect_attempts") or 0),
        "last_reconnect_at": _when(state.get("last_reconnect_at")),
    }


def _session_page(status: int = 200, test_phone: str = ""):
    admin_phones = options.get("admin_phones") or []
    return render("pages/notifications/whatsapp.html", "partials/notifications/session.html", status=status,
                  state=session_view(), is_admin=current_user.has_role(Role.ADMIN),
                  test_phone=test_phone or (admin_phones[0] if admin_phones else ""), sandbox_log=_sandbox_log())


def _sandbox_log() -> str | None:
    """In the demo (PAYWATCH_DEMO), the fake WhatsApp's page of every message it received."""
    url = settings().wppconnect_url
    return f"{url.rstrip('/')}/_sandbox/log" if settings().demo and url else None


@bp.get("")
@access(Role.VIEWER)
def whatsapp():
    return _session_page()


@bp.get("/state")
@access(Role.VIEWER)
def whatsapp_state_partial():
    """The session partial for polling; a plain visit gets the page."""
    if not is_partial_request():
        return redirect(url_for("whatsapp_session.whatsapp"))
    return _session_page()


@bp.post("/test-message")
@access(Role.ADMIN)
def test_message():
    """Queue one test message to the phone given (default: the first admin number)."""
    raw = (request.form.get("phone") or "").strip()
    try:
        phone = to_e164(raw, settings().phone_region)
    except PhoneError as exc:
        flash(f"Test message not sent: {exc}", "error")
        return _session_page(status=400, test_phone=raw[:40])
    key = outbox.test_message(phone, actor=actor())
    flash(f"Test message queued for {phone}; its outcome shows below and in the notification log ({key}).",
          "success")
    return redirect(url_for("whatsapp_session.whatsapp"))


@bp.post("/<action>")
@access(Role.ADMIN)
def whatsapp_action(action: str):
    if action not in SESSION_ACTIONS:
        abort(404, f"There is no session action {action!r}.")
    try:
        jobqueue.enqueue("whatsapp_session", SESSION_ACTIONS[action])
    except RedisError as exc:  # the action is nothing but this job: say so, change nothing
        flash(f"Could not ask the WhatsApp server to {action} the session: the job queue did not answer "
              f"({type(exc).__name__}). Try again in a minute.", "error")
        return _session_page(status=503)
    flash(f"Asked the WhatsApp server to {action} the session; the state below follows its answer.", "success")
    return redirect(url_for("whatsapp_session.whatsapp"))
