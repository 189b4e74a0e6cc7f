"""Installments: a payment toward a request that allows them (fees, invoices), found by who
paid — the request's reference quoted, or a phone known for that request or its payer — and
never by amount alone. More than the balance goes to review flagged, never silently kept."""
from __future__ import annotations

from datetime import datetime

from webapp.domain import matching, references
from webapp.domain.money import display
from webapp.storage.models import Payer, Payment, PaymentRequest, RequestStatus

OPEN = (RequestStatus.PENDING, RequestStatus.REVIEW, RequestStatus.PARTIAL)
QUOTED, PHONE = 100, 80  # both decisive: who paid is known


def decide(payment: Payment, settings: matching.MatchSettings, hold: str | None = None) -> matching.Decision | None:
    """What an installment request makes of `payment`; None when no such request names its payer
    (ordinary matching then decides)."""
    candidates = _candidates(payment, settings)
    if not candidates:
        return None
    candidates.sort(key=lambda c: (-c.score, c.reference))
    best = candidates[0]
    if len(candidates) > 1 and candidates[1].score == best.score:
        return matching.Decision("review", best, tuple(candidates),
                                 f"{len(candidates)} installment requests fit this payer equally")
    request = PaymentRequest.get_by_id(best.request_id)
    if payment.amount_minor > request.balance_minor:
        over = display(payment.amount_minor - request.balance_minor, request.currency)
        return matching.Decision("review", best, (best,),
                                 f"over-payment: {display(payment.amount_minor, payment.currency)} against a "
                                 f"balance of {display(request.balance_minor, request.currency)} ({over} too much)")
    if hold:
        return matching.Decision("review", best, (best,), hold)
    if settings.mode == "manual":
        return matching.Decision("review", best, (best,), "manual mode: staff confirm every payment")
    return matching.Decision("confirm", best, (best,), f"installment toward {best.reference}")


def _candidates(payment: Payment, settings: matching.MatchSettings) -> list[matching.Candidate]:
    if payment.amount_minor is None or payment.amount_minor <= 0 or not payment.currency:
        return []
    # Money that moved before the request existed (beyond the clock-skew allowance) is not an
    # installment of it: staff can still link it by hand.
    open_ = PaymentRequest.select().where(
        PaymentRequest.allow_partial == True, PaymentRequest.currency == payment.currency,  # noqa: E712
        PaymentRequest.status.in_(OPEN), PaymentRequest.created_at <= payment.received_at + settings.skew)
    found: dict[int, matching.Candidate] = {}
    quoted = references.find_references(payment.note)
    if quoted:
        for request in open_.where(PaymentRequest.reference.in_(quoted)):
            found[request.id] = _candidate(request, QUOTED, "reference", f"quotes {request.reference}")
    phone = payment.sender_phone
    if phone and phone.startswith("+") and phone[1:].isdigit():  # a whole E.164 number, not a masked one
        for request in open_.where(PaymentRequest.customer_phone == phone):
            found.setdefault(request.id, _candidate(request, PHONE, "phone", "the customer's phone"))
        payers = [p.id for p in Payer.select(Payer.id).where(Payer.phones.cast("text").contains(f'"{phone}"'))]
        if payers:
            for request in open_.where(PaymentRequest.payer.in_(payers)):
                found.setdefault(request.id, _candidate(request, PHONE, "phone", "a phone known for the payer"))
    return list(found.values())


def _candidate(request: PaymentRequest, points: int, signal: str, detail: str) -> matching.Candidate:
    evidence = (matching.Evidence(signal, points, detail),
                matching.Evidence("installment", 0, f"balance {display(request.balance_minor, request.currency)}"))
    return matching.Candidate(request.id, request.reference, points, evidence, decisive=True)


def overdue(request: PaymentRequest, now: datetime) -> bool:
    """Past its due date with something still owed."""
    return bool(request.due_at and request.due_at < now and request.status in OPEN and request.balance_minor > 0)
