"""Money owed and money seen: requests, payments, their sightings, reversals, candidates, claims, aliases, vouchers."""
from __future__ import annotations

import secrets

from peewee import BigIntegerField, BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from webapp.storage.models.base import BaseModel, JSONField, UTCDateTimeField, utcnow
from webapp.storage.models.people import Agent, Lead, Payer, User


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
    due_at = UTCDateTimeField(null=True, index=True)  # the dashboard's fees summary reads only these
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
            (("status", "created_at"), False),  # the requests list filtered by status, newest first
            (("agent", "created_at"), False),  # one agent's requests, newest first
            (("expires_at", "id"), False),  # the requests list sorted by expiry
            (("status", "id"), False),  # the API's requests of one status, newest first (pending-verifications)
            # Paid requests by paid_at (all, and per agent) and by time to pay: partial indexes of
            # migration 0100 (the models cannot declare them), so a request moving between pending
            # and review changes none of them.
        )


class RequestTally(BaseModel):
    """Request counts per (agent, status), kept by the database itself in the writing transaction.

    Triggers on payment_request (migration 0083) append +1 / −1 rows when a request is created,
    deleted, or changes status or agent; SUM(n) per (agent_id, status) is therefore exact at any
    moment, whatever wrote the request (ledger, import, bulk load). Appending never locks a shared
    counter row (no waits or deadlocks between workers); webapp.domain.reports folds the rows
    into one per (agent, status) when they pile up. No foreign key: agent_id is a plain number.
    """

    agent_id = IntegerField(null=True)
    status = CharField()
    n = IntegerField()

    class Meta:
        table_name = "request_tally"


class PaymentTally(BaseModel):
    """Payment counts per status, kept by the database itself in the writing transaction, like
    RequestTally: triggers on payment (migration 0104) append +1 / −1 rows when a payment is
    written, deleted or changes status; webapp.domain.reports.payment_counts sums and folds them."""

    status = CharField()
    n = IntegerField()

    class Meta:
        table_name = "payment_tally"


class PictureTally(BaseModel):
    """Roll-ups behind the dashboard's charts, kept by the database itself in the writing transaction.

    Triggers on payment_request, payment, event and notification (migrations 0095, 0103) append +/− rows
    per (figure, slot, key, currency): `slot` is the UTC quarter hour (epoch seconds // 900), or the
    UTC day (// 86400) for the "<figure>/day" figures; `n` counts, `amount` sums minor units. SUM per
    group is exact at any moment whatever wrote the rows; webapp.domain.reports sums them per local
    day in SQL and folds them when they pile up. The figures are listed in migration 0095, and
    "collected" (the dashboard's collections per day) in 0103.
    """

    figure = CharField()
    slot = BigIntegerField()
    key = CharField(null=True)
    currency = CharField(null=True)
    n = IntegerField()
    amount = BigIntegerField()

    class Meta:
        table_name = "picture_tally"
        indexes = ((("figure", "slot", "key", "currency", "n", "amount"), False),)  # the charts read only it


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
    sender_phone = CharField(null=True, index=True)  # a phone typed in the list's search
    note = TextField(default="")
    received_at = UTCDateTimeField(index=True)
    raw = TextField(default="")
    parsed = BooleanField(default=True)
    verified = BooleanField(default=True)  # False for forwarded mail and the like
    generic = BooleanField(default=False)  # read by the fallback reader: never confirmed automatically
    reading = TextField(default="")  # for a generic reading: what was read and why
    # status keeps its own index: by id within a status (the API's pending verifications walk it).
    status = CharField(default=PaymentStatus.UNMATCHED, index=True)
    # No index of its own: (request, status) leads with it (0099).
    request = ForeignKeyField(PaymentRequest, null=True, backref="payments", on_delete="SET NULL", index=False)
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
            (("status", "received_at", "id"), False),  # the review queue, oldest first, per status
            (("source", "received_at", "id"), False),  # one source's payments, newest first
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


class Voucher(BaseModel):
    pool = CharField()
    code = CharField()
    request = ForeignKeyField(PaymentRequest, null=True, unique=True, backref="vouchers", on_delete="SET NULL")
    assigned_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("pool", "code"), True), (("pool", "request"), False))
