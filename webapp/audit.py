"""The audit log: one Event row per thing that happened (append only)."""
from __future__ import annotations

from webapp import sqlcache
from webapp.models import Event, utcnow


def record(action: str, subject: str, *, actor: str | None = None, **details) -> int:
    """Append an audit event; `actor` defaults to the logged-in user or "system".

    Never pass secrets (passwords, keys, tokens) in `details`. Returns the event's id.
    """
    if actor is None:
        from webapp.access import actor as current_actor

        actor = current_actor()
    return sqlcache.insert(Event, {"at": utcnow(), "action": action, "subject": subject, "actor": actor,
                                   "details": details})
