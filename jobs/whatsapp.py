"""Sending notification rows over WhatsApp, and keeping an eye on the session.

send_notification(id) is safe to run twice or concurrently: it claims the row with
a compare-and-set (pending → sending) before calling wppconnect, and exits quietly
when the row is not pending. It never runs early (it waits out the last second,
or re-enqueues itself), re-checks that the message still makes sense (a pending
alert for a request that was paid or ended is cancelled, not sent), obeys the
pacing (budgets, caps, quiet hours; webapp.domain.pacing) by postponing, and records every outcome on the row.

Unknown outcomes. The claim writes the exact text and when the try began
(`unconfirmed_since`); a known answer clears it (sent, or one of the refusals that
prove nothing went out). It stays set when the outcome is unknown: the answer timed
out, the connection broke after the request went out, a 5xx came from something other
than wppconnect, or the worker died during the call (the sweep puts a row stuck in
"sending" back to pending after 90 s). Before such a row is sent again, the chat's
latest CHECK_COUNT messages are read (get-messages): a message of ours with the same
text, sent at most CLOCK_SLACK before the first try began and not recorded on another
row, means the try went out — the row is recorded as sent with that message's id.
A check that cannot answer is repeated after CHECK_DELAYS (a refused token or a
disconnected session pause or postpone it as they do sends); when it keeps failing the
row ends failed with the reason, never sent blindly, and staff's Retry checks once more
and sends if the check still cannot answer (the failure text tells them to look at the
phone first).

What is left of at-least-once — a message can still go twice when:
- wppconnect is still carrying out the earlier try when the check runs (the check
  comes RETRY_DELAYS after the client gave up at WPPCONNECT_TIMEOUT, or 90 s after a
  worker died);
- wppconnect cannot show the chat's history: a server that answers get-messages with
  no messages, a chat it files under another id (a @lid contact), a session restarted
  without its history, or a chat with more than CHECK_COUNT messages since the try
  (that one ends failed instead, see above);
- wppconnect's message time is more than CLOCK_SLACK behind ours.
And the opposite error — recorded as sent without having gone — when the same text
went from our number to the same chat within CLOCK_SLACK before the try by another
way (typed on the phone, another system) or for another row whose own send is not
recorded yet (two rows with one text to one number, checked at the same moment).
"""
from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime, timedelta

from jobs import job
from jobs.wppconnect import ChatMessage, Client, WhatsAppError
from webapp.config import settings
from webapp.domain import alerts, message_texts, options, outbox, pacing, whatsapp_session
from webapp.storage import db
from webapp.storage.models import Notification, NotificationStatus, PaymentRequest, RequestStatus, utcnow

log = logging.getLogger(__name__)

RETRY_DELAYS = (5, 30)  # seconds before the 2nd and 3rd try; the 3rd failure is final
MAX_TRIES = len(RETRY_DELAYS) + 1
DISCONNECTED_DELAY = timedelta(seconds=30)
NOT_CONFIGURED_DELAY = timedelta(minutes=5)
PAUSED_CHECK = timedelta(minutes=1)
# Looking in the chat after an unknown outcome: seconds before the 2nd, 3rd … check when
# one cannot answer (a wppconnect restart fits in); the 6th failure is final.
CHECK_DELAYS = (5, 15, 30, 60, 120)
MAX_CHECKS = len(CHECK_DELAYS) + 1
CHECK_COUNT = 100  # the chat's latest messages one check reads
CLOCK_SLACK = timedelta(seconds=60)  # wppconnect's message times (whole seconds) vs our clock
# rq releases a delayed job up to 1 s early (whole-second scores): the job waits out
# the rest itself, so an alert goes at its due time instead of a second later.
WAIT_INSIDE_JOB = 1.2
GAP_KEY = "paywatch:whatsapp:last-send"


def client() -> Client | None:
    """The configured wppconnect client, or None when WPPCONNECT_URL is not set."""
    s = settings()
    if not s.wppconnect_url:
        return None
    return Client(s.wppconnect_url, s.wppconnect_session, secret_key=s.wppconnect_secret_key, token=s.wppconnect_token,
                  read_timeout=s.wppconnect_timeout)


@job
def send_notification(notification_id: int) -> str:
    """Send one notification row; returns what happened (for logs and rq-dashboard)."""
    row = Notification.get_or_none(Notification.id == notification_id)
    if row is None or row.status != NotificationStatus.PENDING:
        return "nothing to do"
    now = utcnow()
    early = (row.due_at - now).total_seconds()
    if early > WAIT_INSIDE_JOB:
        outbox.schedule_send(row.id, row.due_at)
        return f"not due for {early:.1f}s: re-enqueued"
    if early > 0:
        time.sleep(early)  # never before the due time
        now = utcnow()
    return _deliver(row, now)


def _deliver(row: Notification, now: datetime) -> str:
    if row.unconfirmed_since is not None:
        outcome = _confirm_earlier_try(row, now)
        if outcome:
            return outcome
        row = Notification.get_by_id(row.id)  # not in the chat: sent as any other row
        if row.status != NotificationStatus.PENDING:
            return "claimed by another worker"
    reason = _pointless(row)
    if reason:
        _cancel(row, reason)
        return f"cancelled: {reason}"
    values = options.current()
    body, enabled = message_texts.current(row.kind)
    if (row.context or {}).get("template"):
        body = row.context["template"]  # a reminder rule's text, or what staff wrote to a customer
    if not enabled:
        _cancel(row, f"{row.kind} messages are switched off")
        return "cancelled: kind switched off"
    wpp = _ready_client(row, now)
    if isinstance(wpp, str):
        return wpp
    hold = pacing.hold_until(row, now, values, settings().zone) or pacing.take_slot(row, now, values) or _gap(
        now, values)
    if hold:
        return _postpone(row, hold[0], hold[1])
    text = message_texts.render_text(body, message_texts.context_for(row, settings().zone, now))
    # Written before the call: whatever happens to this process, the row tells a later
    # run what may have gone out, and since when.
    claimed = (Notification.update(status=NotificationStatus.SENDING, claimed_at=now, attempts=Notification.attempts + 1,
                                   body=text, unconfirmed_since=now)
               .where(Notification.id == row.id, Notification.status == NotificationStatus.PENDING,
                      Notification.unconfirmed_since.is_null()).execute())
    if claimed != 1:
        return "claimed by another worker"
    try:
        result = wpp.send_text(row.phone, text)
    except WhatsAppError as exc:
        return _failed_try(row, text, exc, now)
    Notification.update(status=NotificationStatus.SENT, body=text, provider_id=result.provider_id, ack=result.ack,
                        sent_at=utcnow(), last_error=None, unconfirmed_since=None, checks=0).where(
        Notification.id == row.id).execute()
    _mark_send()
    if whatsapp_session.get().get("session") != "CONNECTED":
        whatsapp_session.update(session="CONNECTED", last_error=None)
    return f"sent as {result.provider_id}"


def _ready_client(row: Notification, now: datetime) -> Client | str:
    """The client, or the outcome of postponing `row` (WhatsApp not configured, sending paused)."""
    wpp = client()
    if wpp is None:
        return _postpone(row, now + NOT_CONFIGURED_DELAY, "WhatsApp is not configured (WPPCONNECT_URL)")
    paused = whatsapp_session.paused_reason()
    if paused and not _auth_works(wpp):
        return _postpone(row, now + PAUSED_CHECK, f"sending paused: {paused}")
    return wpp


def _confirm_earlier_try(row: Notification, now: datetime) -> str | None:
    """Look in the chat for an earlier try whose outcome is unknown; None: it is not there,
    the row is pending again and may be sent. Otherwise what happened (recorded on the row)."""
    wpp = _ready_client(row, now)
    if isinstance(wpp, str):
        return wpp
    claimed = (Notification.update(status=NotificationStatus.SENDING, claimed_at=now)
               .where(Notification.id == row.id, Notification.status == NotificationStatus.PENDING).execute())
    if claimed != 1:
        return "claimed by another worker"
    row = Notification.get_by_id(row.id)  # as this claim found it
    mine = (Notification.id == row.id) & (Notification.status == NotificationStatus.SENDING)
    try:
        found = _earlier_send(wpp, row)
    except WhatsAppError as exc:
        if row.checks < MAX_CHECKS or exc.kind in ("config", "disconnected"):
            return _failed_check(row, exc, now)
        # The checks gave up before and staff pressed Retry, told to look at the phone first.
        log.warning("notification %s: check failed again after a retry (%s): sending", row.id, exc.message)
        found = None
    if found is None:
        if row.attempts >= MAX_TRIES:
            Notification.update(status=NotificationStatus.FAILED, unconfirmed_since=None, checks=0, last_error=(
                f"not sent: {row.attempts} tries, the last one's outcome unknown and it is not in the chat")).where(
                mine).execute()
            return "failed: tries used up"
        Notification.update(status=NotificationStatus.PENDING, unconfirmed_since=None, checks=0).where(mine).execute()
        return None
    if found.ack is not None and found.ack < 0:
        Notification.update(status=NotificationStatus.FAILED, provider_id=found.id, ack=found.ack, unconfirmed_since=None,
                            checks=0, last_error=f"WhatsApp refused the message (ack {found.ack})").where(mine).execute()
        return f"failed: found in the chat with ack {found.ack}"
    Notification.update(status=NotificationStatus.SENT, provider_id=found.id, ack=found.ack,
                        sent_at=datetime.fromtimestamp(found.t, UTC), unconfirmed_since=None, checks=0,
                        last_error="the earlier try had gone out (found in the WhatsApp chat): not sent again").where(
        mine).execute()
    return f"sent as {found.id} (found in the chat: not sent again)"


def _earlier_send(wpp: Client, row: Notification) -> ChatMessage | None:
    """Our message with the row's text, sent since its first unconfirmed try, that no other row claims."""
    messages = wpp.recent_messages(row.phone, CHECK_COUNT)
    since = (row.unconfirmed_since - CLOCK_SLACK).timestamp()
    text = _comparable(row.body)
    same = [m for m in messages
            if text and m.from_me and m.t is not None and m.t >= since and _comparable(m.body) == text]
    if same:
        taken = set(Notification.select(Notification.provider_id).where(
            Notification.provider_id.in_([m.id for m in same]), Notification.id != row.id).scalars())
        same = [m for m in same if m.id not in taken]
    if same:
        return same[0]
    if len(messages) >= CHECK_COUNT and all(m.t is not None and m.t >= since for m in messages):
        raise WhatsAppError("server", f"the chat has {CHECK_COUNT} or more messages since the earlier try: "
                            "cannot tell whether it went out", permanent=True)
    return None


def _comparable(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").strip()


def _failed_check(row: Notification, exc: WhatsAppError, now: datetime) -> str:
    """The chat could not be read: never send blindly; look again later, then fail visibly."""
    trouble = _session_trouble(row, exc, now)
    if trouble:
        return trouble
    checks = row.checks + 1
    if exc.permanent or checks >= MAX_CHECKS:
        Notification.update(status=NotificationStatus.FAILED, checks=MAX_CHECKS, last_error=(
            f"not re-sent: could not check whether the earlier try went out ({exc.message}). Look at the chat "
            "on the phone; Retry checks once more and sends if the check still cannot answer")).where(
            Notification.id == row.id, Notification.status == NotificationStatus.SENDING).execute()
        return f"failed: cannot check the chat ({exc.message})"
    _back_to_pending(row, now + timedelta(seconds=CHECK_DELAYS[checks - 1]),
                     f"could not check whether the earlier try went out ({exc.message}); not re-sent, checking again",
                     checks=checks)
    return f"check {checks} failed ({exc.message}): checking again"


def _pointless(row: Notification) -> str | None:
    """Why a message no longer makes sense (a pending alert for a request paid or ended meanwhile)."""
    if row.kind not in outbox.Kind.REMINDERS or not row.request_id:
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
            outbox.schedule_send(row.id, until)
    return f"postponed to {until.isoformat(timespec='seconds')}: {reason}"


def _failed_try(row: Notification, text: str, exc: WhatsAppError, now: datetime) -> str:
    attempts = row.attempts + 1
    # A known answer proves nothing went out this time; an unknown one keeps the mark.
    settled = {} if exc.unknown else {"unconfirmed_since": None}
    trouble = _session_trouble(row, exc, now, attempts=Notification.attempts - 1, **settled)
    if trouble:
        return trouble
    if exc.unknown:  # never failed here: the next run looks in the chat first
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]  # counted from now: after the call gave up
        _back_to_pending(row, utcnow() + timedelta(seconds=delay),
                         f"{exc.message}; it may have gone out: the chat is checked before any resend")
        return f"try {attempts}: outcome unknown ({exc.message}): checking before any resend"
    if exc.permanent or attempts >= MAX_TRIES:
        Notification.update(status=NotificationStatus.FAILED, body=text, last_error=exc.message, **settled).where(
            Notification.id == row.id).execute()
        return f"failed: {exc.message}"
    _back_to_pending(row, now + timedelta(seconds=RETRY_DELAYS[attempts - 1]), exc.message, **settled)
    return f"try {attempts} failed ({exc.message}): retrying"


def _session_trouble(row: Notification, exc: WhatsAppError, now: datetime, **changes) -> str | None:
    """A refused token pauses sending, a disconnected session postpones: neither counts as a try."""
    if exc.kind == "config":
        if whatsapp_session.pause(exc.message):
            alerts.open_alert(alerts.SENDING_PAUSED, "whatsapp", f"WhatsApp sending is paused: {exc.message}. "
                              "Fix it, then resume on the WhatsApp session page.", now=now)
        _back_to_pending(row, now + PAUSED_CHECK, exc.message, **changes)
        return f"paused: {exc.message}"
    if exc.kind == "disconnected":
        whatsapp_session.update(session="DISCONNECTED", last_error=exc.message)
        _reconnect()
        _back_to_pending(row, now + DISCONNECTED_DELAY, exc.message, **changes)
        return "session disconnected: postponed"
    return None


def _back_to_pending(row: Notification, due: datetime, error: str, **changes) -> None:
    with db.transaction():
        Notification.update(status=NotificationStatus.PENDING, due_at=due, last_error=error, **changes).where(
            Notification.id == row.id, Notification.status == NotificationStatus.SENDING).execute()
        outbox.schedule_send(row.id, due)


def _auth_works(wpp: Client) -> bool:
    """While paused, one cheap authenticated call decides whether the fix arrived."""
    try:
        wpp.session_state()
    except WhatsAppError as exc:
        return exc.kind != "config"
    whatsapp_session.resume(actor="system")
    return True


def _reconnect() -> None:
    if try_reconnect():
        whatsapp_session.note_reconnect(utcnow())


def try_reconnect() -> bool:
    """wppconnect restores a linked session on start-session; ask at most once a minute (across
    workers). True when it asked now (whatever the answer: the next status check tells)."""
    from webapp.plumbing import jobqueue

    conn = jobqueue.redis_connection()
    if not conn.set("paywatch:whatsapp:reconnect", "1", nx=True, ex=60):
        return False
    try:
        state = client().start_session()
        whatsapp_session.update(session=state.status, qrcode=state.qrcode)
    except WhatsAppError as exc:
        log.warning("start-session failed: %s", exc.message)
        whatsapp_session.update(last_error=exc.message)
    return True


def _gap(now: datetime, values: dict) -> tuple[datetime, str] | None:
    """A short, jittered pause between two sends (per Paywatch, across workers)."""
    from webapp.plumbing import jobqueue

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
    from webapp.plumbing import jobqueue

    jobqueue.redis_connection().set(GAP_KEY, time.time(), ex=3600)


@job
def refresh_acks(limit: int = 200) -> int:
    """Record delivered/read acks of recent messages (when the server can tell), newest first.

    A chore: one call per message (up to `limit`, seconds of a worker), so it stops as soon as
    another job waits in the `fast` or `default` queue (a confirmation, a mailbox pass) and
    leaves the older rows to its next run."""
    from webapp.plumbing import jobqueue

    wpp = client()
    if wpp is None:
        return 0
    waiting = [jobqueue.queue(name) for name in ("fast", "default")]
    since = utcnow() - timedelta(days=1)
    rows = (Notification.select().where(Notification.status == NotificationStatus.SENT, Notification.sent_at > since,
                                        (Notification.ack.is_null()) | (Notification.ack < 3),
                                        Notification.provider_id.is_null(False))
            .order_by(Notification.sent_at.desc()).limit(limit))
    changed = 0
    for row in rows:
        if any(q.count for q in waiting):
            break
        try:
            ack = wpp.ack_of(row.provider_id)
        except WhatsAppError:
            break
        if ack is not None and ack != row.ack:
            Notification.update(ack=ack).where(Notification.id == row.id).execute()
            changed += 1
    return changed
