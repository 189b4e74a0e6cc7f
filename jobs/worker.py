"""The RQ worker class: runs jobs in its own process (rq's SimpleWorker: no fork per job),
with the app built and the job modules imported once, and runs rq's scheduler every
0.2 s instead of every second.

A fork per job cost ~0.1–0.3 s here (STACK.md measured ~52 trivial jobs/s forking,
~135/s in-process); WhatsApp sends and ingests are short and well-behaved, so the
isolation a fork buys is not worth it. Job timeouts still apply (rq's death penalty
works in-process), and a job that crashes the process is restarted by the
supervisor (honcho, compose) like any worker.

Used as `rq worker -w jobs.worker.Worker --with-scheduler fast default slow`.
rq scores delayed jobs in whole seconds (rounding down) and its scheduler looks once
a second, so a job due at 12.3 could start anywhere from 12.0 to 13.0; looking five
times a second, it starts between 12.0 and 12.2, and a job that must not run early
(a pending alert) waits out the rest itself: it goes within a few tenths of a
second of its due time (the goal is 1.5 s).
"""
from __future__ import annotations

from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from jobs import bootstrap

SCHEDULER_INTERVAL = 0.2


def _import_jobs() -> None:
    """Import every job module now, once: a forked work horse then starts with them loaded
    instead of importing them (Jinja, requests, …) for every single job."""
    import importlib

    from webapp.jobqueue import JOBS

    for spec in JOBS.values():
        importlib.import_module(spec.func.rpartition(".")[0])


class Worker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        bootstrap()
        _import_jobs()
        super().__init__(*args, **kwargs)

    def start_scheduler(self, burst: bool = False, logging_level: str | None = None,
                        date_format: str = DEFAULT_LOGGING_DATE_FORMAT, log_format: str = DEFAULT_LOGGING_FORMAT):
        """rq's own start_scheduler, with a shorter interval (the rest is unchanged)."""
        self.scheduler = RQScheduler(
            self.queues, connection=self.connection, interval=SCHEDULER_INTERVAL,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
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
