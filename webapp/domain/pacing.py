"""When a WhatsApp message may go: caps per minute / hour / day and per recipient, and
quiet hours in the configured zone. Over a cap means later, never dropped.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import fn

from webapp.domain.outbox import Kind
from webapp.storage.models import Notification, NotificationStatus

WINDOWS = (
    ("cap_per_minute", timedelta(minutes=1), False),
    ("cap_per_hour", timedelta(hours=1), False),
    ("cap_per_day", timedelta(days=1), False),
    ("cap_per_recipient_hour", timedelta(hours=1), True),
    ("cap_per_recipient_day", timedelta(days=1), True),
)


def quiet_until(now: datetime, start: str, end: str, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet period `now` falls in (aware UTC), or None outside it / when unset."""
    if not start or not end or start == end:
        return None
    local = now.astimezone(zone)
    begin, finish = (time.fromisoformat(start), time.fromisoformat(end))
    clock = local.time()
    inside = begin <= clock < finish if begin < finish else (clock >= begin or clock < finish)
    if not inside:
        return None
    day = local.date() if clock < finish else local.date() + timedelta(days=1)
    return datetime.combine(day, finish, tzinfo=zone).astimezone(now.tzinfo)


def _oldest_sent(since: datetime, phone: str | None) -> tuple[int, datetime | None]:
    query = Notification.select(fn.COUNT(Notification.id), fn.MIN(Notification.sent_at)).where(
        Notification.status == NotificationStatus.SENT, Notification.sent_at > since)
    if phone is not None:
        query = query.where(Notification.phone == phone)
    count, oldest = query.scalar(as_tuple=True)
    return count, Notification.sent_at.python_value(oldest) if oldest else None


def hold_until(notification: Notification, now: datetime, values: dict, zone: ZoneInfo) -> tuple[datetime, str] | None:
    """(when it may go, why) if this notification must wait now; None when it may go at once."""
    if notification.kind in Kind.REMINDERS or values.get("quiet_holds_transactional"):
        until = quiet_until(now, values.get("quiet_start", ""), values.get("quiet_end", ""), zone)
        if until is not None:
            return until, f"quiet hours until {until.astimezone(zone):%H:%M}"
    for key, window, per_recipient in WINDOWS:
        cap = values[key]
        count, oldest = _oldest_sent(now - window, notification.phone if per_recipient else None)
        if count >= cap and oldest is not None:
            who = f" to {notification.phone}" if per_recipient else ""
            return oldest + window + timedelta(seconds=1), f"{cap} messages{who} per {_words(window)} reached"
    return None


def _words(window: timedelta) -> str:
    return {60: "minute", 3600: "hour", 86400: "day"}[int(window.total_seconds())]
