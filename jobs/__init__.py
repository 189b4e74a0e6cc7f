"""What RQ workers and the scheduler run. Imports webapp; webapp never imports jobs.

@job wraps a job function: the app is built once per process (settings, database
handle), and each run gets an app context and its own database connection,
closed when the run ends, whatever happens. Called inline where an app context
already exists (the flask CLI), it uses that app.
"""
from __future__ import annotations

import functools
import logging
import threading
from typing import Callable

from flask import Flask

from webapp.plumbing import logs

log = logging.getLogger("jobs")

_app: Flask | None = None
_lock = threading.Lock()


def bootstrap() -> Flask:
    """The process's app (built on first use from the environment)."""
    global _app
    with _lock:
        if _app is None:
            from webapp import create_app

            _app = create_app()
        return _app


def job(func: Callable) -> Callable:
    """Run `func` inside an app context with a fresh database connection."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        from flask import current_app, has_app_context

        from webapp.storage.db import database

        # Run inline (flask CLI `sources run`, tests): use the app already in charge.
        app = current_app._get_current_object() if has_app_context() else bootstrap()
        with app.app_context():
            database.connect(reuse_if_open=True)
            try:
                with logs.bind(**_log_context(dotted, args)):
                    return func(*args, **kwargs)
            finally:
                if not database.is_closed():
                    database.close()

    dotted = f"{func.__module__}.{func.__name__}"
    return run


# What a job's first argument names, for the `source` / `reference` fields of its log lines.
_SOURCE_JOBS = ("jobs.portal.run_pass", "jobs.mailbox.fetch", "jobs.gateway.poll", "jobs.gateway.reread")
_REQUEST_JOBS = ("jobs.gateway.collect",)
_NOTIFICATION_JOBS = ("jobs.whatsapp.send_notification",)


def _log_context(dotted: str, args: tuple) -> dict:
    """{"source": name} or {"reference": …} for a job whose first argument is such an id; {} otherwise."""
    from peewee import DatabaseError

    from webapp.storage.models import Notification, PaymentRequest, Source

    if not args or not isinstance(args[0], int):
        return {}
    try:
        if dotted in _SOURCE_JOBS:
            source = Source.get_or_none(Source.id == args[0])
            return {"source": source.name} if source else {}
        if dotted in _REQUEST_JOBS:
            request = PaymentRequest.get_or_none(PaymentRequest.id == args[0])
            return {"reference": request.reference} if request else {}
        if dotted in _NOTIFICATION_JOBS:
            row = (PaymentRequest.select(PaymentRequest.reference).join(Notification)
                   .where(Notification.id == args[0]).first())
            return {"reference": row.reference} if row else {}
    except DatabaseError:  # the job itself meets the same error and reports it
        return {}
    return {}
