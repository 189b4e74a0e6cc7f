"""The dashboard: live counters, the agents × status matrix, collections over time, slow payers.

Each element is its own partial that refreshes itself by polling (STYLE habit 4).
Figures come from webapp.domain.reports (read only); charts are server-rendered SVG (webapp.web.charts).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, redirect, url_for

from webapp.config import settings
from webapp.domain import reports
from webapp.domain.money import display
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
from webapp.web.review import review_counts

bp = Blueprint("dashboard", __name__)
COLLECTION_DAYS = 14
SLOW_DAYS = 30


def counters(now: datetime | None = None, *, requests: dict | None = None,
             review: dict | None = None) -> dict[str, int]:
    """Pending requests, payments received today (in the configured zone), review queue, failed notifications.
    `requests` (reports.request_counts(every_agent=True)) and `review` (review.review_counts()): when
    the caller read them already."""
    zone = settings().zone
    local_now = (now or datetime.now(zone)).astimezone(zone)
    start_of_day = datetime.combine(local_now.date(), time.min, tzinfo=zone)
    requests = reports.request_counts(every_agent=True) if requests is None else requests
    return {
        "pending_requests": sum(per_status.get(RequestStatus.PENDING, 0) for per_status in requests.values()),
        "payments_today": Payment.select()
        .where(Payment.received_at >= start_of_day, Payment.received_at < start_of_day + timedelta(days=1))
        .count(),
        # The same number as the navigation badge: payments waiting for staff.
        "review_queue": review["queue"] if review is not None else sum(
            reports.payment_counts().get(status, 0) for status in (PaymentStatus.UNMATCHED, PaymentStatus.REVIEW)),
        "failed_notifications": Notification.select().where(Notification.status == NotificationStatus.FAILED).count(),
    }


def _counters_context(**read) -> dict:
    return {"counters": counters(**read), "today": datetime.now(settings().zone).date().isoformat()}


def _matrix_context(requests: dict | None = None) -> dict:
    return {"matrix": reports.agent_status_matrix(requests), "statuses": reports.MATRIX_STATUSES}


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


def _pictures_context() -> dict:
    """The charts of the last 30 days: time to pay, collections by source and by agent (the configured
    currency), unmatched and review per day, WhatsApp outcomes per day. Each figure's `table` holds
    its figures as cells; a figure with nothing in the window is None (the page says so instead)."""
    main, days = settings().currency, reports.PICTURE_DAYS
    money = lambda minor: display(int(minor), main)  # noqa: E731
    to_pay = reports.time_to_pay_histogram()
    short = [label.replace(" min", "m").replace(" h", "h").replace(" d", "d") for label, _ in to_pay]
    pictures = {"days": days, "currency": main, "time_to_pay": None, "by_source": None, "by_agent": None,
                "review_trend": None, "whatsapp": None}
    if any(n for _, n in to_pay):
        pictures["time_to_pay"] = {"table": to_pay, "chart": charts.bar_chart(
            list(zip(short, [n for _, n in to_pay])), full_labels=[label for label, _ in to_pay], every_label=True,
            chart_id="time-to-pay-chart", title=f"Paid requests by time to pay, last {days} days")}
    for what in ("source", "agent"):
        rows = reports.collections_by(what, main)
        if rows:
            chart = charts.hbar_chart(rows, fmt=money, chart_id=f"collections-by-{what}-chart",
                                      title=f"{main} received by {what}, last {days} days")
            pictures[f"by_{what}"] = {"table": [(name, money(amount)) for name, amount in rows], "chart": chart}
    for key, series, names, title in (
        ("review_trend", reports.review_trend(), ("unmatched", "review"),
         "Payments that went unmatched or to review per day"),
        ("whatsapp", reports.whatsapp_outcomes(), ("sent", "delivered", "failed"), "WhatsApp messages per day"),
    ):
        if any(any(values) for _, *values in series):
            short_days, full_days = charts.day_labels([day for day, *_ in series])
            columns = [(label, full, values) for label, full, (_, *values) in zip(short_days, full_days, series)]
            chart = charts.stacked_chart(columns, names, chart_id=f"{key.replace('_', '-')}-chart",
                                         title=f"{title}, last {days} days")
            pictures[key] = {"table": [(full, *values) for _, full, values in columns], "names": names, "chart": chart}
    return {"pictures": pictures}


def _slow_context() -> dict:
    return {"slow_paid": list(reports.slowest_paid(SLOW_DAYS)), "oldest_pending": list(reports.oldest_pending()),
            "duration": reports.duration, "slow_days": SLOW_DAYS}


@bp.get("/")
@access(Role.VIEWER)
def index():
    # Collections, slow payers and the charts load right after the page (each reads days of
    # payments): the page itself answers from the counters and the matrix. The request tally is read
    # once for both, and the review counts once for the counters and the navigation badge.
    requests, review = reports.request_counts(every_agent=True), review_counts()
    return render("pages/dashboard/index.html", "partials/dashboard/counters.html",
                  **_counters_context(requests=requests, review=review), **_matrix_context(requests),
                  review_badge=review, collections=None, slow_paid=None, slow_days=SLOW_DAYS, pictures=None,
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


@bp.get("/dashboard/pictures")
@access(Role.VIEWER)
def live_pictures():
    return _partial("pictures", _pictures_context())


@bp.get("/dashboard/slow")
@access(Role.VIEWER)
def live_slow():
    return _partial("slow", _slow_context())
