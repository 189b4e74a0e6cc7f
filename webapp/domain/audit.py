"""The audit log: one Event row per thing that happened (append only)."""
from __future__ import annotations

from webapp.storage import sqlcache
from webapp.storage.models import Event, utcnow


def record(action: str, subject: str, *, actor: str, **details) -> int:
    """Append an audit event done by `actor` ("user:…", "api:…", "system", …).

    Never pass secrets (passwords, keys, tokens) in `details`. Returns the event's id.
    """
    return sqlcache.insert(Event, {"at": utcnow(), "action": action, "subject": subject, "actor": actor,
                                   "details": details})
