"""The RQ worker class: runs jobs in its own process (rq's SimpleWorker: no fork per job),
with the app built and the job modules imported once; it keeps itself registered and
keeps rq's scheduler of delayed jobs running, whatever happens to Redis.

A fork per job cost ~0.1–0.3 s here (STACK.md measured ~52 trivial jobs/s forking,
~135/s in-process); WhatsApp sends and ingests are short and well-behaved, so the
isolation a fork buys is not worth it. Job timeouts still apply (rq's death penalty
works in-process), and a job that crashes the process is restarted by the
supervisor (honcho, compose) like any worker.

Used as `rq worker -w jobs.worker.Worker --with-scheduler fast default slow`.

Delayed jobs (enqueue_at / enqueue_in, retries) are moved to their queues by rq's
scheduler, a process forked from the one worker that holds the `rq:scheduler-lock:<queue>`
locks. Stock rq 2.12 gets three things wrong for us, fixed here:
- It looks once a second. rq scores delayed jobs in whole seconds (rounding down), so a
  job due at 12.3 could start anywhere from 12.0 to 13.0; DelayedJobs looks every 0.2 s,
  so it starts between 12.0 and 12.2, and a job that must not run early (a pending alert)
  waits out the rest itself. (An earlier override of `start_scheduler` never ran: rq
  calls `_start_scheduler`.)
- Any Redis error in its loop (a restart, a timeout under load) ends that process, and
  rq only starts one again from run_maintenance_tasks, every 10 minutes; its locks stay
  taken for a minute, so no other worker steps in either. Here the loop waits Redis out,
  and the worker looks at its scheduler every TICK_S seconds and starts it again.
- A worker killed with SIGKILL leaves its scheduler behind, an orphan still holding the
  locks. Here it stops when its worker is gone and releases them, so another worker's
  scheduler takes over within TICK_S.
A FLUSHDB or a new Redis also drops the worker's registration (the `rq:workers` sets),
which rq never writes again, so health counted fewer workers than ran: heartbeat() puts
it back. An idle worker waits for jobs TICK_S seconds at a time (rq: 405 s), so these
checks run when there is no work too, and it reconnects within 5 s once Redis is back.
And rq ends the worker on any Redis error outside its dequeue loop — a Redis restarting
while a job finishes was enough, and under honcho one process ending stops them all —
so the calls rq makes between jobs wait Redis out instead (_unless_redis_away).
"""
from __future__ import annotations

import os
import time

from peewee import DatabaseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import InvalidJobOperation
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from jobs import bootstrap, watchdog
from webapp.plumbing import heap, jobstats
from webapp.plumbing.jobqueue import WORKER_BEAT_S

SCHEDULER_POLL_S = 0.2  # how often delayed jobs are looked for
TICK_S = WORKER_BEAT_S  # how often a worker beats while idle, and checks its scheduler


def _import_jobs() -> None:
    """Import every job module now, once: a forked work horse then starts with them loaded
    instead of importing them (Jinja, requests, …) for every single job."""
    import importlib

    from webapp.plumbing.jobqueue import JOBS

    for spec in JOBS.values():
        importlib.import_module(spec.func.rpartition(".")[0])


class DelayedJobs(RQScheduler):
    """rq's scheduler of delayed jobs: looks every SCHEDULER_POLL_S, waits out Redis errors,
    and stops (releasing its locks) when the worker that started it is gone."""

    def __init__(self, *args, worker_pid: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker_pid = worker_pid  # travels to the forked process with the object

    def to_dict(self) -> dict:
        return {**super().to_dict(), "poll_interval": str(SCHEDULER_POLL_S)}

    def work(self) -> None:
        """The forked process's loop (rq's own, made to outlive Redis and its worker)."""
        self._install_signal_handlers()
        beat_at = 0.0
        while not self._stop_requested:
            if self.worker_pid and os.getppid() != self.worker_pid:
                self.log.warning("Scheduler: worker %s is gone; stopping", self.worker_pid)
                break
            try:
                if time.monotonic() >= beat_at:  # locks and registration once a second, as rq does
                    if self.should_reacquire_locks:
                        self.acquire_locks()
                    self.register_birth()  # writes the whole hash: a flush or a new Redis lost it
                    self.heartbeat()  # refreshes the locks, or takes them again after a flush
                    beat_at = time.monotonic() + 1
                self.enqueue_scheduled_jobs()
            except RedisError as exc:
                if beat_at:
                    self.log.warning("Scheduler: Redis did not answer (%s: %s); waiting for it", type(exc).__name__, exc)
                beat_at = 0.0
                time.sleep(1)
                continue
            time.sleep(SCHEDULER_POLL_S)
        try:
            self.stop()
        except RedisError:
            pass  # the locks expire by themselves


class Worker(SimpleWorker):
    max_connection_wait_time = 5.0  # rq backs off up to 60 s between reconnection attempts

    def __init__(self, *args, **kwargs):
        bootstrap()
        _import_jobs()
        heap.freeze_startup()  # the app and the job modules stay for the process's life
        self._keep_scheduler = False
        self._tick_at = 0.0
        self._watch_at = time.monotonic() + watchdog.GRACE_S  # start-up is not an outage
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        return min(TICK_S, super().dequeue_timeout)

    @property
    def connection_timeout(self) -> int:
        # rq derives its socket timeout from dequeue_timeout; keep rq's own value, or a Redis
        # that stalls for a few seconds would make the worker quit (rq quits on TimeoutError).
        return max(1, self.worker_ttl - 15) + 10

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT, log_format: str = DEFAULT_LOGGING_FORMAT):
        """rq's own _start_scheduler (work() calls it for --with-scheduler), with DelayedJobs."""
        self.scheduler = DelayedJobs(
            self.queues, connection=self.connection, worker_pid=os.getpid(),
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer,
        )
        self._keep_scheduler = not burst
        try:
            self.scheduler.acquire_locks()
        except RedisError as exc:
            if burst:
                raise
            # Redis went away while this worker started: it waits for Redis like any other time,
            # and _revive_scheduler takes the locks and starts the scheduler once Redis answers.
            self.log.warning("Worker %s: cannot start the scheduler of delayed jobs yet (%s: %s); trying again "
                             "every %s s", self.name, type(exc).__name__, exc, TICK_S)
            return
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        """rq's heartbeat. From the work loop (no pipeline) it also registers the worker again
        when Redis lost it and, every TICK_S, starts the scheduler again if it died."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        self._unless_redis_away(self._beat, timeout)

    def _beat(self, timeout: int | None) -> None:
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            pipe.sismember(self.redis_workers_keys, self.key)
            created, _, known = pipe.execute()
        if created or not known:
            self._register_again()
        if time.monotonic() >= self._tick_at:
            self._tick_at = time.monotonic() + TICK_S
            self._revive_scheduler()
        if time.monotonic() >= self._watch_at:
            self._watch_at = time.monotonic() + watchdog.WATCH_EVERY_S
            self._watch_scheduler()

    def _watch_scheduler(self) -> None:
        """The workers watch the scheduler's heartbeat (one of them a minute; jobs.watchdog)."""
        try:
            watchdog.watch_scheduler(bootstrap())
        except (DatabaseError, RedisError) as exc:
            self.log.warning("Worker %s: cannot check the scheduler now (%s)", self.name, exc)

    def _register_again(self) -> None:
        self.log.warning("Worker %s: its registration was gone from Redis (flushed or replaced); registering again",
                         self.name)
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def _revive_scheduler(self) -> None:
        if not self._keep_scheduler or self.scheduler is None:
            return
        process = self.scheduler._process
        if process is not None and process.is_alive():
            return
        if process is not None and process.exitcode is not None:
            self.log.warning("Worker %s: its scheduler process %s ended (exit code %s); starting another",
                             self.name, process.pid, process.exitcode)
            self.scheduler._process = None
        self.scheduler.acquire_locks(auto_start=True)

    # Between jobs rq quits on any Redis error; these wait it out (the dequeue loop, where
    # rq does handle a lost connection, then reconnects with backoff).

    def subscribe(self) -> None:
        """rq's subscription to the worker's command channel (rq-dashboard's stop buttons); Redis gone
        at that moment of the start leaves this worker without it instead of ending the worker."""
        self._unless_redis_away(super().subscribe)

    def check_for_suspension(self, burst: bool) -> None:
        self._unless_redis_away(super().check_for_suspension, burst)

    def run_maintenance_tasks(self) -> None:
        self._unless_redis_away(super().run_maintenance_tasks)

    def set_state(self, state: str, pipeline=None) -> None:
        if pipeline is not None:
            return super().set_state(state, pipeline)
        self._state = state  # kept here; written again with the next registration
        self._unless_redis_away(super().set_state, state)

    def execute_job(self, job, queue) -> None:
        """Run the job; if Redis goes away meanwhile, its outcome is not recorded there, and the
        worker goes on (jobs are safe to run twice; the sweeps find unfinished work). Its duration
        goes to webapp.plumbing.jobstats (/metrics: job durations by job)."""
        started = time.monotonic()
        self._unless_redis_away(super().execute_job, job, queue)
        self._unless_redis_away(self._record_duration, job, time.monotonic() - started)

    def _record_duration(self, job, seconds: float) -> None:
        from webapp.plumbing.jobqueue import JOBS

        name = job.description if job.description in JOBS else next(
            (n for n, spec in JOBS.items() if spec.func == job.func_name), job.func_name)
        try:
            status = job.get_status(refresh=True)
        except InvalidJobOperation:  # its record is gone (Redis flushed as it ended, or a job kept for 0 s)
            status = None
        jobstats.record(self.connection, name, seconds, str(getattr(status, "value", status) or "unknown"))

    def _unless_redis_away(self, call, *args):
        try:
            return call(*args)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.log.warning("Worker %s: Redis did not answer (%s in %s); waiting for it",
                             self.name, type(exc).__name__, getattr(call, "__name__", call))
            return None
