"""Requests: creating them (with unique amounts when asked), cancelling and expiring them."""
from __future__ import annotations

from datetime import datetime, timedelta

from peewee import IntegrityError

from webapp.domain import audit, options, outbox, webhooks
from webapp.domain.ledger.core import LedgerError, NewRequest, _end, _status_of, find_request
from webapp.domain.ledger.money_in import match_earlier_payments
from webapp.domain.references import new_reference
from webapp.storage import db, sqlcache
from webapp.storage.models import AmountReservation, PaymentRequest, RequestStatus, utcnow


def create_request(new: NewRequest, *, actor: str = "system", now: datetime | None = None) -> PaymentRequest:
    """Create a pending request (and its pending-alert outbox rows).

    Raises LedgerError: reference_taken (409), no_unique_amount (409).
    """
    now = now or utcnow()
    values = options.current()
    ttl = new.expires_in or timedelta(minutes=values["request_ttl_minutes"])
    with db.transaction():
        request = _insert_request(new, now, new.due_at or now + ttl)
        amount = new.amount_minor
        if values["unique_amounts"] and not new.allow_partial:  # installments are found by identity
            amount = _reserve_unique_amount(request, values["unique_amount_max_steps"])
        audit.record(
            "request.created", f"request:{request.reference}", actor=actor,
            amount_minor=amount, requested_minor=new.amount_minor, currency=new.currency,
            expires_at=request.expires_at.isoformat(), source=new.source,
            **({"due_at": new.due_at.isoformat()} if new.due_at else {}),
            **({"allow_partial": True} if new.allow_partial else {}),
        )
        outbox.request_created(request, timedelta(seconds=values["pending_alert_seconds"]))
        webhooks.request_event("request.created", request)
        # Money may have come first (a customer who pays, then books): it is matched now.
        match_earlier_payments(sqlcache.by_id(PaymentRequest, request.id), now)
    return sqlcache.by_id(PaymentRequest, request.id)

def _insert_request(new: NewRequest, now: datetime, expires_at: datetime) -> PaymentRequest:
    fields = dict(
        amount_minor=new.amount_minor, requested_minor=new.amount_minor, currency=new.currency,
        customer_name=new.customer_name, customer_phone=new.customer_phone, agent=new.agent_id,
        lead=new.lead_id, source=new.source, external_id=new.external_id, created_at=now,
        expires_at=expires_at, voucher_pool=new.voucher_pool, meta=new.meta,
        idempotency_key=new.idempotency_key, due_at=new.due_at, allow_partial=new.allow_partial,
        payer=new.payer_id,
    )
    if new.reference:
        if PaymentRequest.select().where(PaymentRequest.reference == new.reference).exists():
            raise LedgerError("reference_taken", f"reference {new.reference} is already used", reference=new.reference)
        try:
            with db.transaction():
                return PaymentRequest.create(reference=new.reference, **fields)
        except IntegrityError:
            raise LedgerError("reference_taken", f"reference {new.reference} (or its external id) is already used",
                              reference=new.reference) from None
    for _ in range(8):  # 31^6 ≈ 8.9e8 references: a collision is rare, eight in a row impossible
        try:
            with db.transaction():
                return PaymentRequest.create(reference=new_reference(), **fields)
        except IntegrityError:
            if new.external_id and PaymentRequest.select().where(
                PaymentRequest.source == new.source, PaymentRequest.external_id == new.external_id
            ).exists():
                raise LedgerError("external_id_taken", f"external id {new.external_id} is already used",
                                  external_id=new.external_id) from None
    raise LedgerError("reference_exhausted", "could not draw an unused reference", status=500)

def _reserve_unique_amount(request: PaymentRequest, max_steps: int) -> int:
    """Hold the first amount from the requested one upward that no open request holds."""
    for step in range(max_steps + 1):
        amount = request.requested_minor + step
        try:
            with db.transaction():
                AmountReservation.create(amount_minor=amount, currency=request.currency, request=request.id)
        except IntegrityError:
            continue
        if step:
            PaymentRequest.update(amount_minor=amount).where(PaymentRequest.id == request.id).execute()
        return amount
    raise LedgerError(
        "no_unique_amount",
        f"every amount from {request.requested_minor} to {request.requested_minor + max_steps} "
        f"{request.currency} (minor units) is held by an open request",
    )

def cancel_request(reference: str, *, actor: str, reason: str = "", now: datetime | None = None) -> PaymentRequest:
    """pending → cancelled. A request waiting on review must be decided first."""
    now = now or utcnow()
    with db.transaction():
        request = find_request(reference)
        if not _end(request, RequestStatus.CANCELLED, (RequestStatus.PENDING,), now):
            raise LedgerError("invalid_state", f"{reference} is {_status_of(request)}; only a pending request can be cancelled",
                              status_now=_status_of(request))
        audit.record("request.cancelled", f"request:{reference}", actor=actor, reason=reason)
        outbox.request_ended(request, RequestStatus.CANCELLED)
        webhooks.request_event("request.cancelled", request)
    return sqlcache.by_id(PaymentRequest, request.id)

def expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire every pending request past expires_at (the 30-s sweep). Returns how many.

    A request with a due date never expires: past it, it is overdue (domain/installments.py).
    """
    now = now or utcnow()
    expired = 0
    while True:
        due = list(
            PaymentRequest.select()
            .where(PaymentRequest.status == RequestStatus.PENDING, PaymentRequest.expires_at <= now,
                   PaymentRequest.due_at.is_null())
            .order_by(PaymentRequest.expires_at)
            .limit(batch)
        )
        for request in due:
            with db.transaction():
                if _end(request, RequestStatus.EXPIRED, (RequestStatus.PENDING,), now):
                    audit.record("request.expired", f"request:{request.reference}", actor="system",
                                 expires_at=request.expires_at.isoformat())
                    outbox.request_expired(request)
                    webhooks.request_event("request.expired", request)
                    expired += 1
        if len(due) < batch:
            return expired
