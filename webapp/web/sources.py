"""The sources page: every source with its freshness, alarms (red), last error and progress, live.

Viewers read; admins run a pass now (the kind's job from sources.PASS_JOBS, enqueued
only when webapp.plumbing.jobqueue.JOBS has it) and enable / disable a source
(sources.set_enabled, audited; the schedules are synced again afterwards, and the
scheduler process does so every minute anyway).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, url_for

from webapp.domain import sources
from webapp.plumbing import jobqueue
from webapp.storage.models import Role, Source
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("sources", __name__, url_prefix="/sources")
log = logging.getLogger(__name__)
STATE_TIMES = ("last_contact_at", "last_mail_at")


def _when(value) -> datetime | None:
    """A time kept in Source.state (ISO text) as an aware datetime, or None."""
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed and parsed.tzinfo is None else parsed


def runnable(kind: str) -> bool:
    return sources.PASS_JOBS.get(kind) in jobqueue.JOBS


def _rows():
    return [(source, sources.freshness(source)) for source in Source.select().order_by(Source.name)]


def _page(status: int = 200):
    return render("pages/sources/index.html", "partials/sources/table.html", status=status, rows=_rows(),
                  when=_when, runnable=runnable)


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _page()


def _source_or_404(source_id: int) -> Source:
    source = Source.get_or_none(Source.id == source_id)
    if source is None:
        abort(404, f"There is no source #{source_id}.")
    return source


@bp.post("/<int:source_id>/run")
@access(Role.ADMIN)
def run_now(source_id: int):
    source = _source_or_404(source_id)
    job = sources.PASS_JOBS.get(source.kind)
    if job not in jobqueue.JOBS:
        flash(f"{source.kind} sources cannot be run in this version: no {job or 'pass'} job is registered.", "error")
        return _page(status=409)
    try:
        queued = jobqueue.enqueue(job, source.id)
    except Exception as exc:  # Redis down: say so, change nothing
        log.warning("source %s: run-now not queued: %s", source.name, exc)
        flash(f"Could not queue a pass of {source.name}: the job queue did not answer ({type(exc).__name__}).",
              "error")
        return _page(status=503)
    flash(f"A pass of {source.name} is queued ({queued.id}).", "success")
    return redirect(url_for("sources.index"))


@bp.post("/<int:source_id>/enabled/<int:enabled>")
@access(Role.ADMIN)
def set_enabled(source_id: int, enabled: int):
    source = sources.set_enabled(_source_or_404(source_id).name, bool(enabled), actor=actor())
    flash(f"Source {source.name} {'enabled' if source.enabled else 'disabled'}.", "success")
    _reschedule(source.name)
    return redirect(url_for("sources.index"))


def _reschedule(name: str) -> None:
    """Sync the recurring passes now, so a disabled source stops and an enabled one starts."""
    try:
        from rq_scheduler import Scheduler

        sources.sync_schedule(Scheduler(connection=jobqueue.redis_connection()))
    except Exception as exc:  # the change is saved; the scheduler process syncs within a minute of Redis answering
        log.warning("source %s: schedules not synced now: %s", name, exc)
        flash("The change is saved. The job queue did not answer, so the schedule follows it once the queue "
              "is back (within a minute).", "warning")
