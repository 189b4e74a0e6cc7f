"""Server-side login sessions: the signed cookie carries a random key; a row here says
whether that key still opens the app.

Flask's session cookie lives in the browser, so clearing it on logout cannot stop a
copy of it. A row per login can be ended: logout ends that one session (other
devices stay logged in), a password change ends the user's others, a reset by an
admin or a deactivation ends them all, and a session unused for IDLE_LIMIT or older
than LIFETIME ends by itself. Only a SHA-256 of the key is stored (the key is 256
random bits, so a fast hash is enough), so the table alone opens nothing.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from webapp.domain import audit
from webapp.storage import db
from webapp.storage.models import LoginSession, User, utcnow

IDLE_LIMIT = timedelta(hours=24)  # a page left open keeps it alive: it polls
LIFETIME = timedelta(days=30)
KEEP_ENDED = timedelta(days=30)  # dead rows (when and why each ended) go at the next login after this
_TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per session
_USER_AGENT_MAX = 250


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start(user: User, *, ip: str | None = None, user_agent: str | None = None,
          now: datetime | None = None) -> str:
    """Open a session for `user`; returns its key (for the cookie) and sets it on `user`."""
    now = now or utcnow()
    key = secrets.token_urlsafe(32)
    with db.transaction():
        LoginSession.create(user=user.id, key_hash=_digest(key), created_at=now, last_seen_at=now, ip=ip,
                            user_agent=(user_agent or "")[:_USER_AGENT_MAX])
        # This user's long-dead rows go now: the table stays bounded without a sweep.
        LoginSession.delete().where(LoginSession.user == user.id,
                                    LoginSession.last_seen_at < now - KEEP_ENDED).execute()
    user.login_session_key = key
    return key


def user_for(key: str | None, now: datetime | None = None) -> User | None:
    """The active user whose live session has this key (with the key set on it), or None."""
    if not key or len(key) > 100:
        return None
    now = now or utcnow()
    row = (LoginSession.select(LoginSession, User).join(User)
           .where(LoginSession.key_hash == _digest(key), LoginSession.ended_at.is_null()).first())
    if row is None or not row.user.is_active:
        return None
    if now - row.last_seen_at > IDLE_LIMIT or now - row.created_at > LIFETIME:
        _end(LoginSession.id == row.id, "expired", now)
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        LoginSession.update(last_seen_at=now).where(LoginSession.id == row.id).execute()
    user = row.user
    user.login_session_key = key
    return user


def session_of(user: User) -> LoginSession | None:
    """The session `user` was loaded through (None for a user not loaded from a session)."""
    if not user.login_session_key:
        return None
    return LoginSession.get_or_none(LoginSession.key_hash == _digest(user.login_session_key))


def logout(user: User, now: datetime | None = None) -> bool:
    """End the session `user` was loaded through (their other devices stay logged in); audited."""
    if not user.login_session_key:
        return False
    with db.transaction():
        ended = _end(LoginSession.key_hash == _digest(user.login_session_key), "logout", now)
        audit.record("auth.logout", f"user:{user.id}", actor=f"user:{user.id}")
    return ended > 0


def end_one(user: User, session_id: int, *, actor: str, now: datetime | None = None) -> bool:
    """End one of `user`'s own sessions by id (the "your sessions" list); audited."""
    with db.transaction():
        ended = _end((LoginSession.id == session_id) & (LoginSession.user == user.id), "ended", now)
        if ended:
            audit.record("auth.session_ended", f"user:{user.id}", actor=actor, session=session_id)
    return ended > 0


def end_all(user_id: int, reason: str, *, keep: str | None = None, now: datetime | None = None) -> int:
    """End every live session of a user, except the one with key `keep`; returns how many."""
    where = LoginSession.user == user_id
    if keep:
        where &= LoginSession.key_hash != _digest(keep)
    return _end(where, reason, now)


def _end(where, reason: str, now: datetime | None) -> int:
    return (LoginSession.update(ended_at=now or utcnow(), end_reason=reason)
            .where(where, LoginSession.ended_at.is_null()).execute())


def live(user: User, now: datetime | None = None):
    """The user's sessions that still open the app, most recently used first (a query)."""
    now = now or utcnow()
    return (LoginSession.select()
            .where(LoginSession.user == user.id, LoginSession.ended_at.is_null(),
                   LoginSession.last_seen_at >= now - IDLE_LIMIT, LoginSession.created_at >= now - LIFETIME)
            .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc()))
