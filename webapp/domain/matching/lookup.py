"""Loading what matching needs from the database, through the flow's indexes.

For one payment: the open requests with its exact amount and currency (index
amount_minor+currency+status), the recently expired ones with that amount (late
payments), the requests its note quotes by reference (whatever their amount or
state, so matching can report a mismatch), and a request of the same source whose
external id is the payment's transaction id.
"""
from __future__ import annotations

from datetime import datetime

from webapp.domain import matching, references
from webapp.storage import sqlcache
from webapp.storage.models import Payment, PaymentRequest, RequestStatus

_FIELDS = (
    PaymentRequest.id, PaymentRequest.reference, PaymentRequest.amount_minor, PaymentRequest.currency,
    PaymentRequest.status, PaymentRequest.created_at, PaymentRequest.expires_at,
    PaymentRequest.customer_name, PaymentRequest.customer_phone, PaymentRequest.source,
    PaymentRequest.external_id,
)


def _db_time(value):
    return PaymentRequest.created_at.db_value(value)


# Where requests and payments are typed in (by integrators or staff) rather than read
# from a provider: both sides saying "api" corroborates nothing.
NOT_A_SOURCE = frozenset({"api", "ui", "manual"})


def _source(name: str | None) -> str | None:
    return None if name in NOT_A_SOURCE else name


def payment_facts(payment: Payment, *, corroborated_by: str | None = None) -> matching.PaymentFacts:
    return matching.PaymentFacts(
        amount_minor=payment.amount_minor, currency=payment.currency, received_at=payment.received_at,
        note=payment.note, sender_name=payment.sender_name, sender_phone=payment.sender_phone,
        source=_source(payment.source), transaction_id=payment.transaction_id, corroborated_by=corroborated_by,
    )


def request_facts(request: PaymentRequest) -> matching.RequestFacts:
    return matching.RequestFacts(
        id=request.id, reference=request.reference, amount_minor=request.amount_minor,
        currency=request.currency, status=request.status, created_at=request.created_at,
        expires_at=request.expires_at, customer_name=request.customer_name,
        customer_phone=request.customer_phone, source=_source(request.source), external_id=request.external_id,
        paid=request.status == RequestStatus.PAID,
    )


_COLUMNS = ", ".join(f'"{f.column_name}"' for f in _FIELDS)
# Open requests, and expired ones still inside the late-payment lookback, created by a time.
_OPEN = ('"currency" = {p} AND "created_at" <= {p} '
         "AND (\"status\" IN ('pending', 'review') OR (\"status\" = 'expired' AND \"expires_at\" >= {p}))")


def candidate_requests(payment: matching.PaymentFacts, settings: matching.MatchSettings,
                       by_amount: list[matching.RequestFacts] | None = None) -> list[matching.RequestFacts]:
    """Every request matching may consider for `payment` (deduplicated). `by_amount`: those of its
    amount, already read for a batch (requests_by_amount) instead of read here."""
    received = payment.received_at
    if by_amount is None:
        rows = sqlcache.tuples(
            "payment_request.candidates",
            lambda p: f'SELECT {_COLUMNS} FROM "payment_request" WHERE "amount_minor" = {p} AND '
                      + _OPEN.format(p=p),
            [payment.amount_minor, payment.currency, _db_time(received + settings.skew),
             _db_time(received - settings.grace - settings.late_lookback)],
        )
        found = {row[0]: _facts_from_row(row) for row in rows}
    else:
        found = {r.id: r for r in by_amount if in_window(r, payment, settings)}
    quoted = references.find_references(payment.note)
    if quoted:
        for request in PaymentRequest.select(*_FIELDS).where(PaymentRequest.reference.in_(quoted)):
            found[request.id] = request_facts(request)
    if payment.transaction_id and payment.source:
        for request in PaymentRequest.select(*_FIELDS).where(
            PaymentRequest.source == payment.source, PaymentRequest.external_id == payment.transaction_id
        ):
            found[request.id] = request_facts(request)
    return list(found.values())


def requests_by_amount(currency: str, amounts: list[int], latest: datetime, earliest: datetime,
                       ) -> dict[int, list[matching.RequestFacts]]:
    """The requests candidate_requests reads by amount, for many payments of one currency in one
    statement: amount -> requests of that amount created by `latest` (the latest payment's time
    plus the clock skew), open or expired since `earliest` (the earliest payment's lookback).
    in_window() then keeps those each payment may consider."""
    values = sqlcache.padded(sorted(set(amounts)))
    rows = sqlcache.tuples(
        f"payment_request.candidates_{len(values)}",
        lambda p: f'SELECT {_COLUMNS} FROM "payment_request" WHERE "amount_minor" IN ({sqlcache.marks(values, p)}) '
                  f'AND ' + _OPEN.format(p=p),
        [*values, currency, _db_time(latest), _db_time(earliest)],
    )
    found: dict[int, list[matching.RequestFacts]] = {amount: [] for amount in amounts}
    for row in rows:
        found[row[2]].append(_facts_from_row(row))
    return found


def in_window(request: matching.RequestFacts, payment: matching.PaymentFacts, settings: matching.MatchSettings) -> bool:
    """candidate_requests' test by amount, in Python: the same currency and amount, created by the
    payment's time plus the skew, open or expired since its late lookback."""
    received = payment.received_at
    return (request.amount_minor == payment.amount_minor and request.currency == payment.currency
            and request.created_at <= received + settings.skew
            and (request.status in (RequestStatus.PENDING, RequestStatus.REVIEW)
                 or (request.status == RequestStatus.EXPIRED
                     and request.expires_at >= received - settings.grace - settings.late_lookback)))


_TO_TIME = PaymentRequest.created_at.python_value


def _facts_from_row(row: tuple) -> matching.RequestFacts:
    """RequestFacts from a raw _FIELDS row as the database gives it (no model instance, no
    converters but the times': this is the hot path, ~10 rows per payment)."""
    (id_, reference, amount, currency, status, created, expires, name, phone, source, external) = row
    to_time = _TO_TIME
    return matching.RequestFacts(
        id=id_, reference=reference, amount_minor=amount, currency=currency, status=status,
        created_at=to_time(created), expires_at=to_time(expires), customer_name=name,
        customer_phone=phone, source=_source(source), external_id=external,
        paid=status == RequestStatus.PAID,
    )
