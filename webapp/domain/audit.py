"""The audit log: one Event row per thing that happened (append only)."""
from __future__ import annotations

from webapp.storage import db, sqlcache
from webapp.storage.models import Event, utcnow


def record(action: str, subject: str, *, actor: str, **details) -> None:
    """Append an audit event done by `actor` ("user:…", "api:…", "system", …).

    Never pass secrets (passwords, keys, tokens) in `details`. Inside db.transaction()
    the event is written with the transaction's other events in one multi-row INSERT just
    before the commit (it commits or rolls back with the change it records), so it is not
    readable inside that transaction.
    """
    db.buffered("audit", _write, {"at": utcnow(), "action": action, "subject": subject, "actor": actor,
                                  "details": details})


def _write(rows: list[dict]) -> None:
    sqlcache.insert_many(Event, rows)
