"""What happened to a request or payment: its audit events, newest first, with the actors' names."""
from __future__ import annotations

from webapp.storage.models import Event, User

TIMELINE_LIMIT = 200


def timeline(subjects: list[str]):
    """Audit events about `subjects` ("request:AB12CD", "payment:7"), newest first."""
    return (Event.select().where(Event.subject.in_(subjects))
            .order_by(Event.at.desc(), Event.id.desc()).limit(TIMELINE_LIMIT))


def actor_names(events: list[Event], *, emails: bool = False) -> dict[str, str]:
    """"user:<id>" → the user's name (or e-mail; always the e-mail with `emails`), in one query.

    Other actors ("system", "api:…", "source:…") read as they are, so they are not in the map.
    """
    ids = {int(e.actor[5:]) for e in events if e.actor.startswith("user:") and e.actor[5:].isdigit()}
    if not ids:
        return {}
    users = User.select(User.id, User.name, User.email).where(User.id.in_(ids))
    return {f"user:{u.id}": u.email if emails else (u.name or u.email) for u in users}
