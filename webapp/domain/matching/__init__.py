"""Scoring which request a payment pays, and deciding what to do about it.

Pure: plain dataclasses in, plain dataclasses out; no database, clock or Flask.

Hard requirements (a request failing one is not a candidate):
same currency; exact amount in minor units; status open ("pending"/"review"),
or "expired" for a late payment; received no earlier than created_at - skew.
The time that counts is when the money moved (the provider's own time), clamped
to `now` (a time in the future is a source's clock error). Money that moved after
expires_at (up to late_lookback later) makes a *late* candidate: scored as usual,
flagged `late`, and it can only go to review, in every mode (DESIGN: a payment
for an expired request goes to review, never silently). A notice that arrives
late for money that moved before expiry is not late: it may be confirmed, also
when the sweep has marked the request "expired" meanwhile (the ledger allows
expired -> paid then). `grace` only bounds how long after expiry the ledger
keeps looking at an expired request for such late notices (lookup.py).

Clock skew between a provider and us: a provider clock ahead of ours can only
make money look later (late → review: the safe side); one behind ours makes it
look earlier, which no receiver can detect — `skew` (5 min) is the allowance
before a request's creation, none is given after its expiry.

Points (each signal is one Evidence; the score is the sum, capped at 100):

| signal         | points | when                                                       |
| -------------- | ------ | ---------------------------------------------------------- |
| reference      | 100    | the note quotes the request's reference exactly: decisive |
| reference      | 60     | the note has it with one typing mistake (two such: a tie)  |
| transaction_id | 60     | payment.transaction_id == request.external_id (>= 4 chars)|
| phone          | 60     | same number (digits equal, or last 9 digits when one side  |
|                |        | is not E.164)                                              |
| phone          | 60     | masked number ("0712***678") whose >= 6 visible digits fit |
|                |        | this request's phone and no other candidate's              |
| phone          | 15     | masked number that fits several, or shows only 5 digits    |
| name           | 35     | the same person's name by the name rules (names.py: titles |
|                |        | dropped, initials, any order, spelling variants), or one   |
|                |        | typing mistake (OSA distance 1)                            |
| name           | 15     | token-sort ratio >= name_similar_ratio (80)                |
| amount_unique  | 30     | the only candidate with this amount and currency           |
| name_unique    | 25     | among several candidates with this amount, the only one    |
|                |        | whose name is the payer's by the name rules                |
| source         | 15     | payment and request come from the same source              |
| corroborated   | 10     | another source reported the same transaction               |
| learned_name   | 60     | staff confirmed this payer name for this customer at least |
| learned_phone  |        | `learn_after` times (2), never rejected, for no other one; |
|                | 15     | fewer times. A rejected name also zeroes the name signal.  |
| currency, amount, window | 0 | the hard requirements, listed so the UI shows them  |

Defaults: auto_confirm_threshold 60, review_threshold 0, tie_margin 30, skew 5 min,
grace 15 min, late_lookback 3 days. So: the amount alone (30) goes to review; a
phone (60), a strong name + unique amount (65), a near reference (60), a masked
phone fitting one candidate only (60), a learned alias (60) confirm; a candidate
less than 30 points ahead of the next never confirms, except an exact reference
against candidates without one.

A request whose reference the note quotes exactly but which fails a hard
requirement (other amount, currency, already paid, outside the window) is kept
as a candidate with `mismatch` set and score 0: it is never confirmed and it
blocks automatic confirmation of anything else. The caller must pass such
requests (look up `references.find_references(note)`), or a typo match to
another request could not be told from a quote of the first.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable

from webapp.domain import durations
from webapp.domain.matching import signals
from webapp.domain.matching.facts import (
    MODES,
    OPEN_STATUSES,
    POINTS,
    Action,
    Candidate,
    Decision,
    Evidence,
    Learned,
    MatchSettings,
    Mode,
    PaymentFacts,
    RequestFacts,
)
from webapp.domain.matching.names import NameMatch, NameRules
from webapp.domain.matching.signals import _Payment
from webapp.domain.money import display


def window(request: RequestFacts, settings: MatchSettings) -> tuple[datetime, datetime | None]:
    """(start, end) of the request's lookup window (end: expiry + grace; None = no expiry).

    Money that moved after expires_at is late even inside this window (see _hard)."""
    end = None if request.expires_at is None else request.expires_at + settings.grace
    return request.created_at - settings.skew, end



def _hard(payment: PaymentFacts, request: RequestFacts, received: datetime,
          settings: MatchSettings) -> tuple[str | None, bool, str]:
    """(failure or None, late, window detail) for the hard requirements."""
    if payment.currency.upper() != request.currency.upper():
        return f"currency {request.currency.upper()}, not {payment.currency.upper()}", False, ""
    if payment.amount_minor != request.amount_minor:
        return (f"amount {display(request.amount_minor, request.currency)}, not "
                f"{display(payment.amount_minor, payment.currency)}"), False, ""
    if request.paid or request.status == "paid":
        return "already paid", False, ""
    if request.status not in OPEN_STATUSES and request.status != "expired":
        return f"request is {request.status}", False, ""
    start, _ = window(request, settings)
    if received < start:
        return f"received {durations.spoken(request.created_at - received)} before the request", False, ""
    if request.expires_at is None or received <= request.expires_at:
        return None, False, f"received {durations.spoken(received - request.created_at)} after the request"
    overdue = received - request.expires_at
    if received > request.expires_at + settings.late_lookback:
        return f"received {durations.spoken(overdue)} after expiry", False, ""
    return None, True, f"late: received {durations.spoken(overdue)} after expiry"


def _named(pay: _Payment, request: RequestFacts) -> bool:
    """The payer's name is this customer's by the name rules, and staff never said otherwise."""
    return pay.same_name(request.customer_name) is not None and not signals.refused(pay, request)


_NOT_EXTERNAL_ID = Evidence("transaction_id", 0, "transaction id is not the request's external id")
_OTHER_SOURCE = Evidence("source", 0, "not from the request's source")


def _score(pay: _Payment, request: RequestFacts, same_amount_open: int, settings: MatchSettings,
           same_name_open: int = 0, masked_fits: int = 0,
           hard: tuple[str | None, bool, str] | None = None) -> Candidate | None:
    """`hard`: _hard() of this pair when the caller has it already."""
    payment = pay.facts
    failure, late, when = hard or _hard(payment, request, pay.received, settings)
    is_quoted, typo = pay.quoted.find(request.reference)
    if failure is not None:
        if not is_quoted:
            return None
        return Candidate(request.id, request.reference, 0, (
            Evidence("reference", POINTS["reference"], f"note quotes {request.reference}"),
            Evidence("mismatch", 0, f"but {request.reference}: {failure}"),
        ), mismatch=failure)
    amount, shared = pay.amount, pay.shared
    evidence = [
        shared("currency", 0, f"same currency {request.currency.upper()}"),
        shared("amount", 0, f"exact amount {amount}"),
        Evidence("window", 0, when),
    ]
    if is_quoted:
        evidence.append(Evidence("reference", POINTS["reference"], f"note quotes {request.reference}"))
    elif typo is not None:
        evidence.append(Evidence("reference", POINTS["reference_near"],
                                 f"note has {typo}, one character from {request.reference}"))
    else:
        evidence.append(Evidence("reference", 0, f"note does not quote {request.reference}"))
    ext = (request.external_id or "").strip().upper()
    if len(ext) >= 4 and pay.txn == ext:
        evidence.append(Evidence("transaction_id", POINTS["transaction_id"],
                                 f"transaction id {payment.transaction_id} is the request's external id"))
    else:
        evidence.append(_NOT_EXTERNAL_ID)
    evidence.append(signals.phone(pay, request.customer_phone, masked_fits))
    named = _named(pay, request)
    evidence.append(signals.name(pay, request.customer_name, settings, refused=signals.refused(pay, request),
                                 rival_named=same_name_open > int(named)))
    evidence.extend(signals.learned(pay, request, settings))
    if same_amount_open == 1:
        evidence.append(shared("amount_unique", POINTS["amount_unique"], f"the only open request for {amount}"))
    else:
        evidence.append(shared("amount_unique", 0, f"{same_amount_open} open requests for {amount}"))
        if same_name_open == 1 and named:
            evidence.append(Evidence("name_unique", POINTS["name_unique"],
                                     f"the only one of them in the name {request.customer_name!r}"))
    if payment.source and request.source and payment.source.lower() == request.source.lower():
        evidence.append(shared("source", POINTS["source"], f"both from source {request.source}"))
    else:
        evidence.append(_OTHER_SOURCE)
    if payment.corroborated_by:
        evidence.append(shared("corroborated", POINTS["corroborated"],
                               f"the same transaction was also seen at {payment.corroborated_by}"))
    total = min(100, sum(e.points for e in evidence))
    return Candidate(request.id, request.reference, total, tuple(evidence), late=late,
                     decisive=is_quoted)


def score(payment: PaymentFacts, request: RequestFacts, *, same_amount_open: int,
          settings: MatchSettings, now: datetime | None = None, masked_fits: int = 0,
          learned: tuple[Learned, ...] = ()) -> Candidate | None:
    """Score one pair; None when a hard requirement fails (unless the note quotes
    the reference: then a `mismatch` candidate). `same_amount_open` counts the
    candidates with this amount and currency, this one included; `masked_fits` how
    many of them a masked payment phone fits (0: unknown, counted weak)."""
    return _score(_Payment(payment, now, settings, learned), request, same_amount_open, settings,
                  masked_fits=masked_fits)


def _rank(candidate: Candidate) -> tuple[bool, int, bool, bool, str]:
    return (candidate.mismatch is not None, -candidate.score, not candidate.decisive,
            candidate.late, str(candidate.request_id))


def candidates(payment: PaymentFacts, requests: Iterable[RequestFacts], *,
               rejected_request_ids: frozenset[int | str] = frozenset(),
               settings: MatchSettings, now: datetime | None = None,
               learned: tuple[Learned, ...] = ()) -> list[Candidate]:
    """Every candidate among `requests`, best first, excluding rejected pairs.

    Give it the open requests with the payment's amount and currency, the recently
    expired ones (for late payments) and every request the note quotes; and what
    staff taught about this payer's name and phone (`learned`, see Learned).
    """
    pay = _Payment(payment, now, settings, learned)
    pool = [(r, _hard(payment, r, pay.received, settings)) for r in requests if r.id not in rejected_request_ids]
    passing = [r for r, hard in pool if hard[0] is None]
    same_name = sum(1 for r in passing if _named(pay, r)) if pay.name else 0
    fits = sum(1 for r in passing if signals.masked_fit(pay, r.customer_phone)) if pay.masked is not None else 0
    found = (_score(pay, r, len(passing), settings, same_name, fits, hard) for r, hard in pool)
    return sorted((c for c in found if c is not None), key=_rank)


def decide(payment: PaymentFacts, ranked: Iterable[Candidate],
           settings: MatchSettings) -> Decision:
    """Apply the verification mode to ranked candidates (as candidates() returns)."""
    ranked = tuple(sorted(ranked, key=_rank))
    amount = display(payment.amount_minor, payment.currency)
    if not ranked:
        return Decision("unmatched", None, ranked, f"no open request for {amount} in its window")
    usable = [c for c in ranked if c.mismatch is None]
    flagged = [c for c in ranked if c.mismatch is not None]
    reviewable = [c for c in usable if c.score >= settings.review_threshold]
    best = usable[0] if usable else None

    def review(reason: str) -> Decision:
        return Decision("review", best or flagged[0], ranked, reason)

    if best is None:
        reason = f"the note quotes {flagged[0].reference}, but {flagged[0].mismatch}"
        if settings.mode == "automated":
            return Decision("unmatched", None, ranked, reason)
        return review(reason)
    rival = usable[1] if len(usable) > 1 else None
    close = [c for c in usable[1:] if best.score - c.score < settings.tie_margin]
    late = next((c for c in [best, *close] if c.late), None)
    if late is not None:
        return replace(review(f"paid after {late.reference} expired (late)"), late=True)
    if settings.mode == "manual":
        if not (reviewable or flagged):
            return Decision("unmatched", None, ranked, "no candidate reaches the review threshold")
        return review("manual verification: staff confirm every match")
    # Two exact quotes are a tie at any margin; one exact quote beats any inexact rival.
    clear = rival is None or (not rival.decisive and (best.decisive or not close))
    if flagged:
        doubt = f"the note also quotes {flagged[0].reference}, but {flagged[0].mismatch}"
    elif not clear:
        doubt = f"{best.reference} ({best.score}) and {rival.reference} ({rival.score}) are too close"
    elif best.score < settings.auto_confirm_threshold:
        doubt = f"{best.reference} scores {best.score}, below {settings.auto_confirm_threshold}"
    else:
        return Decision("confirm", best, ranked, f"{best.reference} scores {best.score}")
    if settings.mode == "automated" or not (reviewable or flagged):
        return Decision("unmatched", None, ranked, doubt)
    return review(doubt)


def match(payment: PaymentFacts, requests: Iterable[RequestFacts], *,
          rejected_request_ids: frozenset[int | str] = frozenset(),
          settings: MatchSettings, now: datetime | None = None,
          learned: tuple[Learned, ...] = ()) -> Decision:
    """candidates() then decide(): the whole of matching for one payment."""
    ranked = candidates(payment, requests, rejected_request_ids=rejected_request_ids,
                        settings=settings, now=now, learned=learned)
    return decide(payment, ranked, settings)


__all__ = [
    "MODES", "OPEN_STATUSES", "Action", "Candidate", "Decision", "Evidence", "Learned", "MatchSettings",
    "Mode", "NameMatch", "NameRules", "PaymentFacts", "RequestFacts", "POINTS", "candidates", "decide",
    "match", "score", "window",
]
