"""Every peewee model and its status constants.

Times are stored as UTC and come back timezone-aware (UTCDateTimeField refuses
naive datetimes, so local time cannot slip in). Money is integer minor units plus
an ISO currency. Phones are E.164. Models never enqueue jobs and never change a
status themselves: that is webapp/domain/ledger/'s work.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from webapp.storage.db import database

UTC = timezone.utc


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTimeField(DateTimeField):
    """A datetime stored as naive UTC and read back aware; naive input is refused."""

    def db_value(self, value):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{self.name}: naive datetime {value!r}; pass an aware one")
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class JSONField(TextField):
    """JSON kept as text, so SQLite and PostgreSQL read it the same way."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


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


class RequestStatus:
    PENDING = "pending"
    REVIEW = "review"
    PARTIAL = "partial"  # an installment request with some, not all, of its amount paid
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    OPEN = (PENDING, REVIEW)
    ENDED = (PAID, FAILED, EXPIRED, CANCELLED)
    ALL = (PENDING, REVIEW, PARTIAL, PAID, FAILED, EXPIRED, CANCELLED)


class Payer(BaseModel):
    """Someone who owes over time (a student, tenant, member): the roster requests may name."""

    code = CharField(unique=True)  # the business's own id: admission number, unit, member no.
    name = CharField()
    group = CharField(default="", index=True)  # class, building, branch
    phones = JSONField(default=list)  # E.164 numbers known to pay for this payer
    created_at = UTCDateTimeField(default=utcnow)


def new_pay_token() -> str:
    """An unguessable token for a request's public payment page (/pay/<token>): 192 random bits."""
    return secrets.token_urlsafe(24)


class PaymentRequest(BaseModel):
    reference = CharField(unique=True)
    pay_token = CharField(unique=True, default=new_pay_token)  # the public page's link; never the reference
    amount_minor = BigIntegerField()
    requested_minor = BigIntegerField()  # before a unique-amount shift
    currency = CharField(max_length=3)
    customer_name = CharField(default="")
    customer_phone = CharField(null=True, index=True)
    agent = ForeignKeyField(Agent, null=True, backref="requests", on_delete="SET NULL")
    lead = ForeignKeyField(Lead, null=True, backref="requests", on_delete="SET NULL")
    status = CharField(default=RequestStatus.PENDING)
    source = CharField(default="api")  # "api", "ui", or a Source's name
    external_id = CharField(null=True)
    created_at = UTCDateTimeField(default=utcnow, index=True)
    expires_at = UTCDateTimeField()
    paid_at = UTCDateTimeField(null=True)
    ended_at = UTCDateTimeField(null=True)
    voucher_pool = CharField(null=True)
    idempotency_key = CharField(null=True)
    flag = CharField(null=True)  # e.g. "voucher_pool_empty"
    # First seen already settled (portal history): paid_at is the source's time when it said
    # one, else when Paywatch first saw it; left out of time-to-pay figures either way.
    seen_settled = BooleanField(default=False)
    meta = JSONField(default=dict)
    # Fees and invoices: a request with a due date does not expire (expires_at = due_at, the
    # sweep skips it); one that allows installments is paid by several payments.
    due_at = UTCDateTimeField(null=True)
    allow_partial = BooleanField(default=False)
    paid_minor = BigIntegerField(default=0)  # what the confirmed payments toward it add up to
    payer = ForeignKeyField(Payer, null=True, backref="requests", on_delete="SET NULL")

    @property
    def balance_minor(self) -> int:
        return max(0, self.amount_minor - (self.paid_minor or 0))

    class Meta:
        indexes = (
            (("status", "expires_at"), False),
            (("amount_minor", "currency", "status"), False),
            (("source", "external_id"), True),
            (("agent", "status"), False),
        )


class AmountReservation(BaseModel):
    """An open request's exact amount, held unique while 'unique amounts' is on."""

    amount_minor = BigIntegerField()
    currency = CharField(max_length=3)
    request = ForeignKeyField(PaymentRequest, unique=True, on_delete="CASCADE")

    class Meta:
        indexes = ((("amount_minor", "currency"), True),)


class PaymentStatus:
    UNMATCHED = "unmatched"
    REVIEW = "review"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    ALL = (UNMATCHED, REVIEW, CONFIRMED, REJECTED)


class Payment(BaseModel):
    """Money seen at a source: one row per real transaction, however many channels report it.

    `txn_norm` is the provider's transaction id in a comparable form (see
    webapp.domain.ledger.core.normalize_txn); (currency, txn_norm, amount_minor) is unique, so
    a second report of the same money can only become a PaymentSighting of this row.
    """

    source = CharField()
    source_ref = CharField()
    transaction_id = CharField(null=True, index=True)
    txn_norm = CharField(null=True, index=True)
    provider = CharField(null=True)  # whose transaction id it is, when the source knows (mpesa, iotec…)
    amount_minor = BigIntegerField(null=True)  # null only for evidence no rule could read
    currency = CharField(max_length=3, null=True)
    sender_name = CharField(default="")
    sender_phone = CharField(null=True)
    note = TextField(default="")
    received_at = UTCDateTimeField(index=True)
    raw = TextField(default="")
    parsed = BooleanField(default=True)
    verified = BooleanField(default=True)  # False for forwarded mail and the like
    generic = BooleanField(default=False)  # read by the fallback reader: never confirmed automatically
    reading = TextField(default="")  # for a generic reading: what was read and why
    status = CharField(default=PaymentStatus.UNMATCHED, index=True)
    request = ForeignKeyField(PaymentRequest, null=True, backref="payments", on_delete="SET NULL")
    confidence = IntegerField(null=True)
    evidence = JSONField(default=list)
    late = BooleanField(default=False)
    verified_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    verified_at = UTCDateTimeField(null=True)
    reason = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("source", "source_ref"), True),
            (("amount_minor", "currency", "status"), False),
            (("request", "status"), False),
            (("currency", "txn_norm", "amount_minor"), True),
        )


class PaymentSighting(BaseModel):
    """Another report of a payment's transaction (a second mail, the portal, the API…).

    Kept with its raw evidence; (source, source_ref) is unique like a payment's, so
    re-reading the report changes nothing. `corroborates`: it came from another source.
    `conflict`: what it says that the payment does not (another amount…).
    """

    payment = ForeignKeyField(Payment, backref="sightings", on_delete="CASCADE")
    source = CharField()
    source_ref = CharField()
    provider = CharField(null=True)
    amount_minor = BigIntegerField(null=True)
    currency = CharField(max_length=3, null=True)
    received_at = UTCDateTimeField()
    raw = TextField(default="")
    verified = BooleanField(default=True)
    corroborates = BooleanField(default=False)
    conflict = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("source", "source_ref"), True),)


class Reversal(BaseModel):
    """A provider's report that it pulled a transaction back, kept until its payment is seen.

    Applied at once when the payment exists; otherwise applied when it arrives (the
    payment then goes straight to review, never confirmed). One row per (source, txn).
    """

    source = CharField()
    transaction_id = CharField()
    txn_norm = CharField(index=True)
    currency = CharField(max_length=3, null=True)
    reason = TextField(default="")
    raw = TextField(default="")
    payment = ForeignKeyField(Payment, null=True, on_delete="SET NULL")
    applied_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("source", "txn_norm"), True),)


class MatchCandidate(BaseModel):
    """A request a payment may pay, with its score and every signal, while staff decide."""

    payment = ForeignKeyField(Payment, backref="candidates", on_delete="CASCADE")
    request = ForeignKeyField(PaymentRequest, backref="candidacies", on_delete="CASCADE")
    score = IntegerField()
    evidence = JSONField(default=list)
    late = BooleanField(default=False)
    mismatch = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("payment", "request"), True), (("request",), False))


class ClaimStatus:
    REVIEW = "review"  # no payment seen with the code yet: waits in the review queue
    MATCHED = "matched"  # the code names a payment seen (in review for staff, or already paid)
    CLOSED = "closed"  # staff dismissed it, or its request ended otherwise
    ALL = (REVIEW, MATCHED, CLOSED)


class Claim(BaseModel):
    """A customer's "I've paid" from the payment page: the transaction code they quote (and the
    phone they paid from). Evidence for staff; it never confirms anything by itself."""

    request = ForeignKeyField(PaymentRequest, backref="claims", on_delete="CASCADE")
    transaction_id = CharField()
    txn_norm = CharField(null=True, index=True)
    phone = CharField(null=True)
    status = CharField(default=ClaimStatus.REVIEW)
    payment = ForeignKeyField(Payment, null=True, backref="claims", on_delete="SET NULL")
    evidence = JSONField(default=list)
    client_ip = CharField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    checked_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("request", "status"), False), (("status", "created_at"), False))


class RejectedPair(BaseModel):
    """A payment ↔ request pair staff rejected: never suggested again."""

    payment = ForeignKeyField(Payment, on_delete="CASCADE")
    request = ForeignKeyField(PaymentRequest, on_delete="CASCADE")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("payment", "request"), True),)


class PayerAlias(BaseModel):
    """What staff taught by their decisions: a payer's name or phone seen paying for one customer.

    `kind` "name" (alias: the folded name key) or "phone" (alias: E.164); the customer is
    `customer` ("phone:+256…" or "name:<key>"). See webapp/domain/learned.py.
    """

    kind = CharField()
    alias = CharField()
    shown = CharField(default="")  # the alias as a payer last wrote it
    customer = CharField()
    customer_phone = CharField(null=True)
    customer_name = CharField(null=True)  # the folded name key when the customer had no phone
    customer_label = CharField(default="")  # the customer's name as the request wrote it
    confirmed = IntegerField(default=0)
    rejected = IntegerField(default=0)
    last_payment = IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "alias", "customer"), True), (("customer",), False))


class SourceKind:
    PORTAL = "portal"
    MAILBOX = "mailbox"
    GATEWAY = "gateway"
    WEBHOOK = "webhook"
    DATABASE = "database"  # an existing billing database (webapp/domain/billing.py)
    SMS = "sms"
    ALL = (PORTAL, MAILBOX, GATEWAY, WEBHOOK, DATABASE, SMS)


class Source(BaseModel):
    kind = CharField()
    name = CharField(unique=True)
    config = JSONField(default=dict)  # secrets referenced by env var name, never stored
    enabled = BooleanField(default=True)
    interval_s = IntegerField(default=60)
    cursor = JSONField(null=True)
    state = JSONField(default=dict)  # freshness, progress, alarms
    last_run_at = UTCDateTimeField(null=True)
    last_ok_at = UTCDateTimeField(null=True)
    last_error = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)


class InboundSmsStatus:
    NEW = "new"  # stored by the hook, waiting for its job
    DONE = "done"  # read: a payment, a reversal, not money, or kept unreadable
    IGNORED = "ignored"  # not from a provider or a trusted sender id: its text is dropped
    ALL = (NEW, DONE, IGNORED)


class InboundSms(BaseModel):
    """One SMS posted to POST /hooks/sms/<source>, stored before anything reads it.

    `ref` is the forwarder's message id, else a hash of the body (unique per source: a
    retried post changes nothing). The job (jobs/sms.py) reads it with the provider rules.
    """

    source = CharField()
    ref = CharField()
    format = CharField()  # capcom6 / httpsms / generic
    sender = CharField(default="")
    text = TextField(default="")
    received_at = UTCDateTimeField(null=True)  # the phone's clock, when the forwarder says
    raw = TextField(default="")  # the posted body (bounded by the hook)
    status = CharField(default=InboundSmsStatus.NEW)
    outcome = CharField(null=True)  # received / reversal / not_money / unparsed / duplicate / ignored
    payment_id = IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    processed_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "inbound_sms"
        indexes = (
            (("source", "ref"), True),
            (("status", "created_at"), False),
        )


class NotificationStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ALL = (PENDING, SENDING, SENT, FAILED, CANCELLED)


class Notification(BaseModel):
    kind = CharField()
    phone = CharField()
    body = TextField(default="")
    request = ForeignKeyField(PaymentRequest, null=True, backref="notifications", on_delete="SET NULL")
    payment = ForeignKeyField(Payment, null=True, backref="notifications", on_delete="SET NULL")
    status = CharField(default=NotificationStatus.PENDING)
    due_at = UTCDateTimeField(default=utcnow)
    attempts = IntegerField(default=0)
    last_error = TextField(null=True)
    provider_id = CharField(null=True)
    ack = IntegerField(null=True)
    dedupe_key = CharField(unique=True)
    claimed_at = UTCDateTimeField(null=True)
    sent_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    context = JSONField(default=dict)
    # When the first send try whose outcome is not recorded began (body: its exact text);
    # set, the chat is checked before any resend. checks: failed checks in a row.
    unconfirmed_since = UTCDateTimeField(null=True)
    checks = IntegerField(default=0)

    class Meta:
        indexes = ((("status", "due_at"), False), (("status", "sent_at"), False), (("phone", "sent_at"), False))


class Template(BaseModel):
    kind = CharField(unique=True)
    body = TextField()
    enabled = BooleanField(default=True)
    updated_at = UTCDateTimeField(default=utcnow)


class Rule(BaseModel):
    name = CharField()
    cron = CharField()
    filter = JSONField(default=dict)
    template = TextField()
    enabled = BooleanField(default=True)
    last_run_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)


class Voucher(BaseModel):
    pool = CharField()
    code = CharField()
    request = ForeignKeyField(PaymentRequest, null=True, unique=True, backref="vouchers", on_delete="SET NULL")
    assigned_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("pool", "code"), True), (("pool", "request"), False))


class BillingRow(BaseModel):
    """A row of a watched billing-database table, registered as a request (webapp/domain/billing.py).

    (source, table_name, row_id) is unique: reading the row again registers nothing.
    `status_seen` is the status value last read from the row (what a write-back compares with).
    """

    source = ForeignKeyField(Source, on_delete="CASCADE")
    table_name = CharField()
    row_id = CharField()
    request = ForeignKeyField(PaymentRequest, unique=True, on_delete="CASCADE")
    status_seen = CharField()
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("source", "table_name", "row_id"), True),)


class WritebackStatus:
    PENDING = "pending"
    DONE = "done"
    CONFLICT = "conflict"  # the billing system changed the row meanwhile: not overwritten
    ALL = (PENDING, DONE, CONFLICT)


class BillingWriteback(BaseModel):
    """The outbox row of one write-back: a request ended, its billing row must say so."""

    row = ForeignKeyField(BillingRow, backref="writebacks", on_delete="CASCADE")
    request = ForeignKeyField(PaymentRequest, on_delete="CASCADE")
    outcome = CharField()  # the request's ending: paid / failed / cancelled / expired
    expected = CharField()  # the row's status when read (the compare of the compare-and-set)
    status = CharField(default=WritebackStatus.PENDING)
    written = CharField(null=True)  # the status value written
    voucher_code = CharField(null=True)
    attempts = IntegerField(default=0)
    last_error = TextField(null=True)
    next_attempt_at = UTCDateTimeField(default=utcnow)
    done_at = UTCDateTimeField(null=True)
    dedupe_key = CharField(unique=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


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


class IdempotencyRecord(BaseModel):
    """The first response to an API call made with an Idempotency-Key (kept ≥ 24 h)."""

    api_key = ForeignKeyField(ApiKey, on_delete="CASCADE")
    key = CharField()
    fingerprint = CharField()  # method, path and a hash of the body
    status_code = IntegerField(null=True)  # null while the first call is running
    body = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("api_key", "key"), True),)


class WebhookEndpoint(BaseModel):
    """An integrator's URL that receives signed events (webapp/domain/webhooks.py)."""

    url = CharField()
    secret = CharField()  # whsec_…
    events = JSONField(default=list)  # event types; empty: all
    is_active = BooleanField(default=True)
    description = CharField(default="")
    previous_secret = CharField(null=True)  # still signs (alongside) until previous_secret_until
    previous_secret_until = UTCDateTimeField(null=True)
    failing_since = UTCDateTimeField(null=True)  # first failure of the current run of failures
    disabled_reason = CharField(null=True)
    created_at = UTCDateTimeField(default=utcnow)


class WebhookDelivery(BaseModel):
    """One event for one endpoint: the body is fixed when the event happens, signed per attempt."""

    endpoint = ForeignKeyField(WebhookEndpoint, backref="deliveries", on_delete="CASCADE")
    event = CharField()  # the event type, e.g. request.paid
    event_id = CharField(index=True)  # webhook-id: the same for every endpoint and attempt
    payload = JSONField(default=dict)
    status = CharField(default="pending")  # pending / sending / delivered / failed
    attempts = IntegerField(default=0)
    next_attempt_at = UTCDateTimeField(default=utcnow)
    last_status = IntegerField(null=True)
    last_error = CharField(null=True)
    claimed_at = UTCDateTimeField(null=True)
    delivered_at = UTCDateTimeField(null=True)
    dedupe_key = CharField(unique=True)  # event id : endpoint id
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False), (("endpoint", "created_at"), False))


class WebhookAttempt(BaseModel):
    """One POST of a delivery: when, the answer (or the error), an excerpt, how long it took."""

    delivery = ForeignKeyField(WebhookDelivery, backref="attempt_log", on_delete="CASCADE")
    at = UTCDateTimeField(default=utcnow)
    status_code = IntegerField(null=True)
    error = CharField(null=True)
    response_excerpt = TextField(default="")
    duration_ms = IntegerField(default=0)


class Setting(BaseModel):
    """A run-time setting staff may change (mode, thresholds, delays, limits)."""

    key = CharField(unique=True)
    value = JSONField()
    updated_at = UTCDateTimeField(default=utcnow)


class Event(BaseModel):
    """The audit log: append only."""

    at = UTCDateTimeField(default=utcnow, index=True)
    actor = CharField()  # "user:3", "api:pw_ab12", "system", "job:…"
    action = CharField(index=True)
    subject = CharField(index=True)  # "request:PW-7KQ2M9", "user:4", …
    details = JSONField(default=dict)


class Alert(BaseModel):
    """One episode of an operators' alert (WhatsApp session down, a source in alarm…): opened once,
    closed with an all-clear. `open_key` is "<kind>:<key>" while open (unique) and null once closed."""

    kind = CharField(index=True)
    key = CharField()  # what it is about: "source:acme", "notification:12", "pool:gold"
    text = TextField()
    open_key = CharField(null=True, unique=True)
    opened_at = UTCDateTimeField(default=utcnow, index=True)
    closed_at = UTCDateTimeField(null=True)
    all_clear = BooleanField(default=True)  # False for one-off events (a message failed for good)


class AlertMail(BaseModel):
    """An operators' e-mail (an alert, its all-clear, the daily summary), stored before it is sent."""

    alert = ForeignKeyField(Alert, null=True, backref="mails", on_delete="SET NULL")
    to = TextField()  # comma-separated addresses
    subject = CharField()
    body = TextField()
    status = CharField(default="pending")  # pending, sent, failed
    attempts = IntegerField(default=0)
    last_error = TextField(null=True)
    dedupe_key = CharField(unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("status", "created_at"), False),)


MODELS = (
    Payer,
    User, LoginSession, Agent, Lead, PaymentRequest, AmountReservation, Payment, PaymentSighting, Reversal,
    MatchCandidate, RejectedPair, PayerAlias, Claim,
    Source, InboundSms, Notification, Template, Rule, Voucher, BillingRow, BillingWriteback, ApiKey,
    IdempotencyRecord, WebhookEndpoint, WebhookDelivery, WebhookAttempt, Setting, Event, Alert, AlertMail,
)
