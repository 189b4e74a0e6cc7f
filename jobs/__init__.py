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
                return func(*args, **kwargs)
            finally:
                if not database.is_closed():
                    database.close()

    return run
