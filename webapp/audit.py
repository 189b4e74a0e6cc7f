"""The audit log: one Event row per thing that happened (append only)."""
from __future__ import annotations

from webapp.models import Event


def record(action: str, subject: str, *, actor: str | None = None, **details) -> Event:
    """Append an audit event; `actor` defaults to the logged-in user or "system".

    Never pass secrets (passwords, keys, tokens) in `details`.
    """
    if actor is None:
        from webapp.access import actor as current_actor

        actor = current_actor()
    return Event.create(action=action, subject=subject, actor=actor, details=details)
