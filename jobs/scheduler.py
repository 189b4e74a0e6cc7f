"""The recurring scheduler process (`flask --app wsgi jobs scheduler`): rq-scheduler's loop,
made to outlive Redis and to put the recurring schedule back by itself.

rq-scheduler keeps the recurring jobs (webapp.plumbing.jobqueue.RECURRING, the source passes)
only in Redis, and its own `rqscheduler` command exits at the first Redis error. This
process registers whatever is missing (webapp.domain.sources.sync_schedule: fixed ids, the rest
left alone) when it starts, every 15 s, and at once when Redis lost its data: its own
heartbeat key (jobqueue.SCHEDULER_BEAT_KEY, also read by /healthz), written every loop,
is then missing, after an error or not (a FLUSHDB raises none). So a flushed, restarted or
brand-new Redis heals itself within seconds, with no operator step.
Several may run at once: rq-scheduler's lock lets one of them move due jobs at a time.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from peewee import DatabaseError
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from jobs import watchdog
from webapp.domain import sources
from webapp.plumbing import jobqueue
from webapp.storage import db

log = logging.getLogger(__name__)

# rq-scheduler also drops a recurring job on its own: one whose record is gone when it comes
# due (a pass that ended late, behind a busy queue, keeps its record only `interval` × 2 s
# after; a 3-s gateway pass under load lost its schedule that way, and the passes stopped until
# the next check: bench/chaos.py resumed 59-61 s after its last disruption where it
# usually takes 2-4). The check is a lock, a read of the scheduled set and the sources: cheap.
SYNC_EVERY_S = 15.0
RETRY_SYNC_S = 5.0  # the database did not answer: try again soon


def run(app: Flask, stop: threading.Event, *, interval: float = 1.0) -> None:
    """Move due recurring jobs to their queues every `interval` s until `stop` is set."""
    with app.app_context():
        connection = jobqueue.redis_connection()
    scheduler = Scheduler(connection=connection, interval=interval)
    sync_at, watch_at, redis_up = 0.0, time.monotonic() + watchdog.GRACE_S, False
    log.info("scheduler started: recurring jobs every %.1f s, schedule checked every %.0f s", interval, SYNC_EVERY_S)
    while not stop.is_set():
        began = time.monotonic()
        try:
            last_beat = connection.set(jobqueue.SCHEDULER_BEAT_KEY, time.time(), ex=jobqueue.SCHEDULER_BEAT_TTL,
                                       get=True)
            if last_beat is None or not redis_up:
                if sync_at:
                    log.info("scheduler: Redis %s; checking the schedule now",
                             "answers again" if not redis_up else "lost its data (flushed or replaced)")
                sync_at = began
            redis_up = True
            if began >= sync_at:
                sync_at = began + (SYNC_EVERY_S if _sync(app, scheduler) else RETRY_SYNC_S)
            if scheduler.acquire_lock():
                try:
                    scheduler.enqueue_jobs()
                finally:
                    scheduler.remove_lock()
            if began >= watch_at:
                watch_at = began + watchdog.WATCH_EVERY_S
                _watch_workers(app)
        except RedisError as exc:
            if redis_up:
                log.warning("scheduler: Redis did not answer (%s: %s); waiting for it", type(exc).__name__, exc)
            redis_up = False
        stop.wait(max(0.0, interval - (time.monotonic() - began)))
    log.info("scheduler stopped")


def _watch_workers(app: Flask) -> None:
    """A worker cannot report that no worker runs: this process does (jobs.watchdog)."""
    try:
        watchdog.watch_workers(app)
    except (DatabaseError, RedisError) as exc:
        log.warning("scheduler: cannot check the workers now (%s)", exc)


def _sync(app: Flask, scheduler: Scheduler) -> bool:
    """Register what is missing; False when the database did not answer (Redis errors raise)."""
    try:
        with app.app_context(), db.database.connection_context():
            changes = sources.sync_schedule(scheduler)
    except DatabaseError as exc:
        log.warning("scheduler: cannot read the sources (%s); the schedule is checked again in %.0f s",
                    exc, RETRY_SYNC_S)
        return False
    if changes["added"] or changes["removed"]:
        log.info("scheduler: registered %s; removed %s; %d unchanged",
                 ", ".join(changes["added"]) or "nothing", ", ".join(changes["removed"]) or "nothing",
                 len(changes["kept"]))
    return True
