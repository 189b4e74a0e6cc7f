"""The audit log: one Event row per thing that happened (append only)."""
from __future__ import annotations

from webapp.storage import db, sqlcache
from webapp.storage.models import Event, utcnow


def record(action: str, subject: str, *, actor: str, **details) -> int | None:
    """Append an audit event done by `actor` ("user:…", "api:…", "system", …).

    Never pass secrets (passwords, keys, tokens) in `details`. Outside a transaction the
    event is written now and its id returned. Inside db.transaction() it is written with
    the transaction's other events in one multi-row INSERT just before the commit (it
    commits or rolls back with the change it records): None then, and the event is not
    readable inside that transaction.
    """
    row = {"at": utcnow(), "action": action, "subject": subject, "actor": actor, "details": details}
    if not db.in_transaction():
        return sqlcache.insert(Event, row)
    db.buffered("audit", _write, row)
    return None


def _write(rows: list[dict]) -> None:
    sqlcache.insert_many(Event, rows)
