"""Redis, the three queues, and the JOBS registry of dotted job names.

The web side names jobs by string here and never imports jobs/. Queues are by
latency: `fast` (notifications, webhooks), `default` (ingest, matching), `slow`
(portal scraping, big mailbox fetches). enqueue()/enqueue_in() called inside
`db.transaction()` wait for the outermost commit, so a job never runs before the
rows it reads exist (and never runs at all for a rolled-back change).

Redis is not the record. A job enqueued after a commit only wakes up work its rows
already describe (a due notification, a gateway collect): when Redis does not answer
then, the change stands, a warning is logged, and the sweeps and source passes find
the rows again. Outside a transaction a Redis error reaches the caller.

The recurring jobs and source passes live in rq-scheduler's Redis keys; sync_schedule()
puts back what is missing (the scheduler process runs it every minute, jobs/scheduler.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from webapp.storage import db

log = logging.getLogger(__name__)

QUEUES = ("fast", "default", "slow")
HEARTBEAT_KEY = "paywatch:heartbeat:scheduler"  # written by the heartbeat job: scheduler and workers both run
SCHEDULER_BEAT_KEY = "paywatch:heartbeat:scheduler-process"  # written by the scheduler process's own loop
SCHEDULER_BEAT_TTL = 120
WORKER_BEAT_S = 5  # an idle jobs.worker.Worker beats this often (webapp/domain/health.py judges by it)
WATCHER_BEAT_KEY = "paywatch:heartbeat:watcher"  # written by the mailbox watcher's main loop


@dataclass(frozen=True)
class JobSpec:
    func: str  # dotted path, resolved by the RQ worker
    queue: str
    timeout: int  # seconds; every job sets its own
    retry: int = 0  # RQ retries for transient errors (permanent ones are recorded instead)


JOBS: dict[str, JobSpec] = {
    "heartbeat": JobSpec("jobs.sweeps.heartbeat", "fast", 10),
    "expire_requests": JobSpec("jobs.sweeps.expire_requests", "default", 120),
    "purge_idempotency": JobSpec("jobs.sweeps.purge_idempotency", "slow", 300),
    "compact_tallies": JobSpec("jobs.sweeps.compact_tallies", "slow", 300),
    # gateway sources (jobs/gateway.py)
    "gateway_poll": JobSpec("jobs.gateway.poll", "default", 120),
    "gateway_collect": JobSpec("jobs.gateway.collect", "default", 60),
    "gateway_reread": JobSpec("jobs.gateway.reread", "default", 60, retry=3),
    "send_notification": JobSpec("jobs.whatsapp.send_notification", "fast", 60),
    "notification_sweep": JobSpec("jobs.sweeps.resend_lost_notifications", "default", 120),
    "reminder_rules": JobSpec("jobs.sweeps.run_reminder_rules", "default", 300),
    "whatsapp_acks": JobSpec("jobs.whatsapp.refresh_acks", "slow", 120),
    "whatsapp_session": JobSpec("jobs.watchdog.session_action", "fast", 60),
    # mailbox sources (jobs/mailbox.py)
    "mailbox_fetch": JobSpec("jobs.mailbox.fetch", "default", 300),
    # the rule builder (jobs/rules.py), run inline by webapp/web/rules_builder.py
    "rules_build": JobSpec("jobs.rules.builder_view", "fast", 60),
    "rules_save": JobSpec("jobs.rules.builder_save", "default", 300),
    # sms sources (jobs/sms.py; the hook is webapp/web/hooks.py)
    "sms_ingest": JobSpec("jobs.sms.ingest", "default", 60, retry=3),
    "sms_sweep": JobSpec("jobs.sms.sweep", "default", 60),
    # every source: silence and failing lookups raise alarms (jobs/sweeps.py)
    "source_alarms": JobSpec("jobs.sweeps.check_sources", "default", 60),
    # portal sources (jobs/portal.py)
    "portal_pass": JobSpec("jobs.portal.run_pass", "slow", 300),
    "claim_check": JobSpec("jobs.claims.check", "default", 60),
    # outbound webhooks (jobs/webhooks.py)
    "deliver_webhook": JobSpec("jobs.webhooks.deliver", "fast", 30),
    "webhook_sweep": JobSpec("jobs.webhooks.resend_lost_deliveries", "default", 120),
    # billing-database sources (jobs/billing.py)
    "billing_poll": JobSpec("jobs.billing.poll", "default", 120),
    "billing_writeback": JobSpec("jobs.billing.writeback", "default", 60),
    "billing_writeback_sweep": JobSpec("jobs.billing.sweep", "default", 60),
    # operators' alerts and the WhatsApp watchdog (jobs/watchdog.py, jobs/alert_mail.py)
    "send_alert_mail": JobSpec("jobs.alert_mail.send_alert_mail", "fast", 60, retry=3),
    "alerts_check": JobSpec("jobs.watchdog.check", "default", 120),
    "whatsapp_watchdog": JobSpec("jobs.watchdog.session_check", "fast", 60),
    # retention of raw bodies, message texts, idempotency records, job records (jobs/retention.py)
    "retention": JobSpec("jobs.retention.apply", "slow", 900),
}

# Recurring jobs (name -> interval in seconds), kept registered with rq-scheduler under
# fixed ids by the scheduler process (sync_schedule) and by `flask --app wsgi jobs schedule`.
RECURRING: dict[str, int] = {
    "heartbeat": 5,
    "expire_requests": 30,
    "purge_idempotency": 3600,
    "compact_tallies": 600,
    "notification_sweep": 15,
    "reminder_rules": 60,
    "whatsapp_acks": 120,
    "webhook_sweep": 15,
    "billing_writeback_sweep": 15,
    "sms_sweep": 30,
    "source_alarms": 60,
    "alerts_check": 60,
    "whatsapp_watchdog": 60,
    "retention": 3600,
}

_redis: dict[str, Redis] = {}


def redis_connection(url: str | None = None) -> Redis:
    """One client per URL per process (the URL of the current app by default)."""
    url = url or _current_url()
    if url not in _redis:
        # A Redis that hangs (not just refuses) must not hang a web request: 5 s, then RedisError.
        _redis[url] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
    return _redis[url]


def _current_url() -> str:
    from flask import current_app

    return current_app.config["PAYWATCH"].redis_url


def queue(name: str, connection: Redis | None = None) -> Queue:
    if name not in QUEUES:
        raise KeyError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or redis_connection())


def _job_options(name: str, job_id: str | None) -> tuple[JobSpec, dict]:
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}; add it to webapp.plumbing.jobqueue.JOBS")
    spec = JOBS[name]
    options = {
        "job_timeout": spec.timeout,
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
        "job_id": job_id,
        "description": name,
    }
    if spec.retry:
        options["retry"] = Retry(max=spec.retry, interval=[5, 30, 120][: spec.retry])
    return spec, options


def _submit(name: str, connection: Redis | None, put: Callable[[object], Job]) -> Job | None:
    """put(pipeline) now, executed (a Redis error raises), or after the outermost commit together
    with every job that transaction enqueued: one pipeline, one round trip (a Redis error is
    logged: the committed rows are the record, and the sweeps and source passes pick them up again)."""
    redis = connection or redis_connection()
    if not db.in_transaction():
        pipe = redis.pipeline()
        job = put(pipe)
        pipe.execute()
        return job
    db.after_commit(lambda: (name, redis, put), batch=_put_all)
    return None


def _put_all(callbacks: list[Callable[[], tuple]]) -> None:
    """The jobs one transaction enqueued, after its commit: one MULTI/EXEC per Redis."""
    pipes: dict[int, tuple] = {}
    for callback in callbacks:
        name, redis, put = callback()
        if id(redis) not in pipes:
            pipe = redis.pipeline()
            # MULTI first: rq calls it for an enqueue unless the pipeline is in it already, and
            # refuses to once an enqueue_at has put commands in the pipeline.
            pipe.multi()
            pipes[id(redis)] = (pipe, [])
        pipe, names = pipes[id(redis)]
        try:
            put(pipe)
        except RedisError as exc:  # rq reads a key or two while building some jobs
            _not_queued([name], exc)
            continue
        names.append(name)
    for pipe, names in pipes.values():
        try:
            pipe.execute()
        except RedisError as exc:
            _not_queued(names, exc)


def _not_queued(names: list[str], exc: Exception) -> None:
    log.warning("jobs %s not queued, Redis did not answer (%s: %s); their rows are kept and the sweeps "
                "pick them up once Redis is back", ", ".join(sorted(set(names))), type(exc).__name__, exc)


def enqueue(name: str, *args, job_id: str | None = None, connection: Redis | None = None):
    """Enqueue job `name` now (returns the Job), or right after the current transaction commits."""
    spec, options = _job_options(name, job_id)

    def put(pipe):
        # In a pipeline: one MULTI/EXEC instead of rq's two (queue set, then job).
        return queue(spec.queue, connection).enqueue(spec.func, *args, pipeline=pipe, **options)

    return _submit(name, connection, put)


def enqueue_at(name: str, when: datetime, *args, job_id: str | None = None, connection: Redis | None = None):
    """Enqueue job `name` to run at `when` (aware), after the current transaction commits.

    Runs through rq's own scheduler (workers started with --with-scheduler). rq keeps
    whole seconds, rounding down, so the job may start up to a second early: a job
    that must not run early checks the time itself (see jobs.whatsapp).
    """
    if when.tzinfo is None:
        raise ValueError("enqueue_at needs an aware datetime")
    spec, options = _job_options(name, job_id)

    def put(pipe):
        return queue(spec.queue, connection).enqueue_at(when.astimezone(timezone.utc), spec.func, *args,
                                                        pipeline=pipe, **options)

    return _submit(name, connection, put)


LIVE = ("queued", "started", "deferred", "scheduled")


def is_live(job_id: str, connection: Redis | None = None) -> bool:
    """True when Redis holds job `job_id` waiting or running (False after a flush or once it ended)."""
    try:
        status = Job.fetch(job_id, connection=connection or redis_connection()).get_status(refresh=False)
    except NoSuchJobError:
        return False
    return status in LIVE


def enqueue_in(name: str, delay: timedelta, *args, **kwargs):
    """Enqueue job `name` after `delay` (see enqueue_at)."""
    return enqueue_at(name, datetime.now(timezone.utc) + delay, *args, **kwargs)


def run_inline(name: str, *args):
    """Run job `name` in this process now (CLI `sources run`): resolved by its dotted name,
    as a worker would, so webapp never imports jobs."""
    import importlib

    module, _, func = JOBS[name].func.rpartition(".")
    return getattr(importlib.import_module(module), func)(*args)


# ------------------------------------------------------------------ the recurring schedule

SCHEDULE_PREFIXES = ("paywatch-recurring-", "paywatch-source-")
SCHEDULE_LOCK = "paywatch:schedule:sync"


@dataclass(frozen=True)
class Recurring:
    """One job rq-scheduler should hold: a fixed id, what it runs, and how often."""
    id: str
    func: str
    queue: str
    timeout: int
    interval: int
    args: tuple = ()

    def matches(self, job: Job) -> bool:
        return (job.func_name == self.func and tuple(job.args or ()) == self.args and job.origin == self.queue
                and job.timeout == self.timeout and job.meta.get("interval") == self.interval)


def recurring_id(name: str) -> str:
    return f"paywatch-recurring-{name}"


def recurring_jobs() -> list[Recurring]:
    """The fixed RECURRING jobs (sweeps, expiry, heartbeat…) as rq-scheduler should hold them."""
    return [Recurring(recurring_id(name), JOBS[name].func, JOBS[name].queue, JOBS[name].timeout, interval)
            for name, interval in RECURRING.items()]


def sync_schedule(scheduler, wanted: list[Recurring]) -> dict[str, list[str]]:
    """Make rq-scheduler hold exactly `wanted` (webapp.domain.sources.wanted_schedule()), under fixed ids.

    Missing or changed jobs are registered (due now), ours that are no longer wanted
    (a source removed or disabled) are cancelled, and the rest are left alone, so their
    next run keeps its time. Several processes may run it at once (a Redis lock takes
    them in turn; the ids are fixed, so nothing is ever doubled). Needs Redis; returns {"added": ids, "removed": ids, "kept": ids}.
    """
    wanted = {r.id: r for r in wanted}
    with scheduler.connection.lock(SCHEDULE_LOCK, timeout=30, blocking_timeout=30):
        held = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(SCHEDULE_PREFIXES)}
        removed = sorted(set(held) - set(wanted))
        for job_id in removed:
            scheduler.cancel(held[job_id])
        added, kept = [], []
        now = datetime.now(timezone.utc)
        for r in wanted.values():
            if r.id in held and r.matches(held[r.id]):
                kept.append(r.id)
                continue
            scheduler.schedule(
                scheduled_time=now, func=r.func, args=list(r.args), interval=r.interval, repeat=None, id=r.id,
                queue_name=r.queue, timeout=r.timeout,
                result_ttl=r.interval * 2,  # short, or one failure blocks a unique job for long
            )
            added.append(r.id)
    return {"added": added, "removed": removed, "kept": kept}
