"""API keys: `pw_<prefix>_<secret>`, shown once; only a SHA-256 of the whole key is stored.

A key is 190 random bits, so a fast hash is enough (argon2 is for low-entropy
passwords) and keeps every API call cheap.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from webapp.config import rate_limit_problem
from webapp.domain import audit
from webapp.storage import db
from webapp.storage.models import ApiKey, Role, utcnow

ROLES = (Role.STAFF, Role.ADMIN)
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


class ApiKeyError(ValueError):
    pass


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(name: str, role: str = Role.STAFF, *, created_by: int | None = None, actor: str = "system",
           rate_limit: str | None = None) -> tuple[ApiKey, str]:
    """A new key; returns (row, the full key to show once). `rate_limit` ("100 per minute")
    replaces PAYWATCH_API_RATE_LIMIT for this key."""
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("an API key needs a name")
    if role not in ROLES:
        raise ApiKeyError(f"role must be one of {', '.join(ROLES)}")
    rate_limit = (rate_limit or "").strip() or None
    problem = rate_limit and rate_limit_problem(rate_limit)
    if problem:
        raise ApiKeyError(f"rate limit: {problem}")
    prefix = secrets.token_hex(4)
    key = f"pw_{prefix}_{secrets.token_urlsafe(24)}"
    with db.transaction():
        row = ApiKey.create(name=name, prefix=prefix, hash=_digest(key), role=role, created_by=created_by,
                            rate_limit=rate_limit)
        limit = {"rate_limit": rate_limit} if rate_limit else {}
        audit.record("apikey.created", f"apikey:{prefix}", actor=actor, name=name, role=role, **limit)
    return row, key


def authenticate(key: str | None, now: datetime | None = None) -> ApiKey | None:
    """The live key row for `key`, or None (unknown, malformed or revoked)."""
    parts = (key or "").split("_")
    if len(parts) < 3 or parts[0] != "pw":
        return None
    row = ApiKey.get_or_none(ApiKey.prefix == parts[1])
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.hash, _digest(key)):
        return None
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        ApiKey.update(last_used_at=now).where(ApiKey.id == row.id).execute()
    return row


def revoke(key_id: int, *, actor: str) -> ApiKey:
    with db.transaction():
        row = ApiKey.get_or_none(ApiKey.id == key_id)
        if row is None:
            raise ApiKeyError(f"no API key {key_id}")
        if row.revoked_at is None:
            ApiKey.update(revoked_at=utcnow()).where(ApiKey.id == key_id).execute()
            audit.record("apikey.revoked", f"apikey:{row.prefix}", actor=actor, name=row.name)
    return ApiKey.get_by_id(key_id)
