"""The audit log page (viewers read): filters, keyset pages, and a streamed CSV export.

Filters come from the query string, so a filtered view is a link and the export
takes the same filters:
- action: an exact action ("request.paid") when one exists by that name, else a
  prefix ("request." or "request" → every request.* action);
- actor: "user:3", an e-mail (→ that user), or a prefix ending in ":" or "*" ("api:");
- subject: text anywhere in the subject ("PW-7KQ" finds "request:PW-7KQ2M9");
- from / to: dates (YYYY-MM-DD) in the configured zone, both days included.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator

from flask import Blueprint, Response, request, stream_with_context

from webapp.config import settings
from webapp.domain import input_bounds
from webapp.storage.models import Event, Role, User
from webapp.web.access import access
from webapp.web.htmx import render
from webapp.web.listing import keyset_page
from webapp.web.timeline import actor_names

bp = Blueprint("audit", __name__, url_prefix="/audit")

FILTERS = ("action", "actor", "subject", "from", "to")
CSV_COLUMNS = ("at", "at_local", "actor", "action", "subject", "details")
EXPORT_BATCH = 500  # rows read per query while streaming: memory stays flat however long the log
_DETAIL_WIDTH = 80


def actions() -> list[str]:
    """The action filter's suggestions: each family ("request.") then every distinct action."""
    names = [row.action for row in Event.select(Event.action).distinct().order_by(Event.action)]
    return sorted({name.split(".")[0] + "." for name in names if "." in name}) + names


def _local_day_start(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), time.min, tzinfo=settings().zone)


def filtered(args: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """(Event query with the filters in `args` applied, {filter: problem} for unusable ones)."""
    query, errors = Event.select(), {}
    action = args.get("action", "").strip()
    if action:
        exact = Event.select().where(Event.action == action).exists()
        query = query.where(Event.action == action if exact else Event.action.startswith(action.rstrip("*")))
    actor = args.get("actor", "").strip()
    if actor:
        if "@" in actor:
            user = User.get_or_none(User.email == actor.lower())
            actor = f"user:{user.id}" if user else actor
        if actor.endswith(("*", ":")):
            query = query.where(Event.actor.startswith(actor.rstrip("*")))
        else:
            query = query.where(Event.actor == actor)
    subject = args.get("subject", "").strip()
    if subject:
        query = query.where(Event.subject.contains(subject))
    for name in ("from", "to"):
        text = args.get(name, "").strip()
        if not text:
            continue
        try:
            start = _local_day_start(text)
        except ValueError:
            errors[name] = "expected a date like 2025-01-31"
            continue
        if input_bounds.date_problem(start.date()):
            errors[name] = input_bounds.date_problem(start.date())
            continue
        # Local midnights, so a day means the configured zone's day, whatever UTC says.
        query = query.where(Event.at >= start) if name == "from" else query.where(Event.at < start + timedelta(days=1))
    return query, errors


def compact(details: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(key, short value, full value) per detail, values as JSON unless plain text."""
    out = []
    for key, value in sorted((details or {}).items()):
        full = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        short = full if len(full) <= _DETAIL_WIDTH else full[: _DETAIL_WIDTH - 1] + "…"
        out.append((key, short, full))
    return out


@bp.get("/")
@access(Role.VIEWER)
def index():
    query, errors = filtered(request.args)
    page = keyset_page(query, Event)
    return render(
        "pages/audit/index.html",
        "partials/audit/table.html",
        status=400 if errors else 200,
        events=page,  # not `page`: render()'s first parameter has that name
        filters={name: request.args.get(name, "") for name in FILTERS},
        errors=errors,
        actions=actions(),
        actor_names=actor_names(page.items, emails=True),
        compact=compact,
    )


def csv_rows(query) -> Iterator[str]:
    """The CSV text of `query`'s events, newest first, a header then one line per event."""
    zone = settings().zone
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    before = None
    while True:
        batch = query.order_by(Event.id.desc()).limit(EXPORT_BATCH)
        if before is not None:
            batch = batch.where(Event.id < before)
        rows = list(batch)
        for e in rows:
            writer.writerow((
                e.at.isoformat(),
                e.at.astimezone(zone).isoformat(),
                e.actor,
                e.action,
                e.subject,
                json.dumps(e.details or {}, sort_keys=True, default=str),
            ))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_BATCH:
            return
        before = rows[-1].id


@bp.get("/export.csv")
@access(Role.VIEWER)
def export():
    query, errors = filtered(request.args)
    if errors:
        return Response("; ".join(f"{k}: {v}" for k, v in errors.items()) + "\n", 400, mimetype="text/plain")
    stamp = datetime.now(settings().zone).strftime("%Y-%m-%d")
    return Response(
        stream_with_context(csv_rows(query)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="paywatch-audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
