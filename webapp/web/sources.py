"""The sources page: one card per source with its state, last contact, alarms, progress and settings, live.

Each card (`_card`) says what staff need at a glance: the state (ok / alarm / silent / stale /
disabled), the last contact relative ("3 min ago") and in the configured zone, the alarms in words,
a progress bar while a mailbox catches up (the only kind that records done / total; the others
show their last pass and the cursor), the counts, and the settings as a readable list (secrets are
never in a source's config, only the names of the environment variables holding them).

Viewers read; admins run a pass now (the kind's job from sources.PASS_JOBS, enqueued
only when webapp.plumbing.jobqueue.JOBS has it) and enable / disable a source
(sources.set_enabled, audited; the schedules are synced again afterwards, and the
scheduler process does so every 15 s anyway).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, abort, flash, redirect, url_for

from webapp.config import settings
from webapp.domain import reports, sources
from webapp.plumbing import jobqueue
from webapp.storage.models import Role, Source, SourceKind, utcnow
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("sources", __name__, url_prefix="/sources")
log = logging.getLogger(__name__)


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


def ago(value: datetime | None, now: datetime) -> str:
    """How long ago, read at a glance: "just now", "45 s ago", "3 min ago", "2 h 5 min ago", "3 d ago"."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    return "just now" if seconds < 10 else f"{reports.duration(seconds)} ago"  # < 10: or a clock a little ahead


def _label(key: str) -> str:
    words = key.replace("_", " ").strip()
    for short, shown in (("url", "URL"), ("id", "ID"), ("ssl", "SSL"), ("imap", "IMAP")):
        words = " ".join(shown if w == short else w for w in words.split(" "))
    return words[:1].upper() + words[1:]


def settings_rows(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A source's config as (label, text) lines: nested parts flattened ("Login › URL"), lists joined,
    `*_env` keys said as the environment variable they are read from. Secrets are refused when a
    source is saved (domain.sources.validate), so there are none to hide; their names are shown."""
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        key = str(key)
        env = key.endswith("_env") and isinstance(value, str)
        label = (prefix + " › " if prefix else "") + _label(key[:-4] if env else key)
        if isinstance(value, dict) and value:
            rows += settings_rows(value, label)
        elif env:
            rows.append((label, f"read from the environment variable {value}"))
        elif isinstance(value, (list, tuple)):
            rows.append((label, ", ".join(str(v) for v in value) or "none"))
        elif isinstance(value, bool):
            rows.append((label, "yes" if value else "no"))
        else:
            rows.append((label, "—" if value in (None, "", {}) else str(value)))
    return rows


@dataclass
class Progress:
    """A catch-up in numbers (done of total), or else what the last pass did."""

    done: int | None = None
    total: int | None = None
    running: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_pass: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100


def _progress(state: dict[str, Any]) -> Progress | None:
    raw = state.get("progress")
    if not isinstance(raw, dict):
        return None
    done, total = raw.get("done"), raw.get("total")
    numbers = isinstance(done, int) and isinstance(total, int) and not isinstance(done, bool)
    return Progress(done=done if numbers else None, total=total if numbers else None,
                    running=bool(raw.get("running")), started_at=_when(raw.get("started_at")),
                    finished_at=_when(raw.get("finished_at")),
                    last_pass=[(_label(k), v) for k, v in sorted(raw.items())
                               if k not in ("done", "total", "running", "started_at", "finished_at")])


@dataclass
class Card:
    source: Source
    freshness: sources.Freshness
    health: str  # ok / alarm / silent / stale / disabled
    contact_at: datetime | None
    times: list[tuple[str, datetime | None]]
    progress: Progress | None
    cursor: str | None
    counts: list[tuple[str, Any]]
    settings: list[tuple[str, str]]


def _health(source: Source, freshness: sources.Freshness) -> str:
    if not source.enabled:
        return "disabled"
    if freshness.alarms:
        return "silent" if set(freshness.alarms) == {"silent"} else "alarm"
    return "ok" if freshness.ok else "stale"


def _card(source: Source) -> Card:
    freshness = sources.freshness(source)
    state = source.state or {}
    times = [("Last pass", freshness.last_run_at), ("Last successful pass", freshness.last_ok_at)]
    times += [(label, _when(state.get(key))) for key, label in (("last_mail_at", "Last mail"),
                                                                ("last_sms_at", "Last SMS")) if state.get(key)]
    cursor = (source.cursor or {}).get("last_uid") if source.kind == SourceKind.MAILBOX else None
    counts = state.get("counts") if isinstance(state.get("counts"), dict) else {}
    return Card(source=source, freshness=freshness, health=_health(source, freshness),
                contact_at=_when(state.get("last_contact_at")), times=times, progress=_progress(state),
                cursor=f"mail UID {cursor}" if cursor else None,
                counts=[(k.replace("_", " "), v) for k, v in sorted(counts.items())],
                settings=[("Checked", f"every {source.interval_s} s"), *settings_rows(source.config or {})])


def _page(status: int = 200):
    cards = [_card(source) for source in Source.select().order_by(Source.name)]
    return render("pages/sources/index.html", "partials/sources/cards.html", status=status, cards=cards,
                  now=utcnow(), ago=ago, runnable=runnable, zone=settings().timezone)


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
