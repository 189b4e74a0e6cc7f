"""Staff decisions on payments in review: confirm, link, reject."""
from __future__ import annotations

from datetime import datetime

from webapp.domain import audit, learned, matching, message_texts, outbox, phones
from webapp.domain.ledger.core import (
    DECIDABLE,
    PAYABLE,
    LedgerError,
    _clear_candidates,
    _release_requests,
    _settle,
    find_payment,
    find_request,
)
from webapp.storage import db, sqlcache
from webapp.storage.models import (
    MatchCandidate,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RejectedPair,
    RequestStatus,
    utcnow,
)


def _staff_candidate(payment: Payment, request: PaymentRequest) -> matching.Candidate:
    """The candidate row staff act on, or a fresh score for a payment linked by hand."""
    if request.allow_partial and payment.currency == request.currency and payment.amount_minor is not None \
            and 0 < payment.amount_minor <= request.balance_minor:
        pass  # an installment: any part of the balance
    elif payment.amount_minor != request.amount_minor or payment.currency != request.currency:
        raise LedgerError(
            "amount_mismatch",
            f"payment {payment.id} is {payment.amount_minor} {payment.currency} (minor units) but "
            f"{request.reference} asks {request.amount_minor} {request.currency}",
            status=422,
        )
    row = MatchCandidate.get_or_none(MatchCandidate.payment == payment.id, MatchCandidate.request == request.id)
    if row is not None:
        evidence = tuple(matching.Evidence(**e) for e in row.evidence)
        return matching.Candidate(request.id, request.reference, row.score, evidence, late=row.late)
    evidence = (matching.Evidence("staff", 0, "linked by staff"),)
    return matching.Candidate(request.id, request.reference, payment.confidence or 0, evidence,
                              late=request.status == RequestStatus.EXPIRED)

def confirm(payment_id: int, reference: str, *, actor: str, user_id: int | None = None,
            now: datetime | None = None, how: str = "staff") -> Payment:
    """Staff confirm that a payment pays a request (also how an unmatched payment is linked).

    Raises LedgerError: not_found (404), amount_mismatch (422), invalid_state (409).
    """
    now = now or utcnow()
    with db.transaction():
        payment, request = find_payment(payment_id), find_request(reference)
        if payment.status not in DECIDABLE:
            raise LedgerError("invalid_state", f"payment {payment_id} is already {payment.status}",
                              status_now=payment.status)
        if request.status not in PAYABLE:
            raise LedgerError("invalid_state", f"{request.reference} is {request.status}; it cannot be paid",
                              status_now=request.status)
        candidate = _staff_candidate(payment, request)
        if payment.status == PaymentStatus.REJECTED:
            how = f"{how} after rejection"  # the audit says staff changed their mind
        if not _settle(payment, candidate, actor=actor, now=now, verified_by=user_id, how=how):
            raise LedgerError("conflict", f"payment {payment_id} or {request.reference} changed meanwhile; reload")
        learned.remember(payment, request, confirmed=True, actor=actor)
    return sqlcache.by_id(Payment, payment_id)

def link(payment_id: int, reference: str, *, actor: str, user_id: int | None = None,
         now: datetime | None = None) -> Payment:
    """Link an unmatched (or rejected) payment to a request by hand.

    Audited as payment.confirmed with how "linked" ("linked after rejection" for a rejected one)."""
    return confirm(payment_id, reference, actor=actor, user_id=user_id, now=now, how="linked")

def reject(payment_id: int, reference: str, reason: str, *, actor: str, now: datetime | None = None,
           notify_customer: bool = False, message: str | None = None) -> Payment:
    """Staff say this payment does not pay this request: the pair is never suggested again.

    The request goes back to pending; the payment stays in review with its other
    candidates, or becomes rejected when none is left. `reason` is internal (audit log,
    review queue). The customer hears of it only when staff ask (`notify_customer`), with
    `message` (staff's own text; the template's when left out) — and never about money
    someone else sent: a payment from another phone than the customer's is refused
    (LedgerError not_the_customers_money, 422).
    """
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("reason_required", "a rejection needs a reason", status=422)
    message = (message or "").strip() or None
    if message:
        try:
            message_texts.check(message)
        except message_texts.TemplateError as exc:
            raise LedgerError("invalid_message", f"message: {exc}", status=422) from None
    now = now or utcnow()
    with db.transaction():
        payment, request = find_payment(payment_id), find_request(reference)
        if notify_customer:
            _check_customer_paid(payment, request)
        if payment.status != PaymentStatus.REVIEW:
            raise LedgerError("invalid_state", f"payment {payment_id} is {payment.status}, not in review",
                              status_now=payment.status)
        # The candidate row is the compare-and-set: of two rejections of one pair, one deletes it.
        removed = MatchCandidate.delete().where(
            MatchCandidate.payment == payment.id, MatchCandidate.request == request.id).execute()
        if removed != 1:
            raise LedgerError("invalid_state", f"{request.reference} is not a candidate of payment {payment_id} "
                              "(already rejected or never suggested)")
        RejectedPair.insert(payment=payment.id, request=request.id, created_at=now).on_conflict_ignore().execute()
        learned.remember(payment, request, confirmed=False, actor=actor)
        remaining = list(
            MatchCandidate.select().where(MatchCandidate.payment == payment.id, MatchCandidate.mismatch.is_null())
            .order_by(MatchCandidate.score.desc())
        )
        if remaining:
            best = remaining[0]
            changed = Payment.update(request=best.request_id, confidence=best.score, evidence=best.evidence).where(
                Payment.id == payment.id, Payment.status == PaymentStatus.REVIEW).execute()
        else:
            _clear_candidates(payment.id)
            changed = Payment.update(status=PaymentStatus.REJECTED, request=None, reason=reason).where(
                Payment.id == payment.id, Payment.status == PaymentStatus.REVIEW).execute()
        if changed != 1:
            raise LedgerError("conflict", f"payment {payment_id} changed meanwhile; reload")
        _release_requests({request.id})
        audit.record("payment.rejected", f"payment:{payment.id}", actor=actor, request=request.reference,
                     reason=reason, customer_told=notify_customer)
        audit.record("request.payment_rejected", f"request:{request.reference}", actor=actor,
                     payment=payment.id, reason=reason, customer_told=notify_customer)
        if notify_customer:
            outbox.payment_rejected(request, payment, message)
    return sqlcache.by_id(Payment, payment_id)


def why_not_tell_customer(payment: Payment, request: PaymentRequest) -> str | None:
    """Why the customer of `request` may not be told about `payment` (None: they may)."""
    if not request.customer_phone:
        return f"{request.reference} has no customer phone"
    sender = payment.sender_phone or ""
    if sender and not phones.same_number(sender, request.customer_phone):
        return (f"payment {payment.id} was sent from {sender}, not from {request.reference}'s customer "
                f"({request.customer_phone}): Paywatch does not tell a customer about someone else's money")
    return None


def _check_customer_paid(payment: Payment, request: PaymentRequest) -> None:
    why = why_not_tell_customer(payment, request)
    if why is not None:
        code = "no_customer_phone" if not request.customer_phone else "not_the_customers_money"
        raise LedgerError(code, why, status=422)
