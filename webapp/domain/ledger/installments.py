"""Installments: a payment toward a request that allows them (fees, invoices), found by who
paid — the request's reference quoted, or a phone known for that request or its payer — and
never by amount alone. More than the balance goes to review flagged, never silently kept."""
from __future__ import annotations

from datetime import datetime

from webapp.domain import matching, references
from webapp.domain.money import display
from webapp.storage import sqlcache
from webapp.storage.models import Payment, PaymentRequest, RequestStatus

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
    quoted = references.find_references(payment.note)
    phone = payment.sender_phone
    whole = bool(phone and phone.startswith("+") and phone[1:].isdigit())  # E.164, not a masked number
    if not quoted and not whole:
        return []
    # Money that moved before the request existed (beyond the clock-skew allowance) is not an
    # installment of it: staff can still link it by hand. One statement built once per shape:
    # the ledger asks this for nearly every payment (most carry a phone).
    open_ = (f'r."allow_partial" = {{p}} AND r."currency" = {{p}} AND r."status" IN '
             f'({", ".join(repr(str(s)) for s in OPEN)}) AND r."created_at" <= {{p}}')
    common = [True, payment.currency, PaymentRequest.created_at.db_value(payment.received_at + settings.skew)]
    parts, params = [], []
    if quoted:
        parts.append(f'SELECT 1 AS "found_by", r.* FROM "payment_request" AS r WHERE {open_} AND r."reference" IN '
                     f'({", ".join("{p}" for _ in quoted)})')
        params += common + list(quoted)
    if whole:
        parts.append(f'SELECT 2 AS "found_by", r.* FROM "payment_request" AS r WHERE {open_} '
                     f'AND r."customer_phone" = {{p}}')
        # From the payers (a roster) to their requests by the payer index: CROSS JOIN keeps
        # SQLite's planner from walking every open request instead.
        listed = sqlcache.contains('CAST(y."phones" AS text)', "{p}")  # the phone, quoted, in the JSON list
        parts.append(f'SELECT 3 AS "found_by", r.* FROM "payer" AS y CROSS JOIN "payment_request" AS r '
                     f'WHERE {listed} AND r."payer_id" = y."id" AND {open_}')
        params += common + [phone] + [f'"{phone}"'] + common
    sql = " UNION ALL ".join(parts) + ' ORDER BY "found_by"'
    found: dict[int, matching.Candidate] = {}
    for request in sqlcache.select(PaymentRequest, f"installments_{len(quoted)}_{whole}",
                                   lambda p: sql.replace("{p}", p), params):
        points, signal, detail = {
            1: (QUOTED, "reference", f"quotes {request.reference}"),
            2: (PHONE, "phone", "the customer's phone"),
            3: (PHONE, "phone", "a phone known for the payer"),
        }[request.found_by]
        found.setdefault(request.id, _candidate(request, points, signal, detail))
    return list(found.values())


def _candidate(request: PaymentRequest, points: int, signal: str, detail: str) -> matching.Candidate:
    evidence = (matching.Evidence(signal, points, detail),
                matching.Evidence("installment", 0, f"balance {display(request.balance_minor, request.currency)}"))
    return matching.Candidate(request.id, request.reference, points, evidence, decisive=True)


def overdue(request: PaymentRequest, now: datetime) -> bool:
    """Past its due date with something still owed."""
    return bool(request.due_at and request.due_at < now and request.status in OPEN and request.balance_minor > 0)
