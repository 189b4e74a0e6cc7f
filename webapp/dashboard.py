"""The dashboard: counters that refresh by polling a partial."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint

from webapp import settings
from webapp.access import access
from webapp.htmx import render
from webapp.models import (
    Notification,
    NotificationStatus,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RequestStatus,
    Role,
)

bp = Blueprint("dashboard", __name__)


def counters(now: datetime | None = None) -> dict[str, int]:
    """Pending requests, payments received today (in the configured zone), review queue, failed notifications."""
    zone = settings().zone
    local_now = (now or datetime.now(zone)).astimezone(zone)
    start_of_day = datetime.combine(local_now.date(), time.min, tzinfo=zone)
    return {
        "pending_requests": PaymentRequest.select().where(PaymentRequest.status == RequestStatus.PENDING).count(),
        "payments_today": Payment.select()
        .where(Payment.received_at >= start_of_day, Payment.received_at < start_of_day + timedelta(days=1))
        .count(),
        "review_queue": PaymentRequest.select().where(PaymentRequest.status == RequestStatus.REVIEW).count()
        + Payment.select().where(Payment.status.in_((PaymentStatus.UNMATCHED, PaymentStatus.REVIEW))).count(),
        "failed_notifications": Notification.select().where(Notification.status == NotificationStatus.FAILED).count(),
    }


def _render():
    today = datetime.now(settings().zone).date().isoformat()
    return render("pages/dashboard/index.html", "partials/dashboard/counters.html", counters=counters(), today=today)


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _render()


@bp.get("/dashboard/counters")
@access(Role.VIEWER)
def live_counters():
    return _render()
