"""What sources report about requests (portal rows, gateway statuses), and reversals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import IntegrityError

from webapp.domain import audit, matching, options, outbox, webhooks
from webapp.domain.ledger.core import (
    DECIDABLE,
    PAYABLE,
    REVERSED_REASON,
    LedgerError,
    NewRequest,
    PaymentObservation,
    _end,
    _settle,
    normalize_txn,
)
from webapp.domain.ledger.money_in import find_stored, insert_payment, match_earlier_payments, seen_again
from webapp.domain.ledger.owed import _insert_request
from webapp.storage import db, sqlcache
from webapp.storage.models import (
    MatchCandidate,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RequestStatus,
    Reversal,
    utcnow,
)


@dataclass(frozen=True)
class RequestObservation:
    """What a source (portal row, gateway status) says about one request, keyed by its external id."""

    source: str  # the Source's name
    external_id: str
    status: str  # pending / paid / failed / expired / cancelled (already mapped from the source's words)
    amount_minor: int | None = None  # for "paid": what the source says was paid; None when it cannot say exactly
    currency: str | None = None
    customer_name: str = ""
    customer_phone: str | None = None  # E.164
    agent_code: str | None = None
    reference: str | None = None
    created_at: datetime | None = None
    transaction_id: str | None = None
    raw: str = ""
    paid_at: datetime | None = None  # when the money moved, by the source's clock, when it says
    amount_text: str | None = None  # the amount as the source wrote it (shown when it is not exact)
    provider: str | None = None  # whose transaction id `transaction_id` is
    reporter: str | None = None  # the audit actor when not the source itself (a billing database)


@dataclass
class ObserveResult:
    request: PaymentRequest | None
    change: str  # "created", "paid", "ended", "unchanged", "ignored", "review" (doubtful payment)


ENDINGS = {"failed": RequestStatus.FAILED, "expired": RequestStatus.EXPIRED, "cancelled": RequestStatus.CANCELLED}


def observe_request(obs: RequestObservation, *, now: datetime | None = None) -> ObserveResult:
    """Apply what a source reports about a request; reading the same thing twice changes nothing.

    A new pending one creates the request (agent by code, lead by phone under that agent,
    both created when new) and its pending alert; "paid" records the payment at that
    source and pays the request (no matching: the source itself says so) — unless the
    amount is not exactly what was asked, or the money moved after the request expired:
    then the payment goes to review with the reason. An ending status ends the request.
    A request first seen already ended is recorded, not alerted.

    Two reports of one transaction at once (a gateway poll and its callback) leave one
    payment: the loser of the insert race reads the winner's row and changes nothing.
    """
    now = now or utcnow()
    for attempt in (1, 2):
        try:
            return _observe(obs, now)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _observe(obs: RequestObservation, now: datetime) -> ObserveResult:
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
            outcome = _observed_paid(request, obs, now, first_sight=change == "created")
            change = outcome if change == "unchanged" or outcome == "paid" else change
        elif obs.status in ENDINGS and request.status in RequestStatus.OPEN:
            if _end(request, ENDINGS[obs.status], RequestStatus.OPEN, now):
                audit.record(f"request.{ENDINGS[obs.status]}", f"request:{request.reference}",
                             actor=obs.reporter or f"source:{obs.source}",
                             reported=obs.status)
                outbox.request_ended(request, ENDINGS[obs.status])
                webhooks.request_event(f"request.{ENDINGS[obs.status]}", request)
                change = "ended" if change == "unchanged" else change
    if change == "created" and request.status == RequestStatus.PENDING:
        match_earlier_payments(request, now)
    return ObserveResult(sqlcache.by_id(PaymentRequest, request.id), change)


def _observed_request(obs: RequestObservation, now: datetime) -> PaymentRequest:
    from webapp.storage.models import Agent, Lead

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
    if pending:  # history (already ended at the source) is recorded quietly: no alert, no webhook
        outbox.request_created(request, timedelta(seconds=options.current()["pending_alert_seconds"]))
        webhooks.request_event("request.created", request)
    return request


def _observed_paid(request: PaymentRequest, obs: RequestObservation, now: datetime, *, first_sight: bool) -> str:
    """The source says `request` is paid: pay it with that payment, or send the payment to review.

    Returns "paid", "review" (amount not exact, late money, or the transaction already
    pays another request) or "unchanged" (this payment was recorded before).
    """
    moved = min(obs.paid_at or now, now)
    seen = PaymentObservation(
        source=obs.source, source_ref=f"{obs.external_id}:paid", amount_minor=obs.amount_minor,
        currency=obs.currency or request.currency, received_at=moved, sender_name=obs.customer_name or "",
        sender_phone=obs.customer_phone, transaction_id=obs.transaction_id, raw=obs.raw or "",
        parsed=obs.amount_minor is not None, provider=obs.provider,
        note=f"{obs.source} reports {obs.external_id} ({request.reference}) paid",
    )
    actor = obs.reporter or f"source:{obs.source}"
    doubt = _amount_doubt(request, obs, seen.currency)
    known, twin = find_stored(seen)
    if known is not None:
        return "unchanged"
    if twin is not None:
        if twin.status == PaymentStatus.CONFIRMED:
            if twin.request_id == request.id:
                seen_again(twin, seen, actor=actor, now=now)
                return "unchanged"
            other = sqlcache.by_id(PaymentRequest, twin.request_id).reference if twin.request_id else "another request"
            doubt = f"its transaction {obs.transaction_id} already pays {other} (payment {twin.id})"
            seen_again(twin, seen, actor=actor, now=now, conflict=f"{obs.source} says it pays {request.reference}",
                       rematch=False)
            return _doubtful(request, twin, doubt, now, actor=actor)
        seen_again(twin, seen, actor=actor, now=now, rematch=False)
        if twin.status not in DECIDABLE:
            return "unchanged"
        payment = twin
    else:
        payment = insert_payment(seen, now)
        audit.record("payment.received", f"payment:{payment.id}", actor=actor, source=obs.source,
                     source_ref=payment.source_ref, amount_minor=payment.amount_minor, currency=payment.currency)
        if not first_sight:
            webhooks.payment_event("payment.received", payment)
    late = not first_sight and moved > request.expires_at
    if late and doubt is None:
        doubt = (f"the money moved at {moved.isoformat(timespec='seconds')}, after {request.reference} expired "
                 f"({request.expires_at.isoformat(timespec='seconds')}) (late)")
    if doubt is not None:
        return _doubtful(request, payment, doubt, now, actor=actor, late=late)
    evidence = (matching.Evidence("source", 100, f"{obs.source} reports {obs.external_id} paid"),)
    candidate = matching.Candidate(request.id, request.reference, 100, evidence)
    if not _settle(payment, candidate, actor=actor, now=now, how="reported by source", fresh=twin is None,
                   announce=not first_sight, paid_at=moved if obs.paid_at else None, seen_settled=first_sight):
        raise LedgerError("conflict", f"{request.reference} changed while {obs.source} reported it paid")
    return "paid"


def _amount_doubt(request: PaymentRequest, obs: RequestObservation, currency: str) -> str | None:
    """Why the paid amount the source reports does not pay `request`, or None when it is exact."""
    asked = f"{request.amount_minor} {request.currency} (minor units)"
    if currency != request.currency:
        return f"{obs.source} reports the payment in {currency}, the request asks {asked}"
    if obs.amount_minor is None:
        said = f"{obs.amount_text} {currency}" if obs.amount_text else "no amount"
        return f"{obs.source} reports it paid with {said}, not an exact amount; the request asks {asked}"
    if obs.amount_minor not in (request.amount_minor, request.requested_minor):
        return f"{obs.source} reports {obs.amount_minor} {currency} (minor units) paid; the request asks {asked}"
    return None


def _doubtful(request: PaymentRequest, payment: Payment, reason: str, now: datetime, *, actor: str,
              late: bool = False) -> str:
    """Never pay on a doubt. A payment still to be decided goes to review naming `request`
    (confirmable only when its amount is the one asked: late money), and the request waits
    in review (an expired one stays expired; staff may still confirm it). A payment that
    already pays another request stays as it is: the request is flagged and admins told."""
    if payment.status in DECIDABLE:
        exact = payment.amount_minor in (request.amount_minor, request.requested_minor) and \
            payment.currency == request.currency
        sqlcache.update(Payment, {"status": PaymentStatus.REVIEW, "request": request.id, "reason": reason,
                                  "late": late, "confidence": 100 if exact else 0},
                        {"id": payment.id, "status": payment.status})
        MatchCandidate.insert(
            payment=payment.id, request=request.id, score=100 if exact else 0, late=late,
            evidence=[{"signal": "source", "points": 100 if exact else 0, "detail": reason}],
            mismatch=None if exact else reason, created_at=now,
        ).on_conflict_ignore().execute()
        if sqlcache.update(PaymentRequest, {"status": RequestStatus.REVIEW},
                           {"id": request.id, "status": RequestStatus.PENDING}):
            webhooks.request_event("request.in_review", request, key=f":payment:{payment.id}")
        audit.record("payment.review", f"payment:{payment.id}", actor=actor, reason=reason, late=late,
                     candidates=[request.reference])
    PaymentRequest.update(flag="source_payment_doubtful").where(PaymentRequest.id == request.id).execute()
    audit.record("request.payment_doubtful", f"request:{request.reference}", actor=actor, payment=payment.id,
                 reason=reason)
    outbox.admin_alert(f"request:{request.reference}:doubtful:{payment.id}",
                       f"Paywatch: {request.reference}: {reason}. Payment {payment.id} waits for staff.")
    return "review"


# ---------------------------------------------------------------- reversals


def flag_reversal(source: str, transaction_id: str, *, reason: str = REVERSED_REASON,
                  actor: str = "system", currency: str | None = None, raw: str = "") -> Payment | None:
    """A provider pulled back transaction `transaction_id`: its payment goes to review.

    The payment is found by its transaction id whichever source reported it. A confirmed
    payment goes to review with reason "reversed at the provider" and its request is
    flagged "payment_reversed" and back in review with that payment as its candidate,
    so staff confirm (money back) or reject (request reopened); an unmatched one goes to
    review too; one already in review or rejected keeps its status and gets the reason.
    When no payment has that transaction id yet, the reversal is kept and applied when
    the payment arrives (it then goes to review, never confirmed); returns None then.
    Idempotent: a second report changes nothing.
    """
    full = reason if reason.startswith(REVERSED_REASON) else f"{REVERSED_REASON}: {reason}"
    key = normalize_txn(transaction_id)
    with db.transaction():
        payment = _reversed_payment(source, transaction_id, key, currency)
        if key is not None:
            Reversal.insert(source=source, transaction_id=transaction_id[:255], txn_norm=key, currency=currency,
                            reason=full, raw=raw[:20000], payment=payment.id if payment else None,
                            applied_at=utcnow() if payment else None, created_at=utcnow(),
                            ).on_conflict_ignore().execute()
        if payment is None:
            if key is not None:
                audit.record("reversal.pending", f"transaction:{transaction_id[:64]}", actor=actor, source=source,
                             reason=full)
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
            if PaymentRequest.update(flag="payment_reversed", status=RequestStatus.REVIEW).where(
                    PaymentRequest.id == payment.request_id, PaymentRequest.status == RequestStatus.PAID).execute():
                webhooks.request_event("request.in_review", payment.request_id, key=f":payment:{payment.id}")
            evidence = list(payment.evidence or []) + [{"signal": "reversal", "points": 0, "detail": full}]
            sqlcache.insert(MatchCandidate, {"payment": payment.id, "request": payment.request_id,
                                             "score": payment.confidence or 0, "evidence": evidence,
                                             "late": False, "mismatch": None, "created_at": utcnow()})
        audit.record("payment.reversed", f"payment:{payment.id}", actor=actor, transaction_id=transaction_id,
                     status_before=payment.status, status=status, reason=full)
        webhooks.payment_event("payment.reversed", payment)
        outbox.admin_alert(f"payment:{payment.id}:reversed",
                           f"Paywatch: payment {payment.id} ({payment.source}, {transaction_id}) was {full}; "
                           "it is in review")
    return sqlcache.by_id(Payment, payment.id)


def _reversed_payment(source: str, transaction_id: str, key: str | None, currency: str | None) -> Payment | None:
    """The payment a reversal names: by its comparable transaction id (any source), else by the
    exact id at that source (ids too short to compare everywhere)."""
    query = Payment.select().order_by(Payment.id)
    if key is not None:
        query = query.where(Payment.txn_norm == key)
        if currency:
            query = query.where(Payment.currency == currency)
    else:
        query = query.where(Payment.source == source, Payment.transaction_id == transaction_id)
    return query.first()
