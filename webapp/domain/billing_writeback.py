"""The write-back outbox of billing-database sources: a request that ends writes its row back.

request_ended() runs inside the ledger's transaction whenever a request ends (paid,
failed, cancelled, expired): when a billing row is linked to the request it inserts one
BillingWriteback row (dedupe key: row + ending) and enqueues `billing_writeback` after
the commit. The job (jobs/billing.py) does the write in the billing database and
reports here: finished() (done, or conflict when the billing system changed the row
meanwhile — never overwritten) or failed() (retried: the sweep re-enqueues rows due
again, so a Redis flush delays a write-back, never loses it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.domain import audit, outbox
from webapp.plumbing import jobqueue
from webapp.storage import db, sqlcache
from webapp.storage.models import BillingRow, BillingWriteback, PaymentRequest, WritebackStatus, utcnow

RETRY_FIRST_S = 5
RETRY_MAX_S = 300
VOUCHER_FLAG = "billing_voucher_empty"
CHANGED_FLAG = "billing_row_changed"


def job_id(writeback_id: int) -> str:
    return f"billing-writeback-{writeback_id}"


def request_ended(request_id: int, outcome: str, *, now: datetime | None = None) -> int | None:
    """Queue the write-back of a request that ended as `outcome`; the new row's id, or None
    (no billing row behind the request, or this ending was queued before)."""
    # A statement built once: the ledger asks this for every request it pays.
    link = next(iter(sqlcache.select(
        BillingRow, "by_request", lambda p: f'SELECT * FROM "billing_row" WHERE "request_id" = {p}', [request_id])),
        None)
    if link is None:
        return None
    now = now or utcnow()
    new_id = sqlcache.insert(BillingWriteback, {
        "row": link.id, "request": request_id, "outcome": outcome, "expected": link.status_seen,
        "status": WritebackStatus.PENDING, "next_attempt_at": now, "created_at": now,
        "dedupe_key": f"billing:{link.id}:{outcome}",
    }, ignore_conflict=True)
    if new_id is not None:
        jobqueue.enqueue("billing_writeback", new_id, job_id=job_id(new_id))
    return new_id


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** max(0, attempts - 1)))


def started(writeback_id: int, now: datetime) -> BillingWriteback | None:
    """Count one attempt and push the next retry out (a crash mid-write is retried then);
    None when the row is no longer pending."""
    with db.transaction():
        wb = BillingWriteback.get_or_none(BillingWriteback.id == writeback_id)
        if wb is None or wb.status != WritebackStatus.PENDING:
            return None
        BillingWriteback.update(attempts=wb.attempts + 1, next_attempt_at=now + retry_delay(wb.attempts + 1)).where(
            BillingWriteback.id == wb.id).execute()
    return BillingWriteback.get_by_id(writeback_id)


@dataclass(frozen=True)
class Written:
    """What the billing transaction did."""

    status: str  # WritebackStatus.DONE or CONFLICT
    written: str | None = None  # the status value now in the row (ours, or already there)
    voucher_code: str | None = None
    voucher_missing: bool = False  # paid, but no voucher was left to claim
    found: str | None = None  # on conflict: what the row says now
    already: bool = False  # the row already held the value: nothing written


def finished(writeback_id: int, result: Written, *, actor: str, now: datetime | None = None) -> None:
    """Record the outcome of the billing transaction (audited; flags and alerts on conflict or no voucher)."""
    now = now or utcnow()
    with db.transaction():
        wb = BillingWriteback.get_by_id(writeback_id)
        changed = BillingWriteback.update(
            status=result.status, written=result.written, voucher_code=result.voucher_code, done_at=now,
            last_error=None if result.status == WritebackStatus.DONE else f"the row now says {result.found!r}",
        ).where(BillingWriteback.id == wb.id, BillingWriteback.status == WritebackStatus.PENDING).execute()
        if not changed:
            return
        request = PaymentRequest.get_by_id(wb.request_id)
        subject = f"request:{request.reference}"
        if result.status == WritebackStatus.DONE:
            # What the row says now is ours: the pass must not read it back as the billing system's change.
            BillingRow.update(status_seen=result.written).where(BillingRow.id == wb.row_id).execute()
            audit.record("request.billing_written", subject, actor=actor, row=wb.row_id, status=result.written,
                         voucher=bool(result.voucher_code), already=result.already)
        else:
            audit.record("request.billing_conflict", subject, actor=actor, row=wb.row_id, expected=wb.expected,
                         found=result.found, outcome=wb.outcome)
            if wb.outcome == "paid":
                _flag(request, CHANGED_FLAG, f"Paywatch: {request.reference} was paid, but its billing row now says "
                                             f"{result.found!r} (not overwritten). Check it by hand.")
        if result.voucher_missing:
            _flag(request, VOUCHER_FLAG, f"Paywatch: {request.reference} was paid and written back without a "
                                         "voucher: the billing database's vouchers table has none left.")


def _flag(request: PaymentRequest, flag: str, text: str) -> None:
    PaymentRequest.update(flag=flag).where(PaymentRequest.id == request.id).execute()
    audit.record(f"request.{flag}", f"request:{request.reference}", actor="system")
    outbox.admin_alert(f"{flag}:{request.reference}", text)


def failed(writeback_id: int, error: str) -> None:
    """The billing database could not be written now: kept pending, retried when due."""
    BillingWriteback.update(last_error=error[:2000]).where(
        BillingWriteback.id == writeback_id, BillingWriteback.status == WritebackStatus.PENDING).execute()


def due(now: datetime | None = None, limit: int = 200) -> list[int]:
    """Pending write-backs whose retry time has come (the sweep enqueues them again)."""
    now = now or utcnow()
    return [wb.id for wb in BillingWriteback.select(BillingWriteback.id).where(
        BillingWriteback.status == WritebackStatus.PENDING, BillingWriteback.next_attempt_at <= now,
    ).order_by(BillingWriteback.next_attempt_at).limit(limit)]


def for_request(request_id: int) -> tuple[BillingRow | None, list[BillingWriteback]]:
    """The billing row behind a request and its write-backs, oldest first (the request page)."""
    link = BillingRow.get_or_none(BillingRow.request == request_id)
    if link is None:
        return None, []
    return link, list(BillingWriteback.select().where(BillingWriteback.row == link.id).order_by(BillingWriteback.id))
