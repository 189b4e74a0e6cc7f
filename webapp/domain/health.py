"""What /healthz and /api/v1/health report: the database, Redis, the workers, rq's scheduler of
delayed jobs (inside the workers) and the recurring scheduler, each judged by a heartbeat.

A worker counts when it is alive, not merely listed: jobs.worker.Worker beats every
jobqueue.WORKER_BEAT_S seconds while idle, and before each job (a busy worker counts until
its job's timeout has passed). Delayed jobs need every queue's scheduler lock held by an rq
scheduler that beat in the last few seconds. The recurring scheduler needs its process's
own beat, the heartbeat job's (proof that recurring jobs reach a worker), and every
recurring job and source pass registered.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE
from rq.utils import utcparse
from rq_scheduler import Scheduler

from webapp.domain import sources
from webapp.plumbing import jobqueue
from webapp.storage.db import database

HEARTBEAT_MAX_AGE = 30  # seconds; the heartbeat job runs every 5
WORKER_MAX_AGE = 6 * jobqueue.WORKER_BEAT_S
SCHEDULER_MAX_AGE = 10  # rq's scheduler beats every second


def health() -> tuple[dict, bool]:
    """Each part's state, and whether all of them are up."""
    checks: dict[str, dict] = {}
    try:
        database.execute_sql("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver error means "down"; the message says which
        checks["database"] = {"ok": False, "error": _error(exc)}
    try:
        conn = jobqueue.redis_connection()
        conn.ping()
        checks["redis"] = {"ok": True}
        checks["workers"] = workers(conn)
        checks["delayed_jobs"] = delayed_jobs(conn)
        checks["scheduler"] = recurring_scheduler(conn, database_ok=checks["database"]["ok"])
    except RedisError as exc:
        checks["redis"] = {"ok": False, "error": _error(exc)}
        checks["workers"] = {"ok": False, "count": None}
        checks["delayed_jobs"] = {"ok": False}
        checks["scheduler"] = {"ok": False, "heartbeat_age_s": None}
    return checks, all(part["ok"] for part in checks.values())


def workers(conn: Redis) -> dict:
    """Live workers (by heartbeat) and the queues none of them serves."""
    now = datetime.now(timezone.utc)
    rows = []
    for worker in Worker.all(connection=conn):
        age = _age(now, worker.last_heartbeat)
        state = worker.get_state()
        limit = WORKER_MAX_AGE
        if state == "busy":
            limit = max(limit, _job_timeout(conn, worker.get_current_job_id()) + 60)
        rows.append({"name": worker.name, "pid": worker.pid, "hostname": worker.hostname, "state": state,
                     "queues": worker.queue_names(), "heartbeat_age_s": age,
                     "live": age is not None and age <= limit})
    live = [row for row in rows if row["live"]]
    served = {name for row in live for name in row["queues"]}
    unserved = [name for name in jobqueue.QUEUES if name not in served]
    return {"ok": bool(live) and not unserved, "count": len(live), "registered": len(rows),
            "queues_without_worker": unserved, "each": sorted(rows, key=lambda row: row["name"])}


def delayed_jobs(conn: Redis) -> dict:
    """rq's scheduler of delayed jobs (runs inside one worker): who holds each queue, and its beat."""
    now = datetime.now(timezone.utc)
    owners = [o.decode() if o else None for o in conn.mget([SCHEDULER_LOCKING_KEY_TEMPLATE % n for n in jobqueue.QUEUES])]
    with conn.pipeline() as pipe:  # one snapshot: a scheduler starting again meanwhile is not seen half-way
        for owner in owners:
            pipe.hgetall(SCHEDULER_KEY_TEMPLATE % owner)
        infos = pipe.execute()
    queues = {}
    for name, owner, raw in zip(jobqueue.QUEUES, owners, infos):
        info = {k.decode(): v.decode() for k, v in raw.items()} if owner else {}
        beat = utcparse(info["last_heartbeat"]) if info.get("last_heartbeat") else None
        age = _age(now, beat)
        queues[name] = {"scheduler": owner, "pid": int(info["pid"]) if info.get("pid") else None,
                        "poll_interval_s": float(info["poll_interval"]) if info.get("poll_interval") else None,
                        "heartbeat_age_s": age, "ok": age is not None and age <= SCHEDULER_MAX_AGE}
    return {"ok": all(q["ok"] for q in queues.values()), "queues": queues}


def recurring_scheduler(conn: Redis, *, database_ok: bool) -> dict:
    """The scheduler process's beat, the heartbeat job's, and the recurring jobs it should hold."""
    beat, process_beat = conn.get(jobqueue.HEARTBEAT_KEY), conn.get(jobqueue.SCHEDULER_BEAT_KEY)
    age = None if beat is None else round(time.time() - float(beat), 1)
    process_age = None if process_beat is None else round(time.time() - float(process_beat), 1)
    held = {m.decode() for m in conn.zrange(Scheduler.scheduled_jobs_key, 0, -1)}
    wanted = [r.id for r in sources.wanted_schedule()] if database_ok else [
        r.id for r in jobqueue.recurring_jobs()]
    missing = [job_id for job_id in wanted if job_id not in held]
    ok = (age is not None and age <= HEARTBEAT_MAX_AGE and process_age is not None
          and process_age <= HEARTBEAT_MAX_AGE and not missing)
    return {"ok": ok, "heartbeat_age_s": age, "process_heartbeat_age_s": process_age,
            "registered": len(wanted) - len(missing), "missing": missing}


def _job_timeout(conn: Redis, job_id: str | None) -> int:
    longest = max(spec.timeout for spec in jobqueue.JOBS.values())
    if not job_id:
        return longest
    try:
        return int(Job.fetch(job_id, connection=conn).timeout or longest)
    except NoSuchJobError:  # it ended meanwhile
        return longest


def _age(now: datetime, when: datetime | None) -> float | None:
    return None if when is None else round((now - when).total_seconds(), 1)


def _error(exc: Exception) -> str:
    return type(exc).__name__ + ": " + str(exc)[:200]
