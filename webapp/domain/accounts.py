"""Staff accounts: creation, passwords (argon2), roles, deactivation — each audited."""
from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from webapp.config import settings
from webapp.domain import audit, login_sessions
from webapp.storage import db
from webapp.storage.models import Role, User, utcnow

MIN_PASSWORD = 10


@cache
def _hashing(profile: str) -> tuple[PasswordHasher, str]:
    """The hasher of an argon2-cffi profile (PAYWATCH_ARGON2_PROFILE), and a hash of its own to verify
    against for an unknown email, so that such a login is as slow as a real one."""
    hasher = PasswordHasher.from_parameters(getattr(profiles, profile))
    return hasher, hasher.hash("paywatch-timing-equaliser")


def _hasher() -> PasswordHasher:
    return _hashing(settings().argon2_profile)[0]


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    return _hasher().hash(password)


def random_password() -> str:
    return secrets.token_urlsafe(12)


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    return email


def create_user(email: str, password: str, role: str, name: str = "", *, actor: str) -> User:
    """Create an active user; raises AccountError for a bad role, weak password or taken email."""
    email = normalize_email(email)
    if role not in Role.ALL:
        raise AccountError(f"role must be one of {', '.join(Role.ALL)}")
    with db.transaction():
        if User.select().where(User.email == email).exists():
            raise AccountError(f"a user with email {email} already exists")
        user = User.create(email=email, name=name.strip(), role=role, password_hash=hash_password(password))
        audit.record("user.created", f"user:{user.id}", actor=actor, email=email, role=role)
    return user


def authenticate(email: str, password: str, *, remote_addr: str | None = None) -> User | None:
    """The active user with this email and password, or None. Both outcomes are audited."""
    try:
        email = normalize_email(email)
    except AccountError:
        email = (email or "").strip().lower()[:254]
    user = User.get_or_none(User.email == email)
    ok = False
    if user is None:
        _verify(_hashing(settings().argon2_profile)[1], password)
    else:
        ok = _verify(user.password_hash, password) and user.is_active
    with db.transaction():
        if ok:
            User.update(last_login_at=utcnow()).where(User.id == user.id).execute()
            if _hasher().check_needs_rehash(user.password_hash):
                User.update(password_hash=_hasher().hash(password)).where(User.id == user.id).execute()
            audit.record("auth.login", f"user:{user.id}", actor=f"user:{user.id}", ip=remote_addr)
        else:
            reason = "unknown email" if user is None else ("inactive" if not user.is_active else "bad password")
            subject = f"user:{user.id}" if user else f"email:{email}"
            audit.record("auth.login_failed", subject, actor="anonymous", ip=remote_addr, reason=reason)
    return User.get_by_id(user.id) if ok else None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(user: User, current: str, new: str, *, keep_session: str | None = None) -> None:
    """The user's own change: needs the current password; ends every session but `keep_session` (a key)."""
    if not _verify(user.password_hash, current):
        raise AccountError("the current password is not right")
    _set_password(user, new, action="user.password_changed", actor=f"user:{user.id}", keep_session=keep_session)


def reset_password(user: User, *, actor: str, keep_session: str | None = None) -> str:
    """An admin's reset: sets and returns a random password (shown once), ends the user's sessions
    (all of them, or all but `keep_session` when admins reset their own)."""
    password = random_password()
    _set_password(user, password, action="user.password_reset", actor=actor, keep_session=keep_session)
    return password


def _set_password(user: User, password: str, *, action: str, actor: str,
                  keep_session: str | None = None) -> None:
    password_hash = hash_password(password)
    with db.transaction():
        User.update(password_hash=password_hash).where(User.id == user.id).execute()
        ended = login_sessions.end_all(user.id, action.removeprefix("user."), keep=keep_session)
        audit.record(action, f"user:{user.id}", actor=actor, sessions_ended=ended)


def change_role(user: User, role: str, *, actor: str) -> None:
    if role not in Role.ALL:
        raise AccountError(f"role must be one of {', '.join(Role.ALL)}")
    if user.role == Role.ADMIN and role != Role.ADMIN:
        _keep_one_admin(user)
    with db.transaction():
        User.update(role=role).where(User.id == user.id).execute()
        audit.record("user.role_changed", f"user:{user.id}", actor=actor, old=user.role, new=role)


def set_active(user: User, active: bool, *, actor: str) -> None:
    if not active and user.role == Role.ADMIN:
        _keep_one_admin(user)
    with db.transaction():
        User.update(is_active=active).where(User.id == user.id).execute()
        ended = 0 if active else login_sessions.end_all(user.id, "deactivated")
        audit.record("user.activated" if active else "user.deactivated", f"user:{user.id}", actor=actor,
                     **({} if active else {"sessions_ended": ended}))


def _keep_one_admin(user: User) -> None:
    others = User.select().where(User.role == Role.ADMIN, User.is_active == True, User.id != user.id)  # noqa: E712
    if not others.exists():
        raise AccountError("this is the last active admin; make another admin first")


def ensure_first_admin(email: str | None, password: str | None) -> tuple[User, str | None] | None:
    """On a database without users, create the first admin.

    Returns (user, generated_password) — the password only when it was generated,
    to be printed once — or None when users already exist.
    """
    if User.select().exists():
        return None
    generated = None
    if not password:
        password = generated = random_password()
    user = create_user(email or "admin@example.com", password, Role.ADMIN, "Admin", actor="system")
    return user, generated
