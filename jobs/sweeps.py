"""The recurring jobs (intervals in webapp.plumbing.jobqueue.RECURRING): the heartbeat, sweeps that
catch up with time (expiry, lost notifications, reminder rules) and tidy up."""
from __future__ import annotations

import time
from datetime import timedelta

from jobs import job
from webapp.domain import ledger, outbox, sources, tallies
from webapp.plumbing import jobqueue
from webapp.storage.models import IdempotencyRecord, Notification, NotificationStatus, utcnow



@job
def heartbeat() -> float:
    """Write the time where /healthz reads it: proof that scheduler and workers both run."""
    now = time.time()
    jobqueue.redis_connection().set(jobqueue.HEARTBEAT_KEY, now, ex=3600)
    return now


@job
def expire_requests() -> int:
    """Expire every pending request past its expires_at (runs every 30 s)."""
    return ledger.expire_due()


@job
def purge_idempotency() -> int:
    """Forget idempotency keys older than the `keep_idempotency_hours` option (48 h unless changed; at least 24)."""
    from webapp.domain import options

    kept = timedelta(hours=options.get("keep_idempotency_hours"))
    return IdempotencyRecord.delete().where(IdempotencyRecord.created_at < utcnow() - kept).execute()


SENDING_TIMEOUT = timedelta(seconds=90)
OVERDUE = timedelta(seconds=10)


@job
def compact_tallies() -> dict[str, int]:
    """Give back the pages a bulk load left in the dashboard's tally tables once they were folded
    (PostgreSQL; tallies.compact). Runs every 10 minutes; {table: bytes given back}."""
    return tallies.compact()


@job
def resend_lost_notifications(batch: int = 1000) -> dict:
    """Nothing lost: rows stuck in sending go back to pending; due rows with no live job
    (Redis flushed or restarted, a worker killed) are enqueued again. Runs every 15 s."""
    now = utcnow()
    stuck = Notification.update(status=NotificationStatus.PENDING, last_error="sending did not finish; retrying").where(
        Notification.status == NotificationStatus.SENDING, Notification.claimed_at < now - SENDING_TIMEOUT).execute()
    conn = jobqueue.redis_connection()
    requeued = 0
    overdue = (Notification.select(Notification.id, Notification.due_at)
               .where(Notification.status == NotificationStatus.PENDING, Notification.due_at <= now - OVERDUE)
               .order_by(Notification.due_at).limit(batch))
    for row in overdue:
        job_id = outbox.send_job_id(row.id, row.due_at)
        # One sweep job per row and due time: a sweep that finds the last one still waiting
        # (workers busy or down) adds nothing, so outages do not pile up copies.
        if not (jobqueue.is_live(job_id, conn) or jobqueue.is_live(f"{job_id}-sweep", conn)):
            jobqueue.enqueue("send_notification", row.id, job_id=f"{job_id}-sweep")
            requeued += 1
    return {"stuck": stuck, "requeued": requeued}


@job
def run_reminder_rules() -> int:
    """Queue the reminders of every rule whose cron time has come (runs every minute)."""
    from webapp.domain import reminders

    return reminders.run_due()


@job
def check_sources() -> dict:
    """Raise (or clear) the "silent" alarm of sources not heard from for 3 intervals (every minute)."""
    return sources.check_silence()
