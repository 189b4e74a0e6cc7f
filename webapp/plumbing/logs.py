"""Logging for every process: one handler on the root logger, one line per event, text or JSON.

configure(settings) is idempotent (create_app calls it in every process: web, workers, the
scheduler, the watcher). It replaces any handler rq installed on its own loggers before the
app existed (`rq worker` sets up `rq.worker` first, then our root handler printed every rq
line a second time), and it demotes the routine lines of recurring jobs and source passes
(rq's "fast: jobs.schedule.heartbeat() (paywatch-recurring-heartbeat)" every 5 s) to DEBUG.

`LOG_FORMAT=json` writes one JSON object per line (python-json-logger) with `request_id`
(web), `job_id` (RQ), `source` and `reference` when known; bind() sets the last two for
a block of code. Secrets never reach a log line: nothing here logs settings, and URLs
are printed through safe_url().
"""
from __future__ import annotations

import contextvars
import logging
import sys
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
CONTEXT_FIELDS = ("request_id", "job_id", "source", "reference")
# rq's per-job lines about these job ids are routine: DEBUG, not INFO.
ROUTINE_IDS = ("paywatch-recurring-", "paywatch-source-")
RQ_LOGGERS = ("rq.worker", "rq.job", "rq.scheduler", "rq_scheduler.scheduler")

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("paywatch_log_context", default={})


class Context(logging.Filter):
    """Adds request_id, job_id, source and reference to every record (None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, bound.get(name))
        if record.request_id is None:
            record.request_id = _request_id()
        if record.job_id is None:
            record.job_id = _job_id()
        return True


class Routine(logging.Filter):
    """Demotes rq's INFO lines about recurring jobs and source passes to DEBUG (dropped unless
    the root logger is at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith(("rq.", "rq_scheduler")):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left to the formatter to report
            return True
        if any(prefix in message for prefix in ROUTINE_IDS) or _routine_completion(message):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _routine_completion(message: str) -> bool:
    """rq's "Successfully completed <description> job in …" names no id: judged by the job's name."""
    if not message.startswith("Successfully completed "):
        return False
    from webapp.plumbing.jobqueue import RECURRING

    return message[len("Successfully completed "):].split(" job in ", 1)[0] in RECURRING


class _PaywatchHandler(logging.StreamHandler):
    """The one handler configure() installs (recognised, so a second call replaces it)."""


def configure(level: str = "INFO", fmt: str = "text", stream=None) -> logging.Handler:
    """Install the single root handler (replacing an earlier one) and quiet rq's own handlers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _PaywatchHandler) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)  # ours from an earlier call, or a basicConfig() one
    handler = _PaywatchHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS + "".join(f" %({f})s" for f in CONTEXT_FIELDS),
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Context())
    handler.addFilter(Routine())
    root.addHandler(handler)
    root.setLevel(level)
    for name in RQ_LOGGERS:
        logger = logging.getLogger(name)
        for own in list(logger.handlers):  # rq's ColorizingStreamHandlers: the second copy of each line
            logger.removeHandler(own)
        logger.propagate = True
    # rq sets its loggers' level from the command line; our root handler decides instead.
    logging.getLogger("rq.worker").setLevel(logging.NOTSET)
    logging.getLogger("rq.job").setLevel(logging.NOTSET)
    return handler


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Attach `source=…` / `reference=…` (or any of CONTEXT_FIELDS) to the log lines of a block."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def safe_url(url: str) -> str:
    """`url` without its password, for printing and logging."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _request_id() -> str | None:
    from flask import g, has_request_context

    return g.get("request_id") if has_request_context() else None


def _job_id() -> str | None:
    from rq import get_current_job

    try:
        job = get_current_job()
    except Exception:  # outside a worker rq may have no connection to ask
        return None
    return job.id if job is not None else None
