"""The audit log page (viewers read): filters, sortable columns, keyset pages, and a streamed CSV export.

Filters come from the query string, so a filtered view is a link and the export
takes the same filters:
- action: an exact action ("request.paid") when one exists by that name, else a
  prefix ("request." or "request" → every request.* action);
- actor: "user:3", an e-mail (→ that user), or a prefix ending in ":" or "*" ("api:");
- subject: text anywhere in the subject ("PW-7KQ" finds "request:PW-7KQ2M9");
- from / to: dates (YYYY-MM-DD) in the configured zone, both days included.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, request

from webapp.config import settings
from webapp.domain import input_bounds
from webapp.storage.models import Event, Role, User
from webapp.web.access import access
from webapp.web.htmx import render
from webapp.web.listing import (
    SortColumn, Sortable, csv_lines, csv_response, in_order, keyset_page, local_iso, refused_export,
)
from webapp.web.timeline import actor_names

bp = Blueprint("audit", __name__, url_prefix="/audit")

FILTERS = ("action", "actor", "subject", "from", "to")
CSV_COLUMNS = ("at", "at_local", "actor", "action", "subject", "details")
EXPORT_BATCH = 500  # rows read per query while streaming: memory stays flat however long the log
_DETAIL_WIDTH = 80
# The log's sortable columns (a whitelist); newest first unless asked otherwise.
SORTS = Sortable(
    Event,
    SortColumn("at", Event.at),
    SortColumn("actor", Event.actor, first="asc"),
    SortColumn("action", Event.action, first="asc"),
    SortColumn("subject", Event.subject, first="asc"),
)


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
    sort = SORTS.read()
    page = keyset_page(query, Event, sort=sort)
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
        sort=sort,
        endpoint="audit.index",
    )


def _csv_cells(e: Event) -> tuple:
    return (e.at.isoformat(), local_iso(e.at), e.actor, e.action, e.subject,
            json.dumps(e.details or {}, sort_keys=True, default=str))


@bp.get("/export.csv")
@access(Role.VIEWER)
def export():
    query, errors = filtered(request.args)
    if errors:
        return refused_export(f"{k}: {v}" for k, v in errors.items())
    rows = in_order(query, SORTS.read(), batch=EXPORT_BATCH)
    return csv_response("audit", csv_lines(CSV_COLUMNS, rows, _csv_cells, flush_every=EXPORT_BATCH))
