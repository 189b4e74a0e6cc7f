"""When a WhatsApp message may go: two pacing budgets, caps per hour / day and per
recipient, and quiet hours in the configured zone. Over a cap means later, never dropped.

Two budgets, so a confirmation never queues behind a reminder rule's bulk:
- bulk (reminders): `cap_per_minute`, and the hour and day caps, which count every
  message sent (so reminders make room for the rest);
- transactional (confirmations, pending alerts, expiry and rejection notices, admin
  alerts): `cap_transactional_per_minute`, and never held by the hour or day caps.
The per-recipient caps apply to every message.

Each per-minute budget is a token bucket kept in Redis (GCRA: one key per budget
holding the theoretical arrival time), shared by every worker: up to ten seconds'
worth of messages may go at once, then one every 60/cap seconds — paced evenly,
never a burst at each minute boundary. A message that finds no token reserves the
next free slot and is postponed to it (kept in a per-row key, so it is not charged
twice and held rows go out one by one in slot order, not all at once).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import fn

from webapp.domain.outbox import Kind
from webapp.storage.models import Notification, NotificationStatus

BULK = (Kind.REMINDER,)  # every other kind is transactional
# (option, window, per recipient, applies to transactional messages too)
WINDOWS = (
    ("cap_per_hour", timedelta(hours=1), False, False),
    ("cap_per_day", timedelta(days=1), False, False),
    ("cap_per_recipient_hour", timedelta(hours=1), True, True),
    ("cap_per_recipient_day", timedelta(days=1), True, True),
)
BURST_S = 10.0  # a budget's bucket holds this many seconds' worth of messages
_BUCKET_KEY = "paywatch:pacing:{budget}"
_SLOT_KEY = "paywatch:pacing:slot:{id}"
# KEYS: the budget's arrival time, the row's reserved slot; ARGV: now, interval, burst, and how
# long a key outlives the moment it names.
# Returns "0" (go now) or the moment (epoch seconds) of the row's slot.
_TAKE = """
local now, interval, burst, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local slot = redis.call('GET', KEYS[2])
if slot then
  if tonumber(slot) <= now + 0.05 then
    redis.call('DEL', KEYS[2])
    return '0'
  end
  return slot
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local at = tat - (burst - 1) * interval
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'EX', math.ceil(tat + interval - now) + ttl)
if at <= now then return '0' end
slot = string.format('%.6f', at)
redis.call('SET', KEYS[2], slot, 'EX', math.ceil(at - now) + ttl)
return slot
"""


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
    bulk = notification.kind in BULK
    for key, window, per_recipient, everyone in WINDOWS:
        if not (bulk or everyone):
            continue
        cap = values[key]
        count, oldest = _oldest_sent(now - window, notification.phone if per_recipient else None)
        if count >= cap and oldest is not None:
            who = f" to {notification.phone}" if per_recipient else ""
            return oldest + window + timedelta(seconds=1), f"{cap} messages{who} per {_words(window)} reached"
    return None


def _words(window: timedelta) -> str:
    return {60: "minute", 3600: "hour", 86400: "day"}[int(window.total_seconds())]


def budget(kind: str) -> tuple[str, str]:
    """(budget name, its per-minute option) for a notification kind."""
    return ("bulk", "cap_per_minute") if kind in BULK else ("transactional", "cap_transactional_per_minute")


def take_slot(notification: Notification, now: datetime, values: dict) -> tuple[datetime, str] | None:
    """Take a token of the row's budget: None to go now, else (its reserved slot, why)."""
    from webapp.plumbing import jobqueue

    name, key = budget(notification.kind)
    per_minute = values[key]
    interval = 60.0 / per_minute
    burst = max(1, round(BURST_S / interval))
    answer = jobqueue.redis_connection().eval(
        _TAKE, 2, _BUCKET_KEY.format(budget=name), _SLOT_KEY.format(id=notification.id),
        f"{now.timestamp():.6f}", f"{interval:.6f}", burst, 3600)
    slot = float(answer)
    if not slot:
        return None
    return datetime.fromtimestamp(slot, now.tzinfo), f"{per_minute} {name} messages per minute: paced"
