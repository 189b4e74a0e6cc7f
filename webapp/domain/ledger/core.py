"""Shared parts of the ledger: errors, the states that can be paid or decided, finding rows,
and _settle(), the compare-and-set that pays a request with a payment.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from webapp.domain import audit, billing_writeback, matching, outbox, vouchers, webhooks
from webapp.domain.references import normalize
from webapp.storage import db, sqlcache
from webapp.storage.models import (
    AmountReservation,
    JSONField,
    MatchCandidate,
    NotificationStatus,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RequestStatus,
)

REVERSED_REASON = "reversed at the provider"
PAYABLE = (RequestStatus.PENDING, RequestStatus.REVIEW, RequestStatus.PARTIAL, RequestStatus.EXPIRED)
DECIDABLE = (PaymentStatus.UNMATCHED, PaymentStatus.REVIEW, PaymentStatus.REJECTED)


class LedgerError(Exception):
    """A change that cannot be made; `code` is stable for the API, the message says why."""

    def __init__(self, code: str, message: str, status: int = 409, **details):
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details


@dataclass(frozen=True)
class NewRequest:
    amount_minor: int
    currency: str
    customer_name: str = ""
    customer_phone: str | None = None  # E.164
    agent_id: int | None = None
    lead_id: int | None = None
    reference: str | None = None
    expires_in: timedelta | None = None
    voucher_pool: str | None = None
    source: str = "api"
    external_id: str | None = None
    meta: dict = field(default_factory=dict)
    idempotency_key: str | None = None
    due_at: datetime | None = None  # a fee or invoice: due then (overdue after), never expires
    allow_partial: bool = False  # paid in installments: payments count toward it until the balance is 0
    payer_id: int | None = None


@dataclass(frozen=True)
class PaymentObservation:
    """Money seen at a source. `amount_minor` None: evidence no rule could read."""

    source: str
    source_ref: str
    amount_minor: int | None
    currency: str | None
    received_at: datetime
    sender_name: str = ""
    sender_phone: str | None = None
    note: str = ""
    transaction_id: str | None = None
    raw: str = ""
    parsed: bool = True
    verified: bool = True
    provider: str | None = None  # whose transaction id it is (a parser's name, "iotec"…), when known
    generic: bool = False  # read by the fallback reader, not a provider rule: review, never auto-confirmed
    reading: str = ""  # what the fallback reader read and why (shown in review)
    # For a text with no transaction id (a bank SMS): text_key(sender id, text), so that the
    # same SMS reported twice (posted by the phone and forwarded by mail) is one payment.
    content_key: str | None = None


@dataclass
class IngestResult:
    """`created` False: this report was stored before, or (`sighting`) the same money was
    already a payment and this report was recorded on it as another sighting."""

    payment: Payment
    created: bool
    decision: matching.Decision | None = None
    sighting: bool = False


_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def normalize_txn(transaction_id: str | None) -> str | None:
    """A provider transaction id in the form Paywatch compares: letters and digits only,
    upper case; None when too short or digit-free to name one transaction ("N/A", "1234").

    (currency, normalized id, amount) is unique among payments: the same money reported
    by a mail, an SMS copy, the portal, the gateway or the API is one payment.
    """
    key = _NOT_ALNUM.sub("", (transaction_id or "")[:256].upper())
    return key if len(key) >= 6 and any(c.isdigit() for c in key) else None


def text_key(sender_id: str, text: str) -> str:
    """The key of one SMS text when it names no transaction id: its sender id and its words
    (letters and digits only, lower case), hashed. Two copies of one SMS get the same key
    whatever spacing or punctuation a forwarder changed; "#" keeps it apart from any
    normalize_txn() value."""
    words = re.sub(r"[^0-9a-z]", "", f"{sender_id}\n{text}"[:20000].lower())
    return "SMS#" + hashlib.sha256(words.encode()).hexdigest()[:40]


# Values a read gives back as they were written, by the field classes that keep them so:
# stored() sets these directly (half of building a new payment's row went to converting them
# there and back). A str in a CharField, TextField or JSONField (a JSON string reads back as
# itself), an int in an integer, id or foreign-key field, a bool in a BooleanField: these exact
# classes, not their subclasses (peewee's TimestampField and IPField are integer fields that
# convert). A time or a JSON value takes its field's as_read (the value a read would give, built
# directly); anything else (an int in a CharField, say) the round trip.
_AS_READ = {
    str: frozenset({CharField, TextField, JSONField}),
    int: frozenset({IntegerField, BigIntegerField, AutoField, BigAutoField, ForeignKeyField}),
    bool: frozenset({BooleanField}),
}


def stored(row, changes: dict[str, Any]) -> None:
    """Set `changes` just written to `row`'s database row on the instance too, as a read would
    give them back (UTC times, JSON copies): the ledger never reads again a row it just wrote."""
    fields = row._meta.fields
    for name, value in changes.items():
        field = fields[name]
        if value is None or type(field) in _AS_READ.get(type(value), ()):
            setattr(row, name, value)
        else:
            as_read = getattr(field, "as_read", None)  # UTCDateTimeField, JSONField: without the round trip
            setattr(row, name, as_read(value) if as_read else field.python_value(field.db_value(value)))


def write_payment(payment: Payment, changes: dict[str, Any], status: tuple[str, ...] | None = None) -> int:
    """Write `changes` to the payment's row: UPDATE (with `status`, only while it has one of
    those: the compare-and-set), or, for a new payment whose INSERT ingest_payments held back
    until it was decided (`payment.unwritten`), that INSERT with the changes in — or, while its
    batch holds the row for one INSERT at its end (`payment.held`, Lookahead.hold), the changes
    added to it. At most one statement; returns the rows written (1 for a held-back row)."""
    values = getattr(payment, "unwritten", None)
    if values is None:
        return sqlcache.update(Payment, changes, {"id": payment.id, **({"status": status} if status else {})})
    if getattr(payment, "held", False):
        values.update(changes)
        return 1
    flush_payment(payment, changes)
    return 1


def flush_payment(payment: Payment, changes: dict[str, Any] | None = None) -> None:
    """INSERT a held-back payment now (a row that must exist before what comes next: a foreign
    key, a read); nothing for a payment already stored."""
    values = getattr(payment, "unwritten", None)
    if values is not None:
        sqlcache.insert(Payment, {**values, **(changes or {}), "id": payment.id})
        payment.unwritten, payment.held = None, False


def _release_amount(request_id: int) -> None:
    sqlcache.delete(AmountReservation, {"request": request_id})

def _end(request: PaymentRequest, status: str, allowed: tuple[str, ...], now: datetime) -> bool:
    changed = (
        PaymentRequest.update(status=status, ended_at=now)
        .where(PaymentRequest.id == request.id, PaymentRequest.status.in_(allowed))
        .execute()
    )
    if changed:
        _release_amount(request.id)
        billing_writeback.request_ended(request.id, status, now=now)  # a billing row behind it says so
    return bool(changed)

def find_request(reference: str) -> PaymentRequest:
    request = PaymentRequest.get_or_none(PaymentRequest.reference == reference)
    if request is None:
        request = PaymentRequest.get_or_none(PaymentRequest.reference == _canonical(reference))
    if request is None:
        raise LedgerError("not_found", f"no request with reference {reference}", status=404)
    return request

def _canonical(reference: str) -> str:
    key = normalize(reference)
    return f"{key[:2]}-{key[2:]}" if len(key) > 2 else key

def _status_of(request: PaymentRequest) -> str:
    return sqlcache.by_id(PaymentRequest, request.id).status


def find_payment(payment_id: int) -> Payment:
    payment = Payment.get_or_none(Payment.id == payment_id)
    if payment is None:
        raise LedgerError("not_found", f"no payment with id {payment_id}", status=404)
    return payment


def _evidence(candidate: matching.Candidate) -> list[dict[str, Any]]:
    return [{"signal": e.signal, "points": e.points, "detail": e.detail} for e in candidate.evidence]

def _settle(payment: Payment, candidate: matching.Candidate, *, actor: str, now: datetime,
            verified_by: int | None = None, how: str = "automatic", fresh: bool = False,
            announce: bool = True, paid_at: datetime | None = None, seen_settled: bool = False) -> bool:
    """request → paid and payment → confirmed, both or neither. False when either moved meanwhile.

    `paid_at`: when the money moved by the source's own clock, when it says (else `now`);
    `seen_settled`: the request was first seen already paid (history), not watched being paid;
    `fresh`: the payment was stored in the caller's transaction (no candidate rows yet, and no
    other transaction can see its row)."""
    payment_changes = {
        "status": PaymentStatus.CONFIRMED, "request": candidate.request_id, "confidence": candidate.score,
        "evidence": _evidence(candidate), "late": candidate.late, "verified_by": verified_by,
        "verified_at": now, "reason": None}
    try:
        if fresh:
            # Nobody else can lock or change a row this transaction has not committed yet: no
            # lock order to keep, and the request's compare-and-set goes first, so a lost race
            # leaves nothing to undo — no savepoint (two round trips on PostgreSQL).
            before, changes, todo = _pay_request(payment, candidate.request_id, now, paid_at, seen_settled)
            if write_payment(payment, payment_changes, DECIDABLE) != 1:
                raise LedgerError("conflict", f"payment {payment.id} changed inside the transaction that stored it",
                                  status=500)
        else:
            with db.transaction():
                # Payment row first, then the request: every path takes its locks in this
                # order, so two workers deciding one payment queue instead of deadlocking.
                if sqlcache.update(Payment, payment_changes, {"id": payment.id, "status": DECIDABLE}) != 1:
                    raise _Lost()
                before, changes, todo = _pay_request(payment, candidate.request_id, now, paid_at, seen_settled)
    except _Lost:
        return False
    # Both rows as just written, without reading them again.
    stored(payment, payment_changes)
    request = before
    stored(request, changes)
    if not fresh:
        _release_requests(_clear_candidates(payment.id) - {request.id})
    audit.record("payment.confirmed", f"payment:{payment.id}", actor=actor, request=request.reference,
                 confidence=candidate.score, how=how, late=candidate.late)
    if request.status == RequestStatus.PARTIAL:
        audit.record("request.installment", f"request:{request.reference}", actor=actor, payment=payment.id,
                     amount_minor=payment.amount_minor, paid_minor=request.paid_minor,
                     balance_minor=request.balance_minor, how=how)
        if announce:
            outbox.installment_received(request, payment)
        return True
    if todo.reserved:
        _release_amount(request.id)
    audit.record("request.paid", f"request:{request.reference}", actor=actor, payment=payment.id,
                 confidence=candidate.score, how=how)
    if announce:
        outbox.request_paid(request, payment, alerts_pending=todo.alerts_pending)
        vouchers.on_paid(request)  # the code goes out in that confirmation
        webhooks.request_event("request.paid", request)  # history read for the first time stays quiet too
    return True

@dataclass(frozen=True)
class _Todo:
    """What paying a request leaves to do: release its reserved amount, cancel its pending alerts
    (True: maybe, do it; False: the paying statement saw there is none)."""

    reserved: bool = True
    alerts_pending: bool = True


# Paying a request whole returns, in the same statement, whether a billing row, a reserved
# amount or a pending alert is behind it: each then costs a statement only when there is one.
_PAID_ALSO = (
    ("billing_link", 'SELECT "id" FROM "billing_row" WHERE "request_id" = "payment_request"."id" LIMIT 1'),
    ("reserved", 'SELECT COUNT(*) FROM "amount_reservation" WHERE "request_id" = "payment_request"."id"'),
    ("alerts_pending", 'SELECT COUNT(*) FROM "notification" WHERE "request_id" = "payment_request"."id" '
                       f"AND \"status\" = '{NotificationStatus.PENDING}' "
                       f"AND \"kind\" IN ({', '.join(repr(str(k)) for k in outbox.Kind.PENDING_ALERTS)})"),
)


def _pay_request(payment: Payment, request_id: int, now: datetime, paid_at: datetime | None,
                 seen_settled: bool) -> tuple[PaymentRequest, dict[str, Any], _Todo]:
    """The request, what was written on it (`stored` makes the first the row as written, or it
    is that row already, with nothing more to write), and what is left to do: paid (its billing
    row, if any, told), or partial for an installment short of the balance, by compare-and-set
    on its status and paid total. Raises _Lost when it moved meanwhile, or when the money is
    more than an installment request's balance (then nothing was written)."""
    if sqlcache.returning():
        # The usual case in one statement: a request paid whole, nothing paid on it before.
        whole = {"status": RequestStatus.PAID, "paid_at": paid_at or now, "ended_at": now,
                 **({"seen_settled": True} if seen_settled else {}), "paid_minor": payment.amount_minor or 0}
        after = sqlcache.update_returning_row(
            PaymentRequest, whole, {"id": request_id, "status": PAYABLE, "allow_partial": False, "paid_minor": 0},
            _PAID_ALSO)
        if after is not None:
            if after.billing_link is not None:
                billing_writeback.request_ended(request_id, RequestStatus.PAID, now=now)
            return after, {}, _Todo(reserved=bool(after.reserved), alerts_pending=bool(after.alerts_pending))
    before = sqlcache.by_id(PaymentRequest, request_id)
    total = (before.paid_minor or 0) + (payment.amount_minor or 0)
    if before.allow_partial and total > before.amount_minor:
        raise _Lost()  # more than the balance: never kept silently (money_in sends it to review)
    whole = not before.allow_partial or total == before.amount_minor
    changes = {"status": RequestStatus.PAID, "paid_at": paid_at or now, "ended_at": now,
               **({"seen_settled": True} if seen_settled else {})} if whole else {"status": RequestStatus.PARTIAL}
    # Compare-and-set on the paid total too: two installments at once add up, never overwrite.
    changes["paid_minor"] = total
    paid = sqlcache.update(PaymentRequest, changes,
                           {"id": request_id, "status": PAYABLE, "paid_minor": before.paid_minor or 0})
    if paid != 1:
        raise _Lost()
    if whole:  # an installment leaves the request open: nothing to write back yet
        billing_writeback.request_ended(request_id, RequestStatus.PAID, now=now)
    return before, changes, _Todo()

class _Lost(Exception):
    """A compare-and-set found the row changed: roll back this attempt."""

def _clear_candidates(payment_id: int) -> set[int]:
    """Drop a payment's candidate rows; returns the request ids they named."""
    ids = {c.request_id for c in MatchCandidate.select(MatchCandidate.request).where(MatchCandidate.payment == payment_id)}
    MatchCandidate.delete().where(MatchCandidate.payment == payment_id).execute()
    return ids

def _release_requests(request_ids: set[int]) -> None:
    """review → pending for requests no payment in review still names."""
    for request_id in sorted(request_ids):  # one lock order for every caller
        still_named = (
            MatchCandidate.select()
            .join(Payment)
            .where(MatchCandidate.request == request_id, Payment.status == PaymentStatus.REVIEW,
                   MatchCandidate.mismatch.is_null())
            .exists()
        )
        if not still_named:
            PaymentRequest.update(status=RequestStatus.PENDING).where(
                PaymentRequest.id == request_id, PaymentRequest.status == RequestStatus.REVIEW
            ).execute()
