"""Who acts and who owes: staff users and their login sessions, agents and leads, payers, API keys."""
from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField

from webapp.storage.models.base import BaseModel, JSONField, UTCDateTimeField, utcnow


class Role:
    ADMIN = "admin"
    STAFF = "staff"
    VIEWER = "viewer"
    ALL = (ADMIN, STAFF, VIEWER)
    # What each role may do includes what the roles after it may do.
    RANK = {VIEWER: 0, STAFF: 1, ADMIN: 2}


class User(BaseModel):
    email = CharField(unique=True)
    name = CharField(default="")
    password_hash = CharField()
    role = CharField(default=Role.VIEWER)
    is_active = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)
    last_login_at = UTCDateTimeField(null=True)

    # The key of the login session this instance was loaded through (webapp/domain/login_sessions.py):
    # Flask-Login keeps it in the cookie as the "user id", so a cookie names a session, not a user.
    login_session_key: str | None = None

    # Flask-Login's interface.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        if not self.login_session_key:
            raise NotImplementedError("a user is logged in through webapp.domain.login_sessions.start()")
        return self.login_session_key

    def has_role(self, role: str) -> bool:
        return self.is_active and Role.RANK[self.role] >= Role.RANK[role]


class LoginSession(BaseModel):
    """A logged-in browser. Its cookie carries a random key; only the key's SHA-256 is stored."""

    user = ForeignKeyField(User, backref="login_sessions", on_delete="CASCADE")
    key_hash = CharField(unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    last_seen_at = UTCDateTimeField(default=utcnow)
    ended_at = UTCDateTimeField(null=True)
    end_reason = CharField(null=True)  # logout, ended, password_changed, password_reset, deactivated, expired
    ip = CharField(null=True)
    user_agent = CharField(default="")

    class Meta:
        indexes = ((("user", "ended_at"), False),)


class Agent(BaseModel):
    name = CharField()
    phone = CharField(null=True)
    code = CharField(unique=True)
    is_active = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)


class Lead(BaseModel):
    name = CharField(default="")
    phone = CharField(index=True)
    agent = ForeignKeyField(Agent, null=True, backref="leads", on_delete="SET NULL")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("agent", "phone"), True),)


class Payer(BaseModel):
    """Someone who owes over time (a student, tenant, member): the roster requests may name."""

    code = CharField(unique=True)  # the business's own id: admission number, unit, member no.
    name = CharField()
    group = CharField(default="", index=True)  # class, building, branch
    phones = JSONField(default=list)  # E.164 numbers known to pay for this payer
    created_at = UTCDateTimeField(default=utcnow)


class ApiKey(BaseModel):
    name = CharField()
    prefix = CharField(unique=True)
    hash = CharField()
    role = CharField(default=Role.STAFF)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)
    rate_limit = CharField(null=True)  # "100 per minute"; PAYWATCH_API_RATE_LIMIT when null
