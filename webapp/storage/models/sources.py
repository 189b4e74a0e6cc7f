"""Where money is read: sources, inbound SMS, billing-database rows and their write-backs."""
from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from webapp.storage.models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from webapp.storage.models.money import PaymentRequest


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
