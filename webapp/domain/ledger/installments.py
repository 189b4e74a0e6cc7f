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


def decide(payment: Payment, settings: matching.MatchSettings, hold: str | None = None,
           rows: list[PaymentRequest] | None = None) -> matching.Decision | None:
    """What an installment request makes of `payment`; None when no such request names its payer
    (ordinary matching then decides). `rows`: lookup_many()'s for its batch, when read."""
    candidates = _candidates(payment, settings, rows)
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


def _payer(payment: Payment) -> tuple[tuple[str, ...], str | None] | None:
    """(references its note quotes, its E.164 phone or None) when an installment request could
    know who paid; None when nothing names the payer."""
    if payment.amount_minor is None or payment.amount_minor <= 0 or not payment.currency:
        return None
    quoted = tuple(references.find_references(payment.note))
    phone = payment.sender_phone
    whole = bool(phone and phone.startswith("+") and phone[1:].isdigit())  # E.164, not a masked number
    if not quoted and not whole:
        return None
    return quoted, phone if whole else None


_OPEN = (f'r."allow_partial" = {{p}} AND r."currency" = {{p}} AND r."status" IN '
         f'({", ".join(repr(str(s)) for s in OPEN)}) AND r."created_at" <= {{p}}')
_POINTS = {
    1: (QUOTED, "reference", "quotes {reference}"),
    2: (PHONE, "phone", "the customer's phone"),
    3: (PHONE, "phone", "a phone known for the payer"),
}


def _candidates(payment: Payment, settings: matching.MatchSettings, rows: list[PaymentRequest] | None = None,
                ) -> list[matching.Candidate]:
    """The installment requests naming this payer; `rows`: lookup_many()'s for its batch, when read
    (else read here, the same way, for this payment alone)."""
    payer = _payer(payment)
    if payer is None:
        return []
    quoted, phone = payer
    if rows is None:
        rows = lookup_many([payment], settings) or []
    latest = payment.received_at + settings.skew
    listed = f'"{phone}"'
    rows = [r for r in rows if r.currency == payment.currency and r.created_at <= latest and (
        r.reference in quoted if r.found_by == 1 else
        phone is not None and (r.customer_phone == phone if r.found_by == 2 else listed in r.payer_phones))]
    found: dict[int, matching.Candidate] = {}
    for request in rows:
        points, signal, detail = _POINTS[request.found_by]
        found.setdefault(request.id, _candidate(request, points, signal, detail.format(reference=request.reference)))
    return list(found.values())


def lookup_many(payments: list[Payment], settings: matching.MatchSettings) -> list[PaymentRequest] | None:
    """_candidates()'s rows for payments of one currency, in one statement (None when none of them
    names a payer): the open installment requests any of them quotes, or whose customer's or
    payer's phone is one of theirs, created by the latest payment's time plus the skew (money
    that moved before the request existed, beyond the clock-skew allowance, is not an installment
    of it: staff can still link it by hand). From the payers (a roster) to their requests by the
    payer index: CROSS JOIN keeps SQLite's planner from walking every open request instead.
    _candidates(payment, settings, rows) keeps each payment's own."""
    payers = [p for p in map(_payer, payments) if p]
    if not payers:
        return None
    quoted = sorted({ref for refs, _ in payers for ref in refs})
    phones = sorted({phone for _, phone in payers if phone})
    latest = max(p.received_at for p in payments) + settings.skew
    common = [True, payments[0].currency, PaymentRequest.created_at.db_value(latest)]
    parts, params, shape = [], [], []
    if quoted:
        quoted = sqlcache.padded(quoted)
        parts.append(f'SELECT 1 AS "found_by", CAST(NULL AS text) AS "payer_phones", r.* FROM "payment_request" AS r '
                     f'WHERE {_OPEN} AND r."reference" IN ({", ".join("{p}" for _ in quoted)})')
        params += common + quoted
        shape.append(f"q{len(quoted)}")
    if phones:
        phones = sqlcache.padded(phones)
        parts.append(f'SELECT 2 AS "found_by", CAST(NULL AS text) AS "payer_phones", r.* FROM "payment_request" AS r '
                     f'WHERE {_OPEN} AND r."customer_phone" IN ({", ".join("{p}" for _ in phones)})')
        listed = " OR ".join(sqlcache.contains('CAST(y."phones" AS text)', "{p}") for _ in phones)
        parts.append(f'SELECT 3 AS "found_by", CAST(y."phones" AS text) AS "payer_phones", r.* FROM "payer" AS y '
                     f'CROSS JOIN "payment_request" AS r WHERE ({listed}) AND r."payer_id" = y."id" AND {_OPEN}')
        params += common + phones + [f'"{phone}"' for phone in phones] + common
        shape.append(f"p{len(phones)}")
    sql = " UNION ALL ".join(parts) + ' ORDER BY "found_by"'
    return sqlcache.select(PaymentRequest, f"installments_many_{'_'.join(shape)}",
                           lambda p: sql.replace("{p}", p), params)


def _candidate(request: PaymentRequest, points: int, signal: str, detail: str) -> matching.Candidate:
    evidence = (matching.Evidence(signal, points, detail),
                matching.Evidence("installment", 0, f"balance {display(request.balance_minor, request.currency)}"))
    return matching.Candidate(request.id, request.reference, points, evidence, decisive=True)


def overdue(request: PaymentRequest, now: datetime) -> bool:
    """Past its due date with something still owed."""
    return bool(request.due_at and request.due_at < now and request.status in OPEN and request.balance_minor > 0)
