"""What Paywatch knows of its WhatsApp connection: session state, QR while pairing,
and whether sending is paused (a 401 means the secret or token is wrong: every send
would fail the same way, so sending stops until it is fixed and an admin resumes).

Kept in the Setting table under one key (not a staff-editable option), written by
the WhatsApp jobs and read by the session page and /api/v1/health.
"""
from __future__ import annotations

from typing import Any

from webapp.domain import audit
from webapp.storage import db
from webapp.storage.models import Setting, utcnow

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
    update(paused=None)
    audit.record("whatsapp.resumed", "whatsapp", actor=actor)
