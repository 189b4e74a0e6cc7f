"""The dashboard: live counters, the agents × status matrix, collections over time, slow payers.

Each element is its own partial that refreshes itself by polling (STYLE habit 4).
Figures come from webapp.domain.reports (read only); charts are server-rendered SVG (webapp.web.charts).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, redirect, url_for

from webapp.config import settings
from webapp.domain import reports
from webapp.storage.models import (
    Notification,
    NotificationStatus,
    Payment,
    PaymentStatus,
    RequestStatus,
    Role,
)
from webapp.web import charts
from webapp.web.access import access
from webapp.web.htmx import is_partial_request, render

bp = Blueprint("dashboard", __name__)
COLLECTION_DAYS = 14
SLOW_DAYS = 30


def counters(now: datetime | None = None) -> dict[str, int]:
    """Pending requests, payments received today (in the configured zone), review queue, failed notifications."""
    zone = settings().zone
    local_now = (now or datetime.now(zone)).astimezone(zone)
    start_of_day = datetime.combine(local_now.date(), time.min, tzinfo=zone)
    return {
        "pending_requests": sum(per_status.get(RequestStatus.PENDING, 0)
                                for per_status in reports.request_counts(every_agent=True).values()),
        "payments_today": Payment.select()
        .where(Payment.received_at >= start_of_day, Payment.received_at < start_of_day + timedelta(days=1))
        .count(),
        # The same number as the navigation badge: payments waiting for staff.
        "review_queue": Payment.select().where(Payment.status.in_((PaymentStatus.UNMATCHED, PaymentStatus.REVIEW))).count(),
        "failed_notifications": Notification.select().where(Notification.status == NotificationStatus.FAILED).count(),
    }


def _counters_context() -> dict:
    return {"counters": counters(), "today": datetime.now(settings().zone).date().isoformat()}


def _matrix_context() -> dict:
    return {"matrix": reports.agent_status_matrix(), "statuses": reports.MATRIX_STATUSES}


def _collections_context() -> dict:
    """The configured currency as a chart (even when empty), other currencies as totals."""
    per_currency = reports.collected_per_day(COLLECTION_DAYS)
    main = settings().currency
    series = per_currency.get(main) or [(day, 0) for day in reports.last_days(COLLECTION_DAYS)]
    chart = charts.daily_chart(series, main, chart_id="collections-chart",
                               title=f"{main} collected per day, last {COLLECTION_DAYS} days")
    others = [(c, sum(a for _, a in per_currency[c])) for c in reports.main_first(per_currency) if c != main]
    return {"collections": {"currency": main, "total": sum(a for _, a in series), "chart": chart,
                            "series": series, "others": others, "days": COLLECTION_DAYS}}


def _slow_context() -> dict:
    return {"slow_paid": list(reports.slowest_paid(SLOW_DAYS)), "oldest_pending": list(reports.oldest_pending()),
            "duration": reports.duration, "slow_days": SLOW_DAYS}


@bp.get("/")
@access(Role.VIEWER)
def index():
    return render("pages/dashboard/index.html", "partials/dashboard/counters.html",
                  **_counters_context(), **_matrix_context(), **_collections_context(), **_slow_context(),
                  fees=reports.fees_summary(settings().currency), fee_currency=settings().currency)


@bp.get("/dashboard/counters")
@access(Role.VIEWER)
def live_counters():
    return _partial("counters", _counters_context())


def _partial(name: str, context: dict):
    """An element's partial for htmx; a direct visit (the poll URL opened by hand) goes to the dashboard."""
    if not is_partial_request():
        return redirect(url_for("dashboard.index"))
    return render("pages/dashboard/index.html", f"partials/dashboard/{name}.html", **context)


@bp.get("/dashboard/matrix")
@access(Role.VIEWER)
def live_matrix():
    return _partial("matrix", _matrix_context())


@bp.get("/dashboard/collections")
@access(Role.VIEWER)
def live_collections():
    return _partial("collections", _collections_context())


@bp.get("/dashboard/slow")
@access(Role.VIEWER)
def live_slow():
    return _partial("slow", _slow_context())
