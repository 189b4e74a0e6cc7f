"""The recurring jobs (their intervals live in webapp.plumbing.jobqueue.RECURRING)."""
from __future__ import annotations

import time

from jobs import job
from webapp.plumbing import jobqueue


@job
def heartbeat() -> float:
    """Write the time where /healthz reads it: proof that scheduler and workers both run."""
    now = time.time()
    jobqueue.redis_connection().set(jobqueue.HEARTBEAT_KEY, now, ex=3600)
    return now
