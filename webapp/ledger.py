"""Every state change of requests and payments.

Each public function is one transaction holding the change (a compare-and-set:
UPDATE … WHERE status IN (allowed) and a row count check), its audit event and its
outbox rows; jobs are enqueued only after the commit. Running one twice, or two
at once in two processes, leaves exactly one winner: the loser sees the row
count 0 and gets a LedgerError (staff actions) or a fresh decision (matching).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peewee import IntegrityError

from webapp import audit, db, matching, notify, options, sqlcache, vouchers
from webapp.lookup import candidate_requests, payment_facts
from webapp.models import (
    AmountReservation,
    MatchCandidate,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RejectedPair,
    RequestStatus,
    utcnow,
)
from webapp.references import new_reference, normalize

PAYABLE = (RequestStatus.PENDING, RequestStatus.REVIEW, RequestStatus.EXPIRED)
DECIDABLE = (PaymentStatus.UNMATCHED, PaymentStatus.REVIEW, PaymentStatus.REJECTED)


class LedgerError(Exception):
    """A change that cannot be made; `code` is stable for the API, the message says why."""

    def __init__(self, code: str, message: str, status: int = 409, **details):
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details


@dataclass(frozen=True)
class NewRequest:
    amount_minor: int
    currency: str
    customer_name: str = ""
    customer_phone: str | None = None  # E.164
    agent_id: int | None = None
    lead_id: int | None = None
    reference: str | None = None
    expires_in: timedelta | None = None
    voucher_pool: str | None = None
    source: str = "api"
    external_id: str | None = None
    meta: dict = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True)
class PaymentObservation:
    """Money seen at a source. `amount_minor` None: evidence no rule could read."""

    source: str
    source_ref: str
    amount_minor: int | None
    currency: str | None
    received_at: datetime
    sender_name: str = ""
    sender_phone: str | None = None
    note: str = ""
    transaction_id: str | None = None
    raw: str = ""
    parsed: bool = True
    verified: bool = True


@dataclass
class IngestResult:
    payment: Payment
    created: bool
    decision: matching.Decision | None = None


# ---------------------------------------------------------------- requests


def create_request(new: NewRequest, *, actor: str = "system", now: datetime | None = None) -> PaymentRequest:
    """Create a pending request (and its pending-alert outbox rows).

    Raises LedgerError: reference_taken (409), no_unique_amount (409).
    """
    now = now or utcnow()
    values = options.current()
    ttl = new.expires_in or timedelta(minutes=values["request_ttl_minutes"])
    with db.transaction():
        request = _insert_request(new, now, now + ttl)
        amount = new.amount_minor
        if values["unique_amounts"]:
            amount = _reserve_unique_amount(request, values["unique_amount_max_steps"])
        audit.record(
            "request.created", f"request:{request.reference}", actor=actor,
            amount_minor=amount, requested_minor=new.amount_minor, currency=new.currency,
            expires_at=request.expires_at.isoformat(), source=new.source,
        )
        notify.request_created(request, timedelta(seconds=values["pending_alert_seconds"]))
    return sqlcache.by_id(PaymentRequest, request.id)


def _insert_request(new: NewRequest, now: datetime, expires_at: datetime) -> PaymentRequest:
    fields = dict(
        amount_minor=new.amount_minor, requested_minor=new.amount_minor, currency=new.currency,
        customer_name=new.customer_name, customer_phone=new.customer_phone, agent=new.agent_id,
        lead=new.lead_id, source=new.source, external_id=new.external_id, created_at=now,
        expires_at=expires_at, voucher_pool=new.voucher_pool, meta=new.meta,
        idempotency_key=new.idempotency_key,
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


def _release_amount(request_id: int) -> None:
    sqlcache.delete(AmountReservation, {"request": request_id})


def _end(request: PaymentRequest, status: str, allowed: tuple[str, ...], now: datetime) -> bool:
    changed = (
        PaymentRequest.update(status=status, ended_at=now)
        .where(PaymentRequest.id == request.id, PaymentRequest.status.in_(allowed))
        .execute()
    )
    if changed:
        _release_amount(request.id)
    return bool(changed)


def cancel_request(reference: str, *, actor: str, reason: str = "", now: datetime | None = None) -> PaymentRequest:
    """pending → cancelled. A request waiting on review must be decided first."""
    now = now or utcnow()
    with db.transaction():
        request = find_request(reference)
        if not _end(request, RequestStatus.CANCELLED, (RequestStatus.PENDING,), now):
            raise LedgerError("invalid_state", f"{reference} is {_status_of(request)}; only a pending request can be cancelled",
                              status_now=_status_of(request))
        audit.record("request.cancelled", f"request:{reference}", actor=actor, reason=reason)
        notify.request_ended(request, RequestStatus.CANCELLED)
    return sqlcache.by_id(PaymentRequest, request.id)


def expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire every pending request past expires_at (the 30-s sweep). Returns how many."""
    now = now or utcnow()
    expired = 0
    while True:
        due = list(
            PaymentRequest.select()
            .where(PaymentRequest.status == RequestStatus.PENDING, PaymentRequest.expires_at <= now)
            .order_by(PaymentRequest.expires_at)
            .limit(batch)
        )
        for request in due:
            with db.transaction():
                if _end(request, RequestStatus.EXPIRED, (RequestStatus.PENDING,), now):
                    audit.record("request.expired", f"request:{request.reference}", actor="system",
                                 expires_at=request.expires_at.isoformat())
                    notify.request_expired(request)
                    expired += 1
        if len(due) < batch:
            return expired


def find_request(reference: str) -> PaymentRequest:
    request = PaymentRequest.get_or_none(PaymentRequest.reference == reference)
    if request is None:
        request = PaymentRequest.get_or_none(PaymentRequest.reference == _canonical(reference))
    if request is None:
        raise LedgerError("not_found", f"no request with reference {reference}", status=404)
    return request


def _canonical(reference: str) -> str:
    key = normalize(reference)
    return f"{key[:2]}-{key[2:]}" if len(key) > 2 else key


def _status_of(request: PaymentRequest) -> str:
    return sqlcache.by_id(PaymentRequest, request.id).status


# ---------------------------------------------------------------- payments


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


def _evidence(candidate: matching.Candidate) -> list[dict[str, Any]]:
    return [{"signal": e.signal, "points": e.points, "detail": e.detail} for e in candidate.evidence]


def _settle(payment: Payment, candidate: matching.Candidate, *, actor: str, now: datetime,
            verified_by: int | None = None, how: str = "automatic", fresh: bool = False,
            announce: bool = True) -> bool:
    """request → paid and payment → confirmed, both or neither. False when either moved meanwhile."""
    try:
        with db.transaction():
            # Payment row first, then the request: every path takes its locks in this
            # order, so two workers deciding one payment queue instead of deadlocking.
            confirmed = sqlcache.update(
                Payment,
                {"status": PaymentStatus.CONFIRMED, "request": candidate.request_id, "confidence": candidate.score,
                 "evidence": _evidence(candidate), "late": candidate.late, "verified_by": verified_by,
                 "verified_at": now, "reason": None},
                {"id": payment.id, "status": DECIDABLE},
            )
            if confirmed != 1:
                raise _Lost()
            paid = sqlcache.update(
                PaymentRequest, {"status": RequestStatus.PAID, "paid_at": now, "ended_at": now},
                {"id": candidate.request_id, "status": PAYABLE},
            )
            if paid != 1:
                raise _Lost()
    except _Lost:
        return False
    request = sqlcache.by_id(PaymentRequest, candidate.request_id)
    _release_amount(request.id)
    if not fresh:
        _release_requests(_clear_candidates(payment.id) - {request.id})
    audit.record("payment.confirmed", f"payment:{payment.id}", actor=actor, request=request.reference,
                 confidence=candidate.score, how=how, late=candidate.late)
    audit.record("request.paid", f"request:{request.reference}", actor=actor, payment=payment.id,
                 confidence=candidate.score, how=how)
    if announce:
        notify.request_paid(request, payment)
        vouchers.on_paid(request)  # the code goes out in that confirmation
    return True


class _Lost(Exception):
    """A compare-and-set found the row changed: roll back this attempt."""


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


def _clear_candidates(payment_id: int) -> set[int]:
    """Drop a payment's candidate rows; returns the request ids they named."""
    ids = {c.request_id for c in MatchCandidate.select(MatchCandidate.request).where(MatchCandidate.payment == payment_id)}
    MatchCandidate.delete().where(MatchCandidate.payment == payment_id).execute()
    return ids


def _release_requests(request_ids: set[int]) -> None:
    """review → pending for requests no payment in review still names."""
    for request_id in sorted(request_ids):  # one lock order for every caller
        still_named = (
            MatchCandidate.select()
            .join(Payment)
            .where(MatchCandidate.request == request_id, Payment.status == PaymentStatus.REVIEW,
                   MatchCandidate.mismatch.is_null())
            .exists()
        )
        if not still_named:
            PaymentRequest.update(status=RequestStatus.PENDING).where(
                PaymentRequest.id == request_id, PaymentRequest.status == RequestStatus.REVIEW
            ).execute()


# ---------------------------------------------------------------- staff decisions


def find_payment(payment_id: int) -> Payment:
    payment = Payment.get_or_none(Payment.id == payment_id)
    if payment is None:
        raise LedgerError("not_found", f"no payment with id {payment_id}", status=404)
    return payment


def _staff_candidate(payment: Payment, request: PaymentRequest) -> matching.Candidate:
    """The candidate row staff act on, or a fresh score for a payment linked by hand."""
    if payment.amount_minor != request.amount_minor or payment.currency != request.currency:
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
        if not _settle(payment, candidate, actor=actor, now=now, verified_by=user_id, how=how):
            raise LedgerError("conflict", f"payment {payment_id} or {request.reference} changed meanwhile; reload")
    return sqlcache.by_id(Payment, payment_id)


def link(payment_id: int, reference: str, *, actor: str, user_id: int | None = None,
         now: datetime | None = None) -> Payment:
    """Link an unmatched (or rejected) payment to a request by hand."""
    return confirm(payment_id, reference, actor=actor, user_id=user_id, now=now, how="linked")


def reject(payment_id: int, reference: str, reason: str, *, actor: str, now: datetime | None = None) -> Payment:
    """Staff say this payment does not pay this request: the pair is never suggested again.

    The request goes back to pending (its customer is told why); the payment stays in
    review with its other candidates, or becomes rejected when none is left.
    """
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("reason_required", "a rejection needs a reason", status=422)
    now = now or utcnow()
    with db.transaction():
        payment, request = find_payment(payment_id), find_request(reference)
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
                     reason=reason)
        audit.record("request.payment_rejected", f"request:{request.reference}", actor=actor,
                     payment=payment.id, reason=reason)
        notify.payment_rejected(request, payment, reason)
    return sqlcache.by_id(Payment, payment_id)


# ---------------------------------------------------------------- requests a source reports


@dataclass(frozen=True)
class RequestObservation:
    """What a source (portal row, gateway status) says about one request, keyed by its external id."""

    source: str  # the Source's name
    external_id: str
    status: str  # pending / paid / failed / expired / cancelled (already mapped from the source's words)
    amount_minor: int | None = None
    currency: str | None = None
    customer_name: str = ""
    customer_phone: str | None = None  # E.164
    agent_code: str | None = None
    reference: str | None = None
    created_at: datetime | None = None
    transaction_id: str | None = None
    raw: str = ""


@dataclass
class ObserveResult:
    request: PaymentRequest | None
    change: str  # "created", "paid", "ended", "unchanged", "ignored"


ENDINGS = {"failed": RequestStatus.FAILED, "expired": RequestStatus.EXPIRED, "cancelled": RequestStatus.CANCELLED}


def observe_request(obs: RequestObservation, *, now: datetime | None = None) -> ObserveResult:
    """Apply what a source reports about a request; reading the same thing twice changes nothing.

    A new pending one creates the request (agent by code, lead by phone under that agent,
    both created when new) and its pending alert; "paid" records the payment at that
    source and pays the request (no matching: the source itself says so); an ending
    status ends it. A request first seen already ended is recorded, not alerted.
    """
    now = now or utcnow()
    with db.transaction():
        request = PaymentRequest.get_or_none(PaymentRequest.source == obs.source,
                                             PaymentRequest.external_id == obs.external_id)
        if request is None:
            if obs.amount_minor is None or not obs.currency:
                return ObserveResult(None, "ignored")
            request = _observed_request(obs, now)
            change = "created"
        else:
            change = "unchanged"
        if obs.status == "paid" and request.status in PAYABLE:
            # History read for the first time (already paid at the source) is recorded
            # quietly: nobody wants a confirmation for last month's payment.
            _observed_payment(request, obs, now, announce=change != "created")
            change = "paid"
        elif obs.status in ENDINGS and request.status in RequestStatus.OPEN:
            if _end(request, ENDINGS[obs.status], RequestStatus.OPEN, now):
                audit.record(f"request.{ENDINGS[obs.status]}", f"request:{request.reference}", actor=f"source:{obs.source}",
                             reported=obs.status)
                notify.request_ended(request, ENDINGS[obs.status])
                change = "ended" if change == "unchanged" else change
    return ObserveResult(sqlcache.by_id(PaymentRequest, request.id), change)


def _observed_request(obs: RequestObservation, now: datetime) -> PaymentRequest:
    from webapp.models import Agent, Lead

    agent = lead = None
    if obs.agent_code:
        agent = Agent.get_or_none(Agent.code == obs.agent_code)
        if agent is None:
            agent = Agent.create(name=obs.agent_code, code=obs.agent_code)
            audit.record("agent.created", f"agent:{obs.agent_code}", actor=f"source:{obs.source}",
                         reason="first seen at the source")
    if obs.customer_phone:
        lead = Lead.get_or_none(Lead.phone == obs.customer_phone, Lead.agent == (agent.id if agent else None))
        if lead is None:
            lead = Lead.create(name=obs.customer_name or "", phone=obs.customer_phone, agent=agent.id if agent else None)
    created = obs.created_at or now
    pending = obs.status == "pending"
    new = NewRequest(
        amount_minor=obs.amount_minor, currency=obs.currency, customer_name=obs.customer_name,
        customer_phone=obs.customer_phone, agent_id=agent.id if agent else None, lead_id=lead.id if lead else None,
        reference=None, source=obs.source, external_id=obs.external_id,
        meta={"source_reference": obs.reference} if obs.reference else {},
    )
    ttl = timedelta(minutes=options.current()["request_ttl_minutes"])
    request = _insert_request(new, created, max(created, now) + ttl if pending else created + ttl)
    audit.record("request.created", f"request:{request.reference}", actor=f"source:{obs.source}",
                 external_id=obs.external_id, amount_minor=obs.amount_minor, currency=obs.currency,
                 status_at_source=obs.status)
    if pending:
        notify.request_created(request, timedelta(seconds=options.current()["pending_alert_seconds"]))
    return request


def _observed_payment(request: PaymentRequest, obs: RequestObservation, now: datetime, *, announce: bool) -> None:
    payment_id = sqlcache.insert(Payment, dict(
        source=obs.source, source_ref=f"{obs.external_id}:paid", transaction_id=obs.transaction_id,
        amount_minor=obs.amount_minor if obs.amount_minor is not None else request.amount_minor,
        currency=obs.currency or request.currency, sender_name=obs.customer_name or "",
        sender_phone=obs.customer_phone, received_at=now, raw=obs.raw or "", created_at=now,
    ))
    payment = sqlcache.by_id(Payment, payment_id)
    audit.record("payment.received", f"payment:{payment_id}", actor=f"source:{obs.source}", source=obs.source,
                 source_ref=payment.source_ref, amount_minor=payment.amount_minor, currency=payment.currency)
    evidence = (matching.Evidence("source", 100, f"{obs.source} reports {obs.external_id} paid"),)
    candidate = matching.Candidate(request.id, request.reference, 100, evidence)
    if not _settle(payment, candidate, actor=f"source:{obs.source}", now=now, how="reported by source", fresh=True,
                   announce=announce):
        raise LedgerError("conflict", f"{request.reference} changed while {obs.source} reported it paid")


# ---------------------------------------------------------------- reversals (mailbox, issue 5)

REVERSED_REASON = "reversed at the provider"


def flag_reversal(source: str, transaction_id: str, *, reason: str = REVERSED_REASON,
                  actor: str = "system") -> Payment | None:
    """A provider pulled back transaction `transaction_id` seen at `source`: its payment goes to review.

    A confirmed payment goes to review with reason "reversed at the provider" and its
    request is flagged "payment_reversed" and back in review with that payment as its
    candidate, so staff confirm (money back) or reject (request reopened); an
    unmatched one goes to review too; one already in review or rejected keeps its
    status and gets the reason. Returns the payment, or None when no payment has that
    transaction id at that source. Idempotent: a second report changes nothing.
    """
    full = reason if reason.startswith(REVERSED_REASON) else f"{REVERSED_REASON}: {reason}"
    with db.transaction():
        payment = (Payment.select().where(Payment.source == source, Payment.transaction_id == transaction_id)
                   .order_by(Payment.id).first())
        if payment is None:
            return None
        if (payment.reason or "").startswith(REVERSED_REASON):
            return payment
        status = PaymentStatus.REVIEW if payment.status in (PaymentStatus.CONFIRMED, PaymentStatus.UNMATCHED) \
            else payment.status
        changed = Payment.update(status=status, reason=full).where(
            Payment.id == payment.id, Payment.status == payment.status).execute()
        if changed != 1:
            raise LedgerError("conflict", f"payment {payment.id} changed while its reversal was recorded; retry")
        if payment.status == PaymentStatus.CONFIRMED and payment.request_id:
            # The pair goes back to staff as an ordinary review: confirm keeps the request
            # paid (the money came back), reject reopens it and tells the customer why.
            PaymentRequest.update(flag="payment_reversed", status=RequestStatus.REVIEW).where(
                PaymentRequest.id == payment.request_id, PaymentRequest.status == RequestStatus.PAID).execute()
            evidence = list(payment.evidence or []) + [{"signal": "reversal", "points": 0, "detail": full}]
            sqlcache.insert(MatchCandidate, {"payment": payment.id, "request": payment.request_id,
                                             "score": payment.confidence or 0, "evidence": evidence,
                                             "late": False, "mismatch": None, "created_at": utcnow()})
        audit.record("payment.reversed", f"payment:{payment.id}", actor=actor, transaction_id=transaction_id,
                     status_before=payment.status, status=status, reason=full)
        notify.admin_alert(f"payment:{payment.id}:reversed",
                           f"Paywatch: payment {payment.id} ({source}, {transaction_id}) was {full}; "
                           "it is in review")
    return sqlcache.by_id(Payment, payment.id)
