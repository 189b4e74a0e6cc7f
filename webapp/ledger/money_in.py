"""Payments: the one door for money seen anywhere, and what matching decides for it."""
from __future__ import annotations

from datetime import datetime

from peewee import IntegrityError

from webapp import audit, db, matching, notify, options, sqlcache
from webapp.ledger.core import IngestResult, PaymentObservation, _clear_candidates, _evidence, _settle
from webapp.lookup import candidate_requests, payment_facts
from webapp.models import MatchCandidate, Payment, PaymentRequest, PaymentStatus, RejectedPair, RequestStatus, utcnow

def ingest_payment(obs: PaymentObservation, *, actor: str = "system", now: datetime | None = None) -> IngestResult:
    """The one door for money seen anywhere. Idempotent on (source, source_ref)."""
    now = now or utcnow()
    try:
        with db.transaction():
            existing = _payment_by_ref(obs.source, obs.source_ref)
            if existing is not None:
                return IngestResult(existing, created=False)
            values = dict(
                source=obs.source, source_ref=obs.source_ref, transaction_id=obs.transaction_id,
                amount_minor=obs.amount_minor, currency=obs.currency, sender_name=obs.sender_name or "",
                sender_phone=obs.sender_phone, note=obs.note or "", received_at=obs.received_at,
                raw=obs.raw or "", parsed=obs.parsed and obs.amount_minor is not None,
                verified=obs.verified, created_at=now,
            )
            payment = Payment(id=sqlcache.insert(Payment, values), **values)
            audit.record("payment.received", f"payment:{payment.id}", actor=actor, source=obs.source,
                         source_ref=obs.source_ref, amount_minor=obs.amount_minor, currency=obs.currency)
            if not payment.parsed:
                audit.record("payment.unreadable", f"payment:{payment.id}", actor=actor,
                             reason="kept as evidence: no rule could read the amount")
                return IngestResult(payment, created=True)
            decision = _match(payment, now, fresh=True)
    except IntegrityError:
        # Another process stored the same (source, source_ref) between our check and insert.
        existing = _payment_by_ref(obs.source, obs.source_ref)
        if existing is None:
            raise
        return IngestResult(existing, created=False)
    return IngestResult(sqlcache.by_id(Payment, payment.id), created=True, decision=decision)

def ingest_payments(observations: list[PaymentObservation], *, actor: str = "system",
                    now: datetime | None = None) -> list[IngestResult]:
    """ingest_payment() for a batch read by one source pass, in one transaction.

    Each payment still runs in its own savepoint, so a duplicate or a lost race
    affects only itself; the batch commits once, which is what makes a source job
    that reads many payments at a time several times cheaper per payment. Keep
    batches to a few hundred: the write lock is held until the commit.
    """
    with db.transaction():
        return [ingest_payment(obs, actor=actor, now=now) for obs in observations]

def _payment_by_ref(source: str, source_ref: str) -> Payment | None:
    found = sqlcache.select(
        Payment, "by_ref",
        lambda p: f'SELECT * FROM "payment" WHERE "source" = {p} AND "source_ref" = {p}', [source, source_ref],
    )
    return next(iter(found), None)

def _match(payment: Payment, now: datetime, *, fresh: bool = False) -> matching.Decision:
    """Decide and apply; a lost race for a request is decided again on fresh state, once.

    `fresh`: the payment was just stored, so it has no rejected pairs and no candidate rows.
    """
    values = options.current()
    settings = options.match_settings(values)
    for attempt in range(2):
        decision = _decide(payment, settings, now, fresh=fresh)
        if decision.action != "confirm":
            break
        if _settle(payment, decision.candidate, actor="system", now=now, fresh=fresh):
            return decision
    else:
        decision = matching.Decision("review", decision.candidate, decision.candidates,
                                     "the request changed while this payment was matched", decision.late)
    if decision.action == "review":
        _to_review(payment, decision, now, fresh=fresh)
    else:
        _to_unmatched(payment, decision, values)
    return decision

def _decide(payment: Payment, settings: matching.MatchSettings, now: datetime, *, fresh: bool = False) -> matching.Decision:
    facts = payment_facts(payment)
    rejected = frozenset() if fresh else frozenset(
        r.request_id for r in RejectedPair.select(RejectedPair.request).where(RejectedPair.payment == payment.id))
    requests = candidate_requests(facts, settings)
    return matching.match(facts, requests, rejected_request_ids=rejected, settings=settings, now=now)

def _to_review(payment: Payment, decision: matching.Decision, now: datetime, *, fresh: bool = False) -> None:
    best = decision.candidate
    sqlcache.update(Payment, {
        "status": PaymentStatus.REVIEW, "request": best.request_id if best else None,
        "confidence": best.score if best else None, "evidence": _evidence(best) if best else [],
        "late": decision.late, "reason": decision.reason,
    }, {"id": payment.id})
    if not fresh:
        _clear_candidates(payment.id)
    for candidate in decision.candidates:
        sqlcache.insert(MatchCandidate, {
            "payment": payment.id, "request": candidate.request_id, "score": candidate.score,
            "evidence": _evidence(candidate), "late": candidate.late, "mismatch": candidate.mismatch,
            "created_at": now,
        })
    waiting = [c.request_id for c in decision.candidates if c.mismatch is None]
    # One statement per id: with "id IN (…) AND status = ?" SQLite may walk the status
    # index (every pending request) instead of the primary key (10 ms at 100k requests).
    for request_id in sorted(waiting):
        sqlcache.update(PaymentRequest, {"status": RequestStatus.REVIEW},
                        {"id": request_id, "status": RequestStatus.PENDING})
    audit.record("payment.review", f"payment:{payment.id}", actor="system", reason=decision.reason,
                 late=decision.late, candidates=[c.reference for c in decision.candidates])

def _to_unmatched(payment: Payment, decision: matching.Decision, values: dict) -> None:
    sqlcache.update(Payment, {
        "status": PaymentStatus.UNMATCHED, "reason": decision.reason,
        "evidence": [{"signal": "candidate", "points": c.score, "detail": f"{c.reference}: {c.score}"}
                     for c in decision.candidates],
    }, {"id": payment.id})
    audit.record("payment.unmatched", f"payment:{payment.id}", actor="system", reason=decision.reason)
    notify.payment_unmatched(payment, values.get("admin_phones") or [])
