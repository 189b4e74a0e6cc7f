"""What sources report about requests (portal rows, gateway statuses), and reversals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp import audit, db, matching, notify, options, sqlcache
from webapp.ledger.core import LedgerError, NewRequest, PAYABLE, _end, _settle
from webapp.ledger.owed import _insert_request
from webapp.models import MatchCandidate, Payment, PaymentRequest, PaymentStatus, RequestStatus, utcnow

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
