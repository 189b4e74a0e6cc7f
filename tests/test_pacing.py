"""WhatsApp pacing (webapp/domain/pacing.py): two budgets, so confirmations and alerts never
wait behind reminders, each paced evenly by a token bucket in Redis instead of a burst at every
minute boundary; the hour/day caps hold reminders only, the per-recipient caps hold everything. And the ack
refresh, a chore, gives way to the jobs on the latency path."""
from __future__ import annotations

from datetime import timedelta

from webapp.config import settings
from webapp.domain import options, pacing
from webapp.domain.outbox import Kind
from webapp.storage.models import Notification, NotificationStatus, utcnow


def row(kind: str, n: int, phone: str | None = None, **fields) -> Notification:
    return Notification.create(kind=kind, phone=phone or f"+2567001{n:05d}", dedupe_key=f"{kind}:test:{n}", **fields)


def go(notification: Notification, now, values) -> bool:
    return pacing.take_slot(notification, now, values) is None


def test_a_budget_lets_ten_seconds_worth_go_at_once_then_one_slot_each(ctx):
    values = {**options.current(), "cap_transactional_per_minute": 60}  # one a second, ten at once
    now = utcnow()
    burst = [row(Kind.CONFIRMED_CUSTOMER, n) for n in range(10)]
    assert all(go(r, now, values) for r in burst)
    late = [row(Kind.CONFIRMED_CUSTOMER, n) for n in range(10, 13)]
    slots = [pacing.take_slot(r, now, values) for r in late]
    assert all(slot is not None and "per minute" in slot[1] for slot in slots)
    times = [slot[0] for slot in slots]
    assert times == sorted(times) and len(set(times)) == 3  # one by one, in order: no bunch
    assert all(abs((later - earlier).total_seconds() - 1) < 0.001 for earlier, later in zip(times, times[1:]))
    # A row asking again before its slot keeps that slot (it is not charged twice) …
    assert pacing.take_slot(late[0], now, values)[0] == times[0]
    # … and goes once its slot has come, while a newcomer queues behind the reserved ones.
    assert go(late[0], times[0], values)
    assert pacing.take_slot(row(Kind.CONFIRMED_CUSTOMER, 99), times[0], values)[0] > times[-1]


def test_confirmations_do_not_wait_behind_reminders(ctx):
    values = {**options.current(), "cap_per_minute": 1, "cap_transactional_per_minute": 60}
    now = utcnow()
    assert go(row(Kind.REMINDER, 1), now, values)
    held = pacing.take_slot(row(Kind.REMINDER, 2), now, values)
    assert held is not None and held[0] >= now + timedelta(seconds=59) and "bulk" in held[1]
    assert go(row(Kind.CONFIRMED_CUSTOMER, 3), now, values)
    assert go(row(Kind.PENDING_ALERT_CUSTOMER, 4), now, values)


def test_hour_and_day_caps_count_every_message_and_hold_only_reminders(ctx):
    values = {**options.current(), "cap_per_hour": 2}
    now = utcnow()
    for n in range(2):
        row(Kind.CONFIRMED_CUSTOMER, n, status=NotificationStatus.SENT, sent_at=now - timedelta(minutes=5))
    held = pacing.hold_until(row(Kind.REMINDER, 10), now, values, settings().zone)
    assert held is not None and "2 messages per hour reached" in held[1]
    assert pacing.hold_until(row(Kind.CONFIRMED_CUSTOMER, 11), now, values, settings().zone) is None
    assert pacing.hold_until(row(Kind.PENDING_ALERT_AGENT, 12), now, values, settings().zone) is None


def test_per_recipient_caps_hold_every_kind(ctx):
    values = {**options.current(), "cap_per_recipient_hour": 1}
    now = utcnow()
    phone = "+256700000777"
    row(Kind.CONFIRMED_CUSTOMER, 1, phone=phone, status=NotificationStatus.SENT, sent_at=now - timedelta(minutes=1))
    held = pacing.hold_until(row(Kind.CONFIRMED_CUSTOMER, 2, phone=phone), now, values, settings().zone)
    assert held is not None and f"to {phone} per hour" in held[1]
    assert pacing.hold_until(row(Kind.CONFIRMED_CUSTOMER, 3), now, values, settings().zone) is None


def test_refreshing_acks_gives_way_to_jobs_waiting_in_the_fast_queues(whatsapp, ctx):
    """refresh_acks is a chore of one wppconnect call per message: it stops while a confirmation
    or a mailbox pass waits for a worker, and does its work once none does."""
    from jobs import whatsapp as sender
    from webapp.plumbing import jobqueue

    sent = sender.client().send_text("+256700000555", "hello")
    message = row(Kind.CONFIRMED_CUSTOMER, 1, phone="+256700000555", status=NotificationStatus.SENT,
                  sent_at=utcnow(), provider_id=sent.provider_id, ack=None)
    jobqueue.enqueue("heartbeat")  # no worker runs here: it stays waiting in `fast`

    assert sender.refresh_acks.__wrapped__() == 0
    assert Notification.get_by_id(message.id).ack is None
    jobqueue.queue("fast").empty()
    assert sender.refresh_acks.__wrapped__() == 1
    assert Notification.get_by_id(message.id).ack is not None
