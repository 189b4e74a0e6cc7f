"""Sweeps: recurring jobs that catch up with time (expiry) and tidy up."""
from __future__ import annotations

from datetime import timedelta

from jobs import job
from webapp import ledger
from webapp.models import IdempotencyRecord, utcnow

IDEMPOTENCY_KEPT = timedelta(hours=48)  # promised: at least 24 h


@job
def expire_requests() -> int:
    """Expire every pending request past its expires_at (runs every 30 s)."""
    return ledger.expire_due()


@job
def purge_idempotency() -> int:
    """Forget idempotency keys older than 48 h."""
    return IdempotencyRecord.delete().where(IdempotencyRecord.created_at < utcnow() - IDEMPOTENCY_KEPT).execute()
