"""The operators' daily summary (e-mail and WhatsApp at `daily_summary_at` in the configured zone).

text(day) describes one local calendar day: collections by source and by agent (per currency,
never mixed), payments left unmatched, requests in review, messages that failed, open alerts.
send_if_due(now) queues it once per day (dedupe keys), from the alerts sweep.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from peewee import JOIN, fn

from webapp.config import settings
from webapp.domain import money, options, outbox, reports
from webapp.storage.models import (Agent, Alert, Notification, NotificationStatus, Payment, PaymentRequest,
                                   PaymentStatus, RequestStatus, utcnow)


def _bounds(day: date) -> tuple[datetime, datetime]:
    zone = settings().zone
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def _totals(rows) -> str:
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, currency, amount in rows:
        per[name or "(none)"][currency] += amount or 0
    if not per:
        return "  none\n"
    return "".join(f"  {name}: " + ", ".join(money.display(v, c) for c, v in sorted(cur.items())) + "\n"
                   for name, cur in sorted(per.items()))


def text(day: date) -> str:
    """The summary of local day `day`, as plain text."""
    start, end = _bounds(day)
    by_source = (Payment.select(Payment.source, Payment.currency, fn.SUM(Payment.amount_minor))
                 .where(Payment.status == PaymentStatus.CONFIRMED, Payment.received_at >= start, Payment.received_at < end)
                 .group_by(Payment.source, Payment.currency).tuples())
    by_agent = (PaymentRequest.select(Agent.name, PaymentRequest.currency, fn.SUM(PaymentRequest.amount_minor))
                .join(Agent, JOIN.LEFT_OUTER)
                .where(reports.PAID, PaymentRequest.paid_at >= start,
                       PaymentRequest.paid_at < end)
                .group_by(Agent.name, PaymentRequest.currency).tuples())
    unmatched = Payment.select().where(Payment.status == PaymentStatus.UNMATCHED, Payment.received_at >= start,
                                       Payment.received_at < end).count()
    review = PaymentRequest.select().where(PaymentRequest.status == RequestStatus.REVIEW).count()
    failed = Notification.select().where(Notification.status == NotificationStatus.FAILED,
                                         Notification.created_at >= start, Notification.created_at < end).count()
    alerts = [f"  {a.kind}: {a.key}\n" for a in Alert.select().where(Alert.open_key.is_null(False)).order_by(Alert.id)]
    return (f"Paywatch, {day.isoformat()} ({settings().timezone})\n\n"
            f"Collected by source:\n{_totals(by_source)}\n"
            f"Collected by agent:\n{_totals(by_agent)}\n"
            f"Payments left unmatched today: {unmatched}\n"
            f"Requests in review now: {review}\n"
            f"WhatsApp messages failed today: {failed}\n"
            f"Open alerts: {len(alerts)}\n{''.join(alerts)}")


def due_day(now: datetime) -> date | None:
    """The local day whose summary is due at `now` (its time has passed today), or None."""
    at = options.get("daily_summary_at")
    if not at:
        return None
    local = now.astimezone(settings().zone)
    hours, minutes = (int(part) for part in at.split(":"))
    return local.date() if (local.hour, local.minute) >= (hours, minutes) else None


def send_if_due(now: datetime | None = None) -> bool:
    """Queue today's summary (mail + WhatsApp) once its time has come; True when queued now."""
    from webapp.domain import alerts

    now = now or utcnow()
    day = due_day(now)
    if day is None:
        return False
    key = f"summary:{day.isoformat()}"
    body = None
    sent = False
    if settings().alert_emails and settings().smtp_url:
        body = text(day)
        sent = alerts.mail(f"[Paywatch] daily summary {day.isoformat()}", body, key) is not None
    if options.get("admin_phones"):
        if not Notification.select().where(Notification.dedupe_key.startswith(f"{outbox.Kind.ADMIN_ALERT}:{key}:")).exists():
            sent = bool(outbox.admin_alert(key, body or text(day))) or sent
    return sent
