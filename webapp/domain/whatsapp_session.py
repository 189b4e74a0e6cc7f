"""What Paywatch knows of its WhatsApp connection: session state, QR while pairing,
and whether sending is paused (a 401 means the secret or token is wrong: every send
would fail the same way, so sending stops until it is fixed and an admin resumes).

Kept in the Setting table under one key (not a staff-editable option), written by
the WhatsApp jobs and read by the session page and /api/v1/health.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from webapp.domain import audit
from webapp.storage import db
from webapp.storage.models import Notification, NotificationStatus, Setting, utcnow

KEY = "whatsapp_state"


def get() -> dict[str, Any]:
    row = Setting.get_or_none(Setting.key == KEY)
    return dict(row.value) if row is not None and isinstance(row.value, dict) else {}


def update(**changes: Any) -> dict[str, Any]:
    """Merge `changes` into the state (one transaction)."""
    with db.transaction():
        state = {**get(), **changes, "updated_at": utcnow().isoformat()}
        if not Setting.update(value=state, updated_at=utcnow()).where(Setting.key == KEY).execute():
            Setting.create(key=KEY, value=state)
    return state


def note_reconnect(now: datetime) -> dict[str, Any]:
    """Count one reconnect attempt (start-session asked by the watchdog or a failed send)."""
    state = get()
    return update(reconnect_attempts=int(state.get("reconnect_attempts") or 0) + 1, last_reconnect_at=now.isoformat())


def last_sent_at() -> datetime | None:
    """When the last WhatsApp message went out (from the outbox rows, not from memory)."""
    row = (Notification.select(Notification.sent_at).where(Notification.status == NotificationStatus.SENT,
                                                           Notification.sent_at.is_null(False))
           .order_by(Notification.sent_at.desc()).first())
    return row.sent_at if row else None


def paused_reason() -> str | None:
    return get().get("paused")


def pause(reason: str) -> bool:
    """Pause sending; True (and an audit event) when it was not paused already."""
    if paused_reason():
        return False
    update(paused=reason)
    audit.record("whatsapp.paused", "whatsapp", actor="system", reason=reason)
    return True


def resume(*, actor: str) -> None:
    from webapp.domain import alerts

    update(paused=None)
    audit.record("whatsapp.resumed", "whatsapp", actor=actor)
    alerts.clear_alert(alerts.SENDING_PAUSED, "whatsapp")
