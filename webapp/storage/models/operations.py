"""What Paywatch does about it: the WhatsApp outbox, templates, rules, idempotency, webhooks, settings, audit, alerts."""
from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from webapp.storage.models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from webapp.storage.models.money import Payment, PaymentRequest
from webapp.storage.models.people import ApiKey


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
    due_at = UTCDateTimeField(default=utcnow, index=True)  # the log is newest first by it
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
    # The request the event is about (a payment event: the payment's request, if any), so the
    # request page lists its deliveries through an index.
    request = ForeignKeyField(PaymentRequest, null=True, backref="webhook_deliveries", on_delete="SET NULL")

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
