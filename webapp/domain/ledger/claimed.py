"""A customer's claim names a payment already seen: put that payment before staff for the request.

Never confirms: the payment goes to review with the request as a candidate (evidence: the
customer quoted its transaction code), and the request waits in review. Staff decide.
"""
from __future__ import annotations

from datetime import datetime

from webapp.domain import audit
from webapp.domain.ledger.core import DECIDABLE, find_payment
from webapp.storage import db, sqlcache
from webapp.storage.models import (
    MatchCandidate,
    PaymentRequest,
    PaymentStatus,
    RejectedPair,
    RequestStatus,
    utcnow,
)

# What review_claimed() found; the claim keeps it as evidence.
ALREADY_PAID = "already_paid"  # the payment is confirmed for this very request
ELSEWHERE = "confirmed_elsewhere"  # confirmed for another request: staff look at both
REJECTED_BEFORE = "rejected_before"  # staff already said this payment is not for this request
REQUEST_ENDED = "request_ended"  # cancelled or failed: nothing to pay any more
IN_REVIEW = "in_review"  # the payment now waits in the review queue with this request as a candidate


def review_claimed(payment_id: int, request_id: int, detail: str, *, actor: str,
                   now: datetime | None = None) -> str:
    """Offer payment `payment_id` to staff for request `request_id` because a customer claimed it.

    One transaction: the candidate row (with the claim as evidence), payment → review,
    request pending → review (unless the amounts differ: the row then carries the mismatch),
    and the audit event. Returns one of the outcomes above.
    """
    now = now or utcnow()
    with db.transaction():
        payment = find_payment(payment_id)
        request = sqlcache.by_id(PaymentRequest, request_id)
        if payment.status == PaymentStatus.CONFIRMED:
            return ALREADY_PAID if payment.request_id == request.id else ELSEWHERE
        if RejectedPair.select().where(RejectedPair.payment == payment.id, RejectedPair.request == request.id).exists():
            return REJECTED_BEFORE
        if request.status not in (RequestStatus.PENDING, RequestStatus.REVIEW, RequestStatus.EXPIRED):
            return REQUEST_ENDED
        mismatch = None
        if (payment.amount_minor, payment.currency) != (request.amount_minor, request.currency):
            mismatch = (f"the payment is {payment.amount_minor} {payment.currency} (minor units), the request asks "
                        f"{request.amount_minor} {request.currency}")
        evidence = {"signal": "claim", "points": 0, "detail": detail}
        row = MatchCandidate.get_or_none(MatchCandidate.payment == payment.id, MatchCandidate.request == request.id)
        if row is None:
            sqlcache.insert(MatchCandidate, {
                "payment": payment.id, "request": request.id, "score": payment.confidence or 0,
                "evidence": [evidence], "late": request.status == RequestStatus.EXPIRED, "mismatch": mismatch,
                "created_at": now,
            })
        elif evidence not in (row.evidence or []):
            MatchCandidate.update(evidence=[*(row.evidence or []), evidence]).where(MatchCandidate.id == row.id).execute()
        values = {"status": PaymentStatus.REVIEW, "reason": f"a customer quoted its transaction code for {request.reference}"}
        if payment.request_id is None:
            values["request"] = request.id
        sqlcache.update(type(payment), values, {"id": payment.id, "status": DECIDABLE})
        if mismatch is None:
            sqlcache.update(PaymentRequest, {"status": RequestStatus.REVIEW},
                            {"id": request.id, "status": RequestStatus.PENDING})
        audit.record("payment.review", f"payment:{payment.id}", actor=actor, reason="customer's claim",
                     candidates=[request.reference], mismatch=mismatch)
    return IN_REVIEW
