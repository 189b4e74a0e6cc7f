"""Customers' "I've paid" claims from the payment page: stored, checked against the payments
already seen (by normalized transaction code), and the sources asked again at once.

submit() is where a claim is created: one transaction holding the Claim row, its audit
event `claim.received` (and the `claim.received` webhook event) and the first
check; after commit a pass of every enabled source is enqueued (a mailbox fetch, a portal
pass, a gateway re-read of the request or a gateway poll) and the claim is checked again
(CHECK_AGAIN) once they had time to bring the payment in. A claim never confirms anything:
a payment it names goes to review for the request (ledger.claimed.review_claimed), and a
claim no payment matches waits in the review queue with what was looked at.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from webapp.domain import audit, phones, webhooks
from webapp.domain.ledger.claimed import ALREADY_PAID, IN_REVIEW, review_claimed
from webapp.domain.ledger.core import normalize_txn
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import (
    Claim,
    ClaimStatus,
    Payment,
    PaymentRequest,
    RequestStatus,
    Source,
    SourceKind,
    utcnow,
)

MAX_CLAIMS_PER_REQUEST = 10  # beyond the per-client rate limit: one request's page cannot flood the queue
CHECK_AGAIN = (timedelta(seconds=20), timedelta(minutes=2))
CLAIMABLE = (RequestStatus.PENDING, RequestStatus.REVIEW, RequestStatus.EXPIRED)


class ClaimError(ValueError):
    """A claim that cannot be accepted; `field` names the form field, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def clean_code(raw: str | None) -> str:
    """The transaction code as typed, trimmed; ClaimError when it cannot name a transaction."""
    code = " ".join((raw or "").split())
    if not code:
        raise ClaimError("transaction_id", "enter the transaction code from your payment message")
    if len(code) > 64 or not code.isprintable():
        raise ClaimError("transaction_id", "a transaction code is at most 64 letters and digits")
    if normalize_txn(code) is None:
        raise ClaimError("transaction_id", "that does not look like a transaction code: it has at least 6 "
                                           "letters and digits, with a digit among them (e.g. QK12AB34CD)")
    return code


def submit(request: PaymentRequest, transaction_id: str | None, phone: str | None, *, region: str | None,
           client_ip: str | None = None, now: datetime | None = None) -> Claim:
    """Store a customer's claim for `request` and check it (see the module docstring).

    The same code claimed twice for one request is one claim (checked again). Raises
    ClaimError naming the field: a bad code or phone, a request that can no longer be paid,
    or too many claims for one request.
    """
    now = now or utcnow()
    code = clean_code(transaction_id)
    e164 = None
    if (phone or "").strip():
        try:
            e164 = phones.to_e164(phone, region)
        except phones.PhoneError as exc:
            raise ClaimError("phone", str(exc)) from None
    if request.status not in CLAIMABLE:
        raise ClaimError("transaction_id", f"this request is {request.status}; there is nothing to pay")
    key = normalize_txn(code)
    with db.transaction():
        claim = Claim.get_or_none(Claim.request == request.id, Claim.txn_norm == key)
        if claim is None:
            if Claim.select().where(Claim.request == request.id).count() >= MAX_CLAIMS_PER_REQUEST:
                raise ClaimError("transaction_id", "this request has had too many claims; please contact us")
            claim = Claim.create(request=request.id, transaction_id=code, txn_norm=key, phone=e164,
                                 client_ip=client_ip, created_at=now,
                                 evidence=[_note(now, f"claimed with code {code}" + (f" from {e164}" if e164 else ""))])
            audit.record("claim.received", f"request:{request.reference}", actor="customer", claim=claim.id,
                         transaction_id=code, phone=e164)
            webhooks.claim_received(request, code, phone=e164, claim_id=claim.id, now=now)
        check(claim.id, now=now)
        asked = ask_sources(request)
        for delay in CHECK_AGAIN:
            jobqueue.enqueue_in("claim_check", delay, claim.id, job_id=f"claim-check-{claim.id}-{int(delay.total_seconds())}")
        _add_evidence(claim.id, _note(now, "asked again: " + (", ".join(asked) if asked else "no enabled source")))
    return Claim.get_by_id(claim.id)


def _note(at: datetime, detail: str) -> dict:
    return {"at": at.isoformat(), "detail": detail}


def _add_evidence(claim_id: int, note: dict) -> None:
    claim = Claim.get_by_id(claim_id)
    Claim.update(evidence=[*(claim.evidence or []), note]).where(Claim.id == claim_id).execute()


def payment_for(claim: Claim, request: PaymentRequest) -> Payment | None:
    """A payment seen with the claim's transaction code: the request's currency and amount first."""
    if not claim.txn_norm:
        return None
    seen = list(Payment.select().where(Payment.txn_norm == claim.txn_norm).order_by(Payment.id).limit(20))
    seen.sort(key=lambda p: (p.currency != request.currency, p.amount_minor != request.amount_minor, p.id))
    return seen[0] if seen else None


def check(claim_id: int, *, now: datetime | None = None) -> str:
    """Match a claim still waiting against the payments seen; returns its status afterwards.

    Safe to run twice: a matched or closed claim is left as it is.
    """
    now = now or utcnow()
    with db.transaction():
        claim = Claim.get_or_none(Claim.id == claim_id)
        if claim is None:
            return "gone"
        if claim.status != ClaimStatus.REVIEW:
            return claim.status
        request = PaymentRequest.get_by_id(claim.request_id)
        payment = payment_for(claim, request)
        if payment is None:
            Claim.update(checked_at=now).where(Claim.id == claim.id).execute()
            if claim.checked_at is None:
                _add_evidence(claim.id, _note(now, f"no payment seen with code {claim.transaction_id} yet"))
            return ClaimStatus.REVIEW
        outcome = review_claimed(payment.id, request.id,
                                 f"the customer quoted transaction code {claim.transaction_id} on the payment page",
                                 actor="customer", now=now)
        # In review for the request, or already paid by it: settled. Otherwise (confirmed for
        # another request, rejected for this one before, request ended) staff look at the claim.
        status = ClaimStatus.MATCHED if outcome in (IN_REVIEW, ALREADY_PAID) else ClaimStatus.REVIEW
        Claim.update(status=status, payment=payment.id, checked_at=now).where(
            Claim.id == claim.id, Claim.status == ClaimStatus.REVIEW).execute()
        if claim.payment_id != payment.id:
            _add_evidence(claim.id, _note(now, f"matches payment {payment.id} from {payment.source} "
                                               f"({payment.status}): {outcome.replace('_', ' ')}"))
            audit.record("claim.matched", f"request:{request.reference}", actor="system", claim=claim.id,
                         payment=payment.id, outcome=outcome)
    return status


def ask_sources(request: PaymentRequest) -> list[str]:
    """Enqueue (after commit) one pass of every enabled source; returns what was asked, by name.

    A gateway source that created this request re-reads it by its external id; other gateway
    sources run a poll. Fixed job ids keep many claims from piling up passes.
    """
    asked = []
    for source in Source.select().where(Source.enabled == True).order_by(Source.id):  # noqa: E712
        if source.kind == SourceKind.MAILBOX:
            job, args = "mailbox_fetch", (source.id,)
        elif source.kind == SourceKind.PORTAL:
            job, args = "portal_pass", (source.id,)
        elif source.kind == SourceKind.GATEWAY and request.source == source.name and request.external_id:
            job, args = "gateway_reread", (source.id, None, request.external_id)
        elif source.kind == SourceKind.GATEWAY:
            job, args = "gateway_poll", (source.id,)
        else:
            continue
        job_id = f"claim-{job}-{source.id}" if job != "gateway_reread" else f"claim-reread-{request.id}"
        if not _waiting(job_id):
            jobqueue.enqueue(job, *args, job_id=job_id)
        asked.append(f"{source.kind} {source.name}")
    return asked


def _waiting(job_id: str) -> bool:
    from redis.exceptions import RedisError

    try:
        return jobqueue.is_live(job_id)
    except RedisError:
        return False  # enqueue() after commit logs it; the source's own schedule still runs


def open_claims(limit: int = 100):
    """Claims waiting for staff (the review queue), oldest first, with their requests."""
    return (Claim.select(Claim, PaymentRequest).join(PaymentRequest)
            .where(Claim.status == ClaimStatus.REVIEW, PaymentRequest.status.in_(CLAIMABLE))
            .order_by(Claim.created_at).limit(limit))


def close(claim_id: int, *, actor: str, reason: str = "") -> bool:
    """Staff dismiss a waiting claim (audited); False when it was no longer waiting."""
    with db.transaction():
        claim = Claim.get_or_none(Claim.id == claim_id)
        if claim is None:
            return False
        changed = Claim.update(status=ClaimStatus.CLOSED).where(Claim.id == claim_id,
                                                                Claim.status == ClaimStatus.REVIEW).execute()
        if changed:
            audit.record("claim.closed", f"request:{claim.request.reference}", actor=actor, claim=claim_id,
                         reason=reason)
    return bool(changed)

