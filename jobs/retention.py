"""The retention job (hourly): webapp.domain.retention in the database, and failed RQ job records
older than `keep_job_results_days` (finished ones already expire after 10 minutes)."""
from __future__ import annotations

import logging
from datetime import timedelta

from rq.job import Job
from rq.registry import FailedJobRegistry

from jobs import job
from webapp.domain import options, retention
from webapp.plumbing import jobqueue
from webapp.storage.models import utcnow

log = logging.getLogger(__name__)


@job
def apply() -> dict[str, int]:
    now = utcnow()
    done = retention.apply(now)
    done["failed_jobs"] = forget_failed_jobs(now - timedelta(days=options.get("keep_job_results_days")))
    if any(done.values()):
        log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
    return done


def forget_failed_jobs(cutoff) -> int:
    """Delete failed jobs that ended before `cutoff` from every queue's failed registry."""
    conn = jobqueue.redis_connection()
    count = 0
    for name in jobqueue.QUEUES:
        registry = FailedJobRegistry(name, connection=conn)
        for job_obj in Job.fetch_many(registry.get_job_ids(), connection=conn):
            if job_obj is not None and job_obj.ended_at is not None and job_obj.ended_at < cutoff:
                registry.remove(job_obj, delete_job=True)
                count += 1
    return count
