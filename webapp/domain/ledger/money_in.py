"""Payments: the one door for money seen anywhere, and what matching decides for it.

One transaction is one payment: a report is first looked up by its own key (source,
source_ref: re-reading a mail changes nothing), then by its money (currency, provider
transaction id, amount: the same money from another mail, the portal, the gateway or
the API); only new money becomes a payment. A later report of known money is a
PaymentSighting of that payment, and one from another source corroborates it. The
unique index on (currency, txn_norm, amount_minor) makes this hold under concurrency.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from peewee import IntegrityError

from webapp.domain import audit, learned, matching, options, outbox, webhooks
from webapp.domain.ledger import installments
from webapp.domain.ledger.lookahead import Lookahead
from webapp.domain.ledger.core import (
    REVERSED_REASON,
    IngestResult,
    PaymentObservation,
    _clear_candidates,
    _evidence,
    _settle,
    flush_payment,
    normalize_txn,
    stored,
    write_payment,
)
from webapp.domain.matching.lookup import candidate_requests, payment_facts
from webapp.storage import db, sqlcache
from webapp.storage.models import (
    MatchCandidate,
    Payment,
    PaymentRequest,
    PaymentSighting,
    PaymentStatus,
    RejectedPair,
    RequestStatus,
    Reversal,
    utcnow,
)

CORROBORATION = matching.POINTS["corroborated"]


def ingest_payment(obs: PaymentObservation, *, actor: str = "system", now: datetime | None = None) -> IngestResult:
    """The one door for money seen anywhere. Idempotent on (source, source_ref), and one
    payment per (currency, transaction id, amount) whichever source reports it."""
    now = now or utcnow()
    for attempt in (1, 2):
        try:
            with db.transaction():
                return _ingest(obs, actor, now)
        except IntegrityError:
            # Another process stored this report, or this money, between our look and our insert.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def ingest_payments(observations: list[PaymentObservation], *, actor: str = "system",
                    now: datetime | None = None) -> list[IngestResult]:
    """ingest_payment() for a batch read by one source pass, in one transaction.

    The batch commits once, which is what makes a source job that reads many payments
    at a time several times cheaper per payment. It first runs without a savepoint per
    payment (two round trips each on PostgreSQL). A duplicate key there means another
    process stored one of these reports, or this money, after we looked (SQLite cannot
    get there: the batch holds the write lock from its first statement): the batch is
    then rolled back, callbacks and buffered rows included, and run again with one
    savepoint per payment, so the duplicate affects only itself. Keep batches to a few
    hundred: the write lock is held until the commit.
    """
    try:
        with db.transaction():
            ahead = _lookahead(observations, now or utcnow())
            if ahead is not None and ahead.holding:
                db.defer_foreign_keys()  # the held payments' rows come last (Lookahead.flush)
            results = [_ingest(obs, actor, now or utcnow(), ahead) for obs in observations]
            if ahead is not None:
                ahead.flush()
            return results
    except IntegrityError:
        pass
    with db.transaction():
        return [ingest_payment(obs, actor=actor, now=now) for obs in observations]


def _lookahead(observations: list[PaymentObservation], now: datetime) -> Lookahead | None:
    """The batch's reads, done once for all of it (see lookahead)."""
    if len(observations) < 2:
        return None
    payments = []
    for obs in observations:
        payment = Payment()
        stored(payment, _values(obs, now))
        payments.append(payment)
    return Lookahead(payments, [((obs.source, obs.source_ref), _money_key(obs)) for obs in observations],
                     options.match_settings(options.current()))


def _ingest(obs: PaymentObservation, actor: str, now: datetime, ahead: Lookahead | None = None) -> IngestResult:
    """ingest_payment()'s work, inside the caller's transaction; `ahead`: the batch's reads."""
    if ahead is None:
        return _ingest_one(obs, actor, now, None)
    report, money = (obs.source, obs.source_ref), _money_key(obs)
    found = ahead.stored(report, money)
    if found is None or found[0] is not None or found[1] is not None:
        ahead.flush()  # read again, or known money: what follows reads the batch's payments
    result = _ingest_one(obs, actor, now, ahead, found)
    if not getattr(result.payment, "held", False):
        flush_payment(result.payment)  # stored as decided by now; never left unwritten
    ahead.done(report, money, result.created, result.decision)
    return result


def _ingest_one(obs: PaymentObservation, actor: str, now: datetime, ahead: Lookahead | None,
                found: tuple[Payment | None, Payment | None] | None = None) -> IngestResult:
    known, twin = found if found is not None else find_stored(obs)
    if known is not None:
        return IngestResult(known, created=False)
    if twin is not None:
        return seen_again(twin, obs, actor=actor, now=now)
    if ahead is None:
        payment = insert_payment(obs, now)
    else:  # its INSERT waits until it is decided: one statement stores it as decided (write_payment)
        payment = Payment(id=ahead.next_id())
        payment.unwritten = _values(obs, now)
        stored(payment, payment.unwritten)
        if ahead.holding:
            ahead.hold(payment)  # and with the batch's others at its end, unless a read needs it sooner
    audit.record("payment.received", f"payment:{payment.id}", actor=actor, source=obs.source,
                 source_ref=obs.source_ref, amount_minor=obs.amount_minor, currency=obs.currency)
    if webhooks.listened("payment.received"):
        flush_payment(payment)  # the event's body is read from the row
        webhooks.payment_event("payment.received", payment)
    if not payment.parsed:
        flush_payment(payment)
        audit.record("payment.unreadable", f"payment:{payment.id}", actor=actor,
                     reason="kept as evidence: no rule could read the amount")
        return IngestResult(payment, created=True)
    hold = _doubt(payment, now)
    decision = _installment(payment, now, hold, ahead) or _match(payment, now, fresh=True, hold=hold, ahead=ahead)
    # `payment` holds every change written to its row (as stored): nothing to read again.
    return IngestResult(payment, created=True, decision=decision)


# ---------------------------------------------------------------- storing, once


def find_stored(obs: PaymentObservation) -> tuple[Payment | None, Payment | None]:
    """(the payment this very report made, or None; the payment of the same money, or None).

    One statement: the payment by its report's key, by a sighting with that key, and by its money."""
    key = _money_key(obs)
    by_money = (
        ' UNION ALL SELECT 3 AS "found_by", "payment".* FROM "payment" '
        'WHERE "currency" = {p} AND "txn_norm" = {p} AND "amount_minor" = {p}'
    ) if key else ""
    rows = sqlcache.select(
        Payment, "stored_by_money" if key else "stored",
        lambda p: (
            f'SELECT 1 AS "found_by", "payment".* FROM "payment" WHERE "source" = {p} AND "source_ref" = {p} '
            f'UNION ALL SELECT 2 AS "found_by", "payment".* FROM "payment_sighting" '
            f'JOIN "payment" ON "payment"."id" = "payment_sighting"."payment_id" '
            f'WHERE "payment_sighting"."source" = {p} AND "payment_sighting"."source_ref" = {p}'
            + by_money.format(p=p)
        ),
        [obs.source, obs.source_ref, obs.source, obs.source_ref, *(key or ())],
    )
    found = {}
    for row in rows:
        found.setdefault(row.found_by, row)
    known = found.get(1) or found.get(2)
    if known is not None:
        return known, None
    return None, found.get(3)


def _money_key(obs: PaymentObservation) -> tuple[str, str, int] | None:
    txn = normalize_txn(obs.transaction_id) or obs.content_key
    if txn is None or obs.amount_minor is None or not obs.currency or not obs.parsed:
        return None
    return obs.currency, txn, obs.amount_minor


def insert_payment(obs: PaymentObservation, now: datetime, **overrides) -> Payment:
    """INSERT the payment row (raises IntegrityError when its report or its money is already stored)."""
    values = _values(obs, now, **overrides)
    payment = Payment(id=sqlcache.insert(Payment, values))
    stored(payment, values)
    return payment


def _values(obs: PaymentObservation, now: datetime, **overrides) -> dict:
    parsed = obs.parsed and obs.amount_minor is not None
    key = _money_key(obs)
    return dict(
        source=obs.source, source_ref=obs.source_ref, transaction_id=obs.transaction_id,
        txn_norm=key[1] if key else None, provider=obs.provider,
        amount_minor=obs.amount_minor, currency=obs.currency, sender_name=obs.sender_name or "",
        sender_phone=obs.sender_phone, note=obs.note or "", received_at=obs.received_at,
        raw=obs.raw or "", parsed=parsed, verified=obs.verified, generic=obs.generic and parsed,
        reading=obs.reading or "", created_at=now, **overrides,
    )


def seen_again(payment: Payment, obs: PaymentObservation, *, actor: str, now: datetime,
               conflict: str | None = None, rematch: bool = True) -> IngestResult:
    """Record `obs` as another sighting of `payment` (the same money); never a second payment.

    A sighting from another source corroborates: a confirmed payment's confidence rises,
    and one still waiting (unmatched, in review) is matched again with that signal
    (unless `rematch` is False: the caller decides what the payment pays).
    """
    independent = obs.source != payment.source and not PaymentSighting.select().where(
        PaymentSighting.payment == payment.id, PaymentSighting.source == obs.source).exists()
    inserted = sqlcache.insert(PaymentSighting, dict(
        payment=payment.id, source=obs.source, source_ref=obs.source_ref, provider=obs.provider,
        amount_minor=obs.amount_minor, currency=obs.currency, received_at=obs.received_at, raw=obs.raw or "",
        verified=obs.verified, corroborates=independent, conflict=conflict, created_at=now,
    ), ignore_conflict=True)
    if inserted is None:  # this very report was recorded meanwhile
        return IngestResult(sqlcache.by_id(Payment, payment.id), created=False, sighting=True)
    changes = {}
    if obs.verified and not payment.verified:
        changes["verified"] = True  # the provider's own report backs a forwarded copy
    if not payment.provider and obs.provider:
        changes["provider"] = obs.provider
    if independent and payment.status == PaymentStatus.CONFIRMED:
        changes["confidence"] = min(100, (payment.confidence or 0) + CORROBORATION)
        changes["evidence"] = list(payment.evidence or []) + [
            {"signal": "corroborated", "points": CORROBORATION, "detail": f"also seen at {obs.source}"}]
    if changes:
        sqlcache.update(Payment, changes, {"id": payment.id})
    audit.record("payment.seen_again", f"payment:{payment.id}", actor=actor, source=obs.source,
                 source_ref=obs.source_ref, corroborates=independent, conflict=conflict)
    decision = None
    if rematch and independent and payment.status in (PaymentStatus.UNMATCHED, PaymentStatus.REVIEW) \
            and payment.parsed:
        decision = _rematch(sqlcache.by_id(Payment, payment.id), now)
    return IngestResult(sqlcache.by_id(Payment, payment.id), created=False, decision=decision, sighting=True)


def _payment_by_ref(source: str, source_ref: str) -> Payment | None:
    found = sqlcache.select(
        Payment, "by_ref",
        lambda p: f'SELECT * FROM "payment" WHERE "source" = {p} AND "source_ref" = {p}', [source, source_ref],
    )
    return next(iter(found), None)


GENERIC_HOLD = "read by the fallback reader, not a provider rule: a person must check it"


def _doubt(payment: Payment, now: datetime) -> str | None:
    """Why this new payment may not be confirmed automatically (see _hold), after applying a
    reversal of its transaction reported before it arrived."""
    if not payment.txn_norm:
        return GENERIC_HOLD if payment.generic else None
    reversal = next(iter(sqlcache.select(
        Reversal, "waiting",
        lambda p: f'SELECT * FROM "reversal" WHERE "txn_norm" = {p} AND "applied_at" IS NULL ORDER BY "id" LIMIT 1',
        [payment.txn_norm])), None)
    if reversal is not None and reversal.currency in (None, payment.currency):
        flush_payment(payment)
        Reversal.update(payment=payment.id, applied_at=now).where(Reversal.id == reversal.id).execute()
        reason = f"{reversal.reason} (reported before the payment arrived)"
        audit.record("payment.reversed", f"payment:{payment.id}", actor=f"source:{reversal.source}",
                     transaction_id=reversal.transaction_id, reason=reason, status_before="new")
        webhooks.payment_event("payment.reversed", payment)
        outbox.admin_alert(f"payment:{payment.id}:reversed",
                           f"Paywatch: payment {payment.id} ({payment.source}, {payment.transaction_id}) "
                           f"arrived after its reversal was reported; it is in review")
        return reason
    return _disagreement(payment) or (GENERIC_HOLD if payment.generic else None)


def _hold(payment: Payment) -> str | None:
    """Why a stored payment must not be confirmed automatically: it was reversed at the
    provider, its transaction id was seen with another amount, or the fallback reader read it;
    None otherwise."""
    if (payment.reason or "").startswith(REVERSED_REASON):
        return payment.reason
    return (_disagreement(payment) if payment.txn_norm else None) or (GENERIC_HOLD if payment.generic else None)


def _disagreement(payment: Payment) -> str | None:
    other = next(iter(sqlcache.select(
        Payment, "same_txn",
        lambda p: (f'SELECT "id", "amount_minor" FROM "payment" WHERE "currency" = {p} AND "txn_norm" = {p} '
                   f'AND "id" <> {p} LIMIT 1'),
        [payment.currency, payment.txn_norm, payment.id])), None)
    if other is None:
        return None
    return (f"transaction id {payment.transaction_id} was also seen on payment {other.id} "
            f"for another amount ({other.amount_minor} minor units)")


# ---------------------------------------------------------------- matching


def _match(payment: Payment, now: datetime, *, fresh: bool = False, hold: str | None = None,
           ahead: Lookahead | None = None) -> matching.Decision:
    """Decide and apply; a lost race for a request is decided again on fresh state, once.

    `fresh`: the payment was just stored, so it has no rejected pairs, candidate rows or
    sightings. `hold`: a reason it must not be confirmed automatically (review instead).
    `ahead`: its batch's reads (the second attempt reads afresh).
    """
    values = options.current()
    settings = options.match_settings(values)
    for attempt in range(2):
        decision = _decide(payment, settings, now, fresh=fresh, ahead=None if attempt else ahead)
        if hold and decision.action == "confirm":
            decision = replace(decision, action="review", reason=hold)
        if decision.action != "confirm":
            break
        if _settle(payment, decision.candidate, actor="system", now=now, fresh=fresh):
            return decision
    else:
        decision = matching.Decision("review", decision.candidate, decision.candidates,
                                     "the request changed while this payment was matched", decision.late)
    if hold and decision.action == "unmatched":
        decision = replace(decision, reason=f"{hold}; {decision.reason}")
        if payment.generic:  # a generic reading is always shown to a person, even with no candidate
            decision = replace(decision, action="review")
    elif payment.generic and decision.action == "review" and GENERIC_HOLD not in (decision.reason or ""):
        decision = replace(decision, reason=f"{GENERIC_HOLD}; {decision.reason}")
    if decision.action == "review":
        _to_review(payment, decision, now, fresh=fresh)
    else:
        _to_unmatched(payment, decision, values)
    return decision


def _installment(payment: Payment, now: datetime, hold: str | None,
                 ahead: Lookahead | None = None) -> matching.Decision | None:
    """A new payment toward an installment request (installments.decide), applied; None when
    no installment request names its payer."""
    settings = options.match_settings(options.current())
    for attempt in range(2):
        rows = ahead.installment_rows(payment) if ahead and not attempt else None
        decision = installments.decide(payment, settings, hold, rows)
        if decision is None or decision.action != "confirm":
            break
        if _settle(payment, decision.candidate, actor="system", now=now, fresh=True):
            return decision
    else:
        decision = matching.Decision("review", decision.candidate, decision.candidates,
                                     "the request changed while this installment was applied")
    if decision is not None:
        _to_review(payment, decision, now, fresh=True)
    return decision


def _rematch(payment: Payment, now: datetime) -> matching.Decision | None:
    """Match a waiting payment again (a new request or a corroboration appeared); an unmatched
    one that stays unmatched is left as it was (no second alert). Returns what was decided."""
    values = options.current()
    decision = _decide(payment, options.match_settings(values), now)
    if decision.action == "unmatched" and payment.status == PaymentStatus.UNMATCHED:
        return None
    return _match(payment, now, hold=_hold(payment))


def _decide(payment: Payment, settings: matching.MatchSettings, now: datetime, *, fresh: bool = False,
            ahead: Lookahead | None = None) -> matching.Decision:
    corroborated = None
    rejected: frozenset = frozenset()
    if not fresh:
        rejected = frozenset(
            r.request_id for r in RejectedPair.select(RejectedPair.request).where(RejectedPair.payment == payment.id))
        corroborated = (PaymentSighting.select(PaymentSighting.source)
                        .where(PaymentSighting.payment == payment.id, PaymentSighting.corroborates == True)  # noqa: E712
                        .scalar())
    facts = payment_facts(payment, corroborated_by=corroborated)
    requests = candidate_requests(facts, settings, ahead.requests(facts) if ahead else None)
    taught = ()
    if requests:
        taught = ahead.learned(facts, settings.names) if ahead else None
        if taught is None:
            taught = learned.for_payment(facts, settings.names)
    return matching.match(facts, requests, rejected_request_ids=rejected, settings=settings, now=now,
                          learned=taught)


def _to_review(payment: Payment, decision: matching.Decision, now: datetime, *, fresh: bool = False) -> None:
    """Payment → review with its candidates (one multi-row INSERT), and the candidate requests
    still pending → review (one UPDATE for the set)."""
    best = decision.candidate
    changes = {
        "status": PaymentStatus.REVIEW, "request": best.request_id if best else None,
        "confidence": best.score if best else None, "evidence": _evidence(best) if best else [],
        "late": decision.late, "reason": decision.reason,
    }
    write_payment(payment, changes)
    stored(payment, changes)
    if not fresh:
        _clear_candidates(payment.id)
    sqlcache.insert_many(MatchCandidate, [{
        "payment": payment.id, "request": candidate.request_id, "score": candidate.score,
        "evidence": _evidence(candidate), "late": candidate.late, "mismatch": candidate.mismatch,
        "created_at": now,
    } for candidate in decision.candidates])
    waiting = sorted({c.request_id for c in decision.candidates if c.mismatch is None})
    if waiting:
        flipped = sqlcache.update_returning_ids(PaymentRequest, {"status": RequestStatus.REVIEW},
                                                {"id": tuple(waiting), "status": RequestStatus.PENDING})
        for request_id in flipped:
            webhooks.request_event("request.in_review", request_id, key=f":payment:{payment.id}")
    audit.record("payment.review", f"payment:{payment.id}", actor="system", reason=decision.reason,
                 late=decision.late, candidates=[c.reference for c in decision.candidates])


def _to_unmatched(payment: Payment, decision: matching.Decision, values: dict) -> None:
    changes = {
        "status": PaymentStatus.UNMATCHED, "reason": decision.reason,
        "evidence": [{"signal": "candidate", "points": c.score, "detail": f"{c.reference}: {c.score}"}
                     for c in decision.candidates],
    }
    write_payment(payment, changes)
    stored(payment, changes)
    audit.record("payment.unmatched", f"payment:{payment.id}", actor="system", reason=decision.reason)
    outbox.payment_unmatched(payment, values.get("admin_phones") or [])
    webhooks.payment_event("payment.unmatched", payment)


# ---------------------------------------------------------------- money before its request

EARLIER_LIMIT = 20


def match_earlier_payments(request: PaymentRequest, now: datetime) -> int:
    """A new request looks for unmatched payments it may be owed (money that arrived first).

    Those with its amount and currency received inside its window (from created_at minus
    the clock skew) are matched again with the usual rules: confirmed only when the
    evidence is decisive and unique, else to review. Returns how many changed.
    """
    settings = options.match_settings(options.current())
    since = request.created_at - settings.skew
    waiting = (Payment.select().where(
        Payment.amount_minor == request.amount_minor, Payment.currency == request.currency,
        Payment.status == PaymentStatus.UNMATCHED, Payment.received_at >= since,
        Payment.received_at <= now + timedelta(minutes=1))
        .order_by(Payment.received_at, Payment.id).limit(EARLIER_LIMIT))
    changed = 0
    for payment in waiting:
        with db.transaction():
            if _rematch(payment, now) is not None:
                changed += 1
    return changed
