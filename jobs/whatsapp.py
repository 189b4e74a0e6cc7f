"""Sending notification rows over WhatsApp, and keeping an eye on the session.

send_notification(id) is safe to run twice or concurrently: it claims the row with
a compare-and-set (pending → sending) before calling wppconnect, and exits quietly
when the row is not pending. It never runs early (it waits out the last second,
or re-enqueues itself), re-checks that the message still makes sense (a pending
alert for a request that was paid or ended is cancelled, not sent), obeys the
pacing (caps, quiet hours) by postponing, and records every outcome on the row.

At-least-once: a worker killed between wppconnect accepting a message and the row
being marked sent leaves the row in "sending"; the sweep puts it back to pending
after SENDING_TIMEOUT and it is sent again. That window (one HTTP call) is the only
way a message can go twice.
"""
from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta

from jobs import job
from jobs.wppconnect import Client, WhatsAppError
from webapp import db, notify, options, pacing, settings, templates_text, whatsapp_state
from webapp.models import Notification, NotificationStatus, PaymentRequest, RequestStatus, utcnow

log = logging.getLogger(__name__)

RETRY_DELAYS = (5, 30)  # seconds before the 2nd and 3rd try; the 3rd failure is final
MAX_TRIES = len(RETRY_DELAYS) + 1
DISCONNECTED_DELAY = timedelta(seconds=30)
NOT_CONFIGURED_DELAY = timedelta(minutes=5)
PAUSED_CHECK = timedelta(minutes=1)
SENDING_TIMEOUT = timedelta(seconds=90)
# rq releases a delayed job up to 1 s early (whole-second scores): the job waits out
# the rest itself, so an alert goes at its due time instead of a second later.
WAIT_INSIDE_JOB = 1.2
GAP_KEY = "paywatch:whatsapp:last-send"


def client() -> Client | None:
    """The configured wppconnect client, or None when WPPCONNECT_URL is not set."""
    s = settings()
    if not s.wppconnect_url:
        return None
    return Client(s.wppconnect_url, s.wppconnect_session, secret_key=s.wppconnect_secret_key, token=s.wppconnect_token)


@job
def send_notification(notification_id: int) -> str:
    """Send one notification row; returns what happened (for logs and rq-dashboard)."""
    row = Notification.get_or_none(Notification.id == notification_id)
    if row is None or row.status != NotificationStatus.PENDING:
        return "nothing to do"
    now = utcnow()
    early = (row.due_at - now).total_seconds()
    if early > WAIT_INSIDE_JOB:
        notify.schedule_send(row.id, row.due_at)
        return f"not due for {early:.1f}s: re-enqueued"
    if early > 0:
        time.sleep(early)  # never before the due time
        now = utcnow()
    return _deliver(row, now)


def _deliver(row: Notification, now: datetime) -> str:
    reason = _pointless(row)
    if reason:
        _cancel(row, reason)
        return f"cancelled: {reason}"
    values = options.current()
    body, enabled = templates_text.current(row.kind)
    if (row.context or {}).get("template"):
        body = row.context["template"]  # a reminder rule's text, or what staff wrote to a customer
    if not enabled:
        _cancel(row, f"{row.kind} messages are switched off")
        return "cancelled: kind switched off"
    wpp = client()
    if wpp is None:
        return _postpone(row, now + NOT_CONFIGURED_DELAY, "WhatsApp is not configured (WPPCONNECT_URL)")
    paused = whatsapp_state.paused_reason()
    if paused and not _auth_works(wpp):
        return _postpone(row, now + PAUSED_CHECK, f"sending paused: {paused}")
    hold = pacing.hold_until(row, now, values, settings().zone) or _gap(now, values)
    if hold:
        return _postpone(row, hold[0], hold[1])
    claimed = (Notification.update(status=NotificationStatus.SENDING, claimed_at=now, attempts=Notification.attempts + 1)
               .where(Notification.id == row.id, Notification.status == NotificationStatus.PENDING).execute())
    if claimed != 1:
        return "claimed by another worker"
    text = templates_text.render_text(body, templates_text.context_for(row, settings().zone, now))
    try:
        result = wpp.send_text(row.phone, text)
    except WhatsAppError as exc:
        return _failed_try(row, text, exc, now)
    Notification.update(status=NotificationStatus.SENT, body=text, provider_id=result.provider_id, ack=result.ack,
                        sent_at=utcnow(), last_error=None).where(Notification.id == row.id).execute()
    _mark_send()
    if whatsapp_state.get().get("session") != "CONNECTED":
        whatsapp_state.update(session="CONNECTED", last_error=None)
    return f"sent as {result.provider_id}"


def _pointless(row: Notification) -> str | None:
    """Why a message no longer makes sense (a pending alert for a request paid or ended meanwhile)."""
    if row.kind not in notify.Kind.REMINDERS or not row.request_id:
        return None
    status = PaymentRequest.select(PaymentRequest.status).where(PaymentRequest.id == row.request_id).scalar()
    if status != RequestStatus.PENDING:
        return f"request is {status}"
    return None


def _cancel(row: Notification, reason: str) -> None:
    Notification.update(status=NotificationStatus.CANCELLED, last_error=reason).where(
        Notification.id == row.id, Notification.status == NotificationStatus.PENDING).execute()


def _postpone(row: Notification, until: datetime, reason: str) -> str:
    """Later, never dropped: move due_at and enqueue for then."""
    with db.transaction():
        moved = Notification.update(due_at=until, last_error=reason).where(
            Notification.id == row.id, Notification.status == NotificationStatus.PENDING).execute()
        if moved:
            notify.schedule_send(row.id, until)
    return f"postponed to {until.isoformat(timespec='seconds')}: {reason}"


def _failed_try(row: Notification, text: str, exc: WhatsAppError, now: datetime) -> str:
    attempts = row.attempts + 1
    if exc.kind == "config":
        if whatsapp_state.pause(exc.message):
            notify.admin_alert(f"whatsapp-paused:{now.isoformat()}", f"Paywatch: WhatsApp sending is paused: {exc.message}")
        _back_to_pending(row, now + PAUSED_CHECK, exc.message, count_try=False)
        return f"paused: {exc.message}"
    if exc.kind == "disconnected":
        whatsapp_state.update(session="DISCONNECTED", last_error=exc.message)
        _reconnect()
        _back_to_pending(row, now + DISCONNECTED_DELAY, exc.message, count_try=False)
        return "session disconnected: postponed"
    if exc.permanent or attempts >= MAX_TRIES:
        Notification.update(status=NotificationStatus.FAILED, body=text, last_error=exc.message).where(
            Notification.id == row.id).execute()
        return f"failed: {exc.message}"
    _back_to_pending(row, now + timedelta(seconds=RETRY_DELAYS[attempts - 1]), exc.message, count_try=True)
    return f"try {attempts} failed ({exc.message}): retrying"


def _back_to_pending(row: Notification, due: datetime, error: str, *, count_try: bool) -> None:
    with db.transaction():
        changes = {"status": NotificationStatus.PENDING, "due_at": due, "last_error": error}
        if not count_try:
            changes["attempts"] = Notification.attempts - 1
        Notification.update(**changes).where(Notification.id == row.id,
                                             Notification.status == NotificationStatus.SENDING).execute()
        notify.schedule_send(row.id, due)


def _auth_works(wpp: Client) -> bool:
    """While paused, one cheap authenticated call decides whether the fix arrived."""
    try:
        wpp.session_state()
    except WhatsAppError as exc:
        return exc.kind != "config"
    whatsapp_state.resume(actor="system")
    return True


def _reconnect() -> None:
    """wppconnect restores a linked session on start-session; ask at most once a minute."""
    from webapp import jobqueue

    conn = jobqueue.redis_connection()
    if conn.set("paywatch:whatsapp:reconnect", "1", nx=True, ex=60):
        try:
            state = client().start_session()
            whatsapp_state.update(session=state.status, qrcode=state.qrcode)
        except WhatsAppError as exc:
            log.warning("start-session failed: %s", exc.message)


def _gap(now: datetime, values: dict) -> tuple[datetime, str] | None:
    """A short, jittered pause between two sends (per Paywatch, across workers)."""
    from webapp import jobqueue

    gap_ms = values["send_gap_ms"]
    if not gap_ms:
        return None
    last = jobqueue.redis_connection().get(GAP_KEY)
    wait = gap_ms / 1000 * (1 + random.random()) - (time.time() - float(last)) if last else 0
    if wait <= 0:
        return None
    if wait <= 1.0:  # the usual case: a fraction of a second, waited here
        time.sleep(wait)
        return None
    return now + timedelta(seconds=wait), "pacing between sends"


def _mark_send() -> None:
    from webapp import jobqueue

    jobqueue.redis_connection().set(GAP_KEY, time.time(), ex=3600)


@job
def refresh_acks(limit: int = 200) -> int:
    """Record delivered/read acks of recent messages (when the server can tell)."""
    wpp = client()
    if wpp is None:
        return 0
    since = utcnow() - timedelta(days=1)
    rows = (Notification.select().where(Notification.status == NotificationStatus.SENT, Notification.sent_at > since,
                                        (Notification.ack.is_null()) | (Notification.ack < 3),
                                        Notification.provider_id.is_null(False))
            .order_by(Notification.sent_at.desc()).limit(limit))
    changed = 0
    for row in rows:
        try:
            ack = wpp.ack_of(row.provider_id)
        except WhatsAppError:
            break
        if ack is not None and ack != row.ack:
            Notification.update(ack=ack).where(Notification.id == row.id).execute()
            changed += 1
    return changed


@job
def session_action(action: str) -> dict:
    """The session page's buttons: "status", "start", "close"; stores what the server says."""
    wpp = client()
    if wpp is None:
        return whatsapp_state.update(session="NOT CONFIGURED", last_error="WPPCONNECT_URL is not set")
    try:
        if action == "start":
            state = wpp.start_session()
            state = wpp.session_state()
        elif action == "close":
            wpp.close_session()
            state = wpp.session_state()
        else:
            state = wpp.session_state()
    except WhatsAppError as exc:
        if exc.kind == "config":
            whatsapp_state.pause(exc.message)
        return whatsapp_state.update(last_error=exc.message, checked_at=utcnow().isoformat())
    return whatsapp_state.update(session=state.status, qrcode=state.qrcode, last_error=None,
                                 checked_at=utcnow().isoformat())

