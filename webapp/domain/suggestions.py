"""Requests staff may link an unmatched or rejected payment to: suggested, or found by a search.

Matching (webapp.domain.matching) only ever considers the exact amount inside a
request's window. Staff linking by hand need a wider net: the same amount outside
the window, near amounts (a customer who paid a little more or less), the payer's
phone or name on a request of another amount. Each query is led by an index and
bounded: the exact amount (amount+currency+status index) and the phone (its index)
among requests created WINDOW_BEFORE … WINDOW_AFTER around the money; near amounts
and names among those created NEAR_WINDOW before … WINDOW_AFTER (created_at index);
at most POOL rows each, ended ones included — so a suggestion costs a few indexed
reads whatever the size of the table. Open or recently expired is checked on the rows
read: in SQL, SQLite would pick the status index and read every open request
(bench/review_suggestions.py).

A Suggestion says why it is offered (`reasons`) and whether the ledger would take the
link (`linkable`; else `why_not`): the ledger links the exact amount, or any part of
an installment request's balance (ledger.decisions._staff_candidate). Near amounts
are offered for the staff's eyes only. Pairs staff rejected are never suggested; a
search still finds them, flagged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from webapp.config import settings
from webapp.domain import options, phones, references
from webapp.domain.matching import names
from webapp.domain.money import display
from webapp.storage.models import Payment, PaymentRequest, RejectedPair, RequestStatus

WINDOW_BEFORE = timedelta(days=30)  # requests created up to this long before the money
WINDOW_AFTER = timedelta(days=2)  # … or after it (a customer who paid before staff typed the request)
SEARCH_BEFORE = timedelta(days=90)  # a name search looks this far back
RECENTLY_EXPIRED = timedelta(days=7)  # an expired request is offered if it expired at most this long before the money
NEAR = 0.10  # near amounts: within 10 % of the payment's
POOL = 50  # rows read per query at most
NEAR_WINDOW = timedelta(days=3)  # near amounts and names: requests created this long before the money (or after)
# What a suggestion shows and judges (not the whole row: a page renders up to SHOWN of them per payment).
_COLUMNS = (PaymentRequest.id, PaymentRequest.reference, PaymentRequest.amount_minor, PaymentRequest.currency,
            PaymentRequest.customer_name, PaymentRequest.customer_phone, PaymentRequest.status,
            PaymentRequest.created_at, PaymentRequest.expires_at, PaymentRequest.allow_partial,
            PaymentRequest.paid_minor)
OPEN = (RequestStatus.PENDING, RequestStatus.REVIEW, RequestStatus.PARTIAL)
LINKABLE = (*OPEN, RequestStatus.EXPIRED)  # ledger.PAYABLE
SHOWN = 6

# Points only order the list; they are not matching's score.
_POINTS = {"amount": 50, "near": 15, "phone": 40, "name": 30, "name_part": 10, "open": 10, "day": 10, "week": 5}


@dataclass
class Suggestion:
    request: PaymentRequest
    points: int = 0
    reasons: list[str] = field(default_factory=list)
    linkable: bool = True
    why_not: str | None = None
    rejected_before: bool = False


def _offered(req: PaymentRequest, since: datetime) -> bool:
    return req.status in OPEN or (req.status == RequestStatus.EXPIRED and req.expires_at >= since)


def _window(query, start: datetime, end: datetime):
    return query.where(PaymentRequest.created_at.between(start, end)).order_by(
        PaymentRequest.created_at.desc()).limit(POOL)


def _sender_phone(payment: Payment) -> str | None:
    return phones.try_e164(payment.sender_phone, settings().phone_region) if payment.sender_phone else None


def _name_word(text: str | None) -> str | None:
    """The longest word of a name (surname-like), for a LIKE filter confirmed by the name rules."""
    words = sorted((w for w in (text or "").replace(",", " ").split() if len(w) >= 3 and w.isalpha()), key=len)
    return words[-1] if words else None


def _name_rule(payment: Payment):
    """customer name -> whether it is the payer's by the name rules (compared once per name)."""
    rules, seen = options.name_rules(), {}

    def same(customer: str) -> bool:
        if customer not in seen:
            seen[customer] = names.compare(payment.sender_name, customer, rules) is not None
        return seen[customer]

    return same


def _ledger_refusal(payment: Payment, req: PaymentRequest) -> str | None:
    """Why ledger.link would refuse this pair (None: it would take it)."""
    if req.status not in LINKABLE:
        return f"{req.reference} is {req.status}"
    if payment.amount_minor is None or payment.currency != req.currency:
        return "another currency" if payment.amount_minor is not None else "the payment's amount is unreadable"
    if req.allow_partial and 0 < payment.amount_minor <= req.balance_minor:
        return None
    if payment.amount_minor != req.amount_minor:
        return (f"the amounts differ ({display(req.amount_minor, req.currency)} asked): the ledger links the "
                "exact amount only")
    return None


def _judge(payment: Payment, req: PaymentRequest, same_name, phone: str | None) -> Suggestion:
    found = Suggestion(req)
    add = found.reasons.append
    if payment.amount_minor is not None and payment.currency == req.currency:
        if payment.amount_minor == req.amount_minor:
            found.points += _POINTS["amount"]
            add("same amount")
        elif req.allow_partial and 0 < payment.amount_minor <= req.balance_minor:
            found.points += _POINTS["amount"]
            add(f"an installment of its {display(req.balance_minor, req.currency)} balance")
        elif abs(payment.amount_minor - req.amount_minor) <= NEAR * req.amount_minor:
            found.points += _POINTS["near"]
            diff = payment.amount_minor - req.amount_minor
            add(f"near amount: {display(abs(diff), req.currency)} {'more' if diff > 0 else 'less'} than asked")
    if phone and req.customer_phone and phones.same_number(phone, req.customer_phone):
        found.points += _POINTS["phone"]
        add(f"same phone {req.customer_phone}")
    if payment.sender_name and req.customer_name:
        if same_name(req.customer_name):
            found.points += _POINTS["name"]
            add(f"same name ({req.customer_name})")
        elif (_name_word(payment.sender_name) or "\0").lower() in req.customer_name.lower():
            found.points += _POINTS["name_part"]
            add(f"name shares {_name_word(payment.sender_name)!r}")
    if req.status in OPEN:
        found.points += _POINTS["open"]
    apart = abs(req.created_at - payment.received_at)
    found.points += _POINTS["day"] if apart <= timedelta(days=1) else _POINTS["week"] if apart <= timedelta(days=7) else 0
    found.why_not = _ledger_refusal(payment, req)
    found.linkable = found.why_not is None
    return found


def _rank(found: dict[int, Suggestion], payment: Payment, limit: int) -> list[Suggestion]:
    ordered = sorted(found.values(), key=lambda s: (not s.linkable, -s.points,
                                                    abs(s.request.created_at - payment.received_at), s.request.id))
    return ordered[:limit]


def _rejected(payment: Payment, ids) -> set[int]:
    if not ids:
        return set()
    return {r.request_id for r in RejectedPair.select(RejectedPair.request)
            .where(RejectedPair.payment == payment.id, RejectedPair.request.in_(list(ids)))}


def suggest(payment: Payment, *, limit: int = SHOWN) -> list[Suggestion]:
    """The requests most likely paid by `payment`, best first (at most `limit`).

    Same or near amount (same currency), the payer's phone, or the payer's name; open, or
    expired no earlier than RECENTLY_EXPIRED before the money; created in the window around it.
    Rejected pairs are left out; so is anything sharing nothing but the time."""
    received = payment.received_at
    start, end, near_start = received - WINDOW_BEFORE, received + WINDOW_AFTER, received - NEAR_WINDOW
    # An equality leads each query, or a short created_at range: the status is checked here,
    # not in SQL, where SQLite would pick the status index and read every open request.
    queries = []
    if payment.amount_minor is not None and payment.currency:
        queries.append(_window(PaymentRequest.select(*_COLUMNS).where(
            PaymentRequest.amount_minor == payment.amount_minor, PaymentRequest.currency == payment.currency,
            PaymentRequest.status.in_(LINKABLE)), start, end))
        spread = int(payment.amount_minor * NEAR)
        queries.append(_window(PaymentRequest.select(*_COLUMNS).where(
            PaymentRequest.currency == payment.currency,
            PaymentRequest.amount_minor.between(payment.amount_minor - spread, payment.amount_minor + spread)),
            near_start, end))
    phone = _sender_phone(payment)
    if phone:
        queries.append(_window(PaymentRequest.select(*_COLUMNS).where(PaymentRequest.customer_phone == phone), start, end))
    word = _name_word(payment.sender_name)
    if word:
        queries.append(_window(PaymentRequest.select(*_COLUMNS).where(PaymentRequest.customer_name.contains(word)),
                               near_start, end))
    since = received - RECENTLY_EXPIRED
    same_name = _name_rule(payment)
    found: dict[int, Suggestion] = {}
    for query in queries:
        for req in query:
            if req.id not in found and _offered(req, since):
                found[req.id] = _judge(payment, req, same_name, phone)
    for request_id in _rejected(payment, found):
        del found[request_id]
    return _rank({k: s for k, s in found.items() if s.reasons}, payment, limit)


def search(payment: Payment, text: str, *, limit: int = 10) -> list[Suggestion]:
    """Requests found by what staff typed: a reference (exact, any spelling), a phone, or part of
    a name (created up to SEARCH_BEFORE before the money, at most `limit`), judged as suggest() does."""
    text = (text or "").strip()[:100]
    if len(text) < 2:
        return []
    key = references.normalize(text)
    spelled = {text, text.upper(), f"{key[:2]}-{key[2:]}" if len(key) > 2 else key}
    hits = list(PaymentRequest.select(*_COLUMNS).where(PaymentRequest.reference.in_(list(spelled))).limit(limit))
    phone = phones.try_e164(text, settings().phone_region) if sum(c.isdigit() for c in text) >= 7 else None
    if phone:
        hits += list(PaymentRequest.select(*_COLUMNS).where(PaymentRequest.customer_phone == phone)
                     .order_by(PaymentRequest.created_at.desc()).limit(limit))
    elif not hits:
        start = payment.received_at - SEARCH_BEFORE
        hits += list(PaymentRequest.select(*_COLUMNS).where(
            PaymentRequest.created_at >= start, PaymentRequest.customer_name.contains(text))
            .order_by(PaymentRequest.created_at.desc()).limit(limit))
    same_name, sender = _name_rule(payment), _sender_phone(payment)
    found = {req.id: _judge(payment, req, same_name, sender) for req in hits}
    for request_id in _rejected(payment, found):
        found[request_id].rejected_before = True
        found[request_id].reasons.append("staff rejected this pair before")
    return _rank(found, payment, limit)
