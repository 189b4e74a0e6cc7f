"""Watching Paywatch itself: the WhatsApp session check, the alerts sweep, and the processes watching each other.

- session_check (every 60 s): status-session and check-connection-session (the contract's
  two calls); a session not CONNECTED is asked to start again (at most once a minute; each
  attempt counted on the session page), and one down longer than `whatsapp_down_minutes`
  opens the WHATSAPP_DOWN alert (closed with the all-clear once it is back).
- check (every 60 s): sources in alarm or stale, sending paused, voucher pools empty,
  messages failed for good, the daily summary, and alert mails Redis lost.
- watch_workers(app): run by the scheduler process (a worker cannot report its own absence),
  which also sends the mails of that alert itself; watch_scheduler(app): run by a worker.
A part must look down for GRACE_S before its alert opens (start-up is not an outage).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from flask import Flask

from jobs import job
from jobs.wppconnect import WhatsAppError
from webapp.domain import alerts, daily_summary, health, options, sources, vouchers, whatsapp_session
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Alert, AlertMail, Notification, NotificationStatus, PaymentRequest, utcnow

log = logging.getLogger(__name__)

GRACE_S = 90
FAILED_LOOKBACK = timedelta(days=2)
GROUP_FAILED = 3  # more new failures than this in one sweep: one alert tells them all
MAIL_LOST_AFTER = timedelta(minutes=2)
WATCH_EVERY_S = 60
WATCH_SCHEDULER_LOCK = "paywatch:watch:scheduler"


@job
def session_check() -> dict:
    """Ask the WhatsApp server how the session is; reconnect and alert as the module docstring says."""
    from jobs.whatsapp import client, try_reconnect

    wpp = client()
    if wpp is None:
        return whatsapp_session.update(session="NOT CONFIGURED", checked_at=utcnow().isoformat())
    now = utcnow()
    try:
        state = wpp.session_state()
        connected = state.status == "CONNECTED" and wpp.check_connection()
        status, error = (state.status if connected or state.status != "CONNECTED" else "DISCONNECTED"), None
    except WhatsAppError as exc:
        status, error, state = "UNREACHABLE", exc.message, None
        connected = False
    previous = whatsapp_session.get()
    changes = {"session": status, "checked_at": now.isoformat(), "last_error": error}
    if state is not None:
        changes["qrcode"] = state.qrcode
    if connected:
        changes["down_since"] = None
    elif not previous.get("down_since"):
        changes["down_since"] = now.isoformat()
    current = whatsapp_session.update(**changes)
    if connected:
        alerts.clear_alert(alerts.WHATSAPP_DOWN, "session")
        return current
    if status not in ("QRCODE", "PHONECODE", "INITIALIZING") and try_reconnect():
        current = whatsapp_session.note_reconnect(now)
    down_since = datetime.fromisoformat(current["down_since"])
    minutes = options.get("whatsapp_down_minutes")
    if now - down_since >= timedelta(minutes=minutes):
        alerts.open_alert(alerts.WHATSAPP_DOWN, "session",
                          f"The WhatsApp session has not been connected since {down_since.isoformat(timespec='seconds')} "
                          f"UTC (state {status}{': ' + error if error else ''}). Customers and agents are not being told; "
                          "messages wait in the outbox. Open Notifications → WhatsApp session.")
    return current


@job
def check(now: datetime | None = None) -> dict:
    """The alerts sweep (see the module docstring); returns what it opened, cleared and re-sent."""
    now = now or utcnow()
    done = {"opened": [], "cleared": [], "mails": 0}

    def track(kind, key, is_bad, text):
        if is_bad and alerts.open_alert(kind, key, text, now=now):
            done["opened"].append(f"{kind}:{key}")
        elif not is_bad and alerts.clear_alert(kind, key, now=now):
            done["cleared"].append(f"{kind}:{key}")

    for f in sources.all_freshness():
        stale = f.enabled and not f.ok and not f.alarms
        seen = f.last_ok_at.isoformat(timespec="seconds") + " UTC" if f.last_ok_at else "never"
        track(alerts.SOURCE_STALE, f.name, stale,
              f"Source {f.name} ({f.kind}) has had no good pass since {seen}. Last error: {f.last_error or 'none'}.")
    paused = whatsapp_session.paused_reason()
    track(alerts.SENDING_PAUSED, "whatsapp", bool(paused),
          f"WhatsApp sending is paused: {paused}. Fix it, then resume on the WhatsApp session page.")
    for pool in alerts.open_keys(alerts.VOUCHER_POOL_EMPTY):
        if vouchers.counts(pool)[1] > 0:
            track(alerts.VOUCHER_POOL_EMPTY, pool, False, "")
    _failed_messages(now)
    daily_summary.send_if_due(now)
    done["mails"] = resend_lost_mails(now)
    return done


def _failed_messages(now: datetime) -> None:
    told = {a.key for a in Alert.select(Alert.key).where(Alert.kind == alerts.MESSAGE_FAILED,
                                                          Alert.opened_at >= now - FAILED_LOOKBACK - timedelta(days=1))}
    rows = [n for n in Notification.select(Notification.id, Notification.kind, Notification.phone, Notification.last_error,
                                           Notification.request)
            .where(Notification.status == NotificationStatus.FAILED, Notification.created_at >= now - FAILED_LOOKBACK,
                   Notification.kind != "admin_alert")  # an alert about an alert that failed would loop
            .order_by(Notification.id).limit(500)
            if f"notification:{n.id}" not in told]
    if not rows:
        return
    lines = [f"#{n.id} {n.kind} to {n.phone}: {n.last_error or 'failed'}" for n in rows]
    with db.transaction():
        if len(rows) > GROUP_FAILED:
            for n in rows:
                alerts.event(alerts.MESSAGE_FAILED, f"notification:{n.id}", lines[0], now=now, tell=False)
            alerts.event(alerts.MESSAGE_FAILED, f"notifications:{rows[0].id}-{rows[-1].id}",
                         f"{len(rows)} WhatsApp messages failed for good:\n" + "\n".join(lines[:50]), now=now)
        else:
            for n, line in zip(rows, lines):
                reference = PaymentRequest.get_or_none(PaymentRequest.id == n.request_id) if n.request_id else None
                alerts.event(alerts.MESSAGE_FAILED, f"notification:{n.id}",
                             f"A WhatsApp message failed for good: {line}"
                             + (f" (request {reference.reference})" if reference else "")
                             + ". Retry it from Notifications once the cause is fixed.", now=now)


def resend_lost_mails(now: datetime | None = None) -> int:
    """Pending alert mails older than MAIL_LOST_AFTER with no live job are enqueued again."""
    now = now or utcnow()
    count = 0
    for row in AlertMail.select(AlertMail.id).where(AlertMail.status == "pending",
                                                     AlertMail.created_at < now - MAIL_LOST_AFTER).limit(100):
        job_id = alerts.mail_job_id(row.id)
        if not jobqueue.is_live(job_id):
            jobqueue.enqueue("send_alert_mail", row.id, job_id=job_id)
            count += 1
    return count


def _watch(app: Flask, kind: str, is_ok: bool, text: str) -> bool:
    """Open `kind` once the part has looked down for GRACE_S (remembered in Redis: several processes
    take turns watching); clear it when it is back. True when opened."""
    with app.app_context():
        conn = jobqueue.redis_connection()
    key = f"paywatch:down-since:{kind}"
    if is_ok:
        conn.delete(key)
        with app.app_context(), db.database.connection_context():
            alerts.clear_alert(kind, "paywatch")
        return False
    conn.set(key, time.time(), nx=True, ex=7 * 24 * 3600)
    first = float(conn.get(key) or time.time())
    if time.time() - first < GRACE_S:
        return False
    with app.app_context(), db.database.connection_context():
        return alerts.open_alert(kind, "paywatch", text)


def watch_workers(app: Flask) -> None:
    """From the scheduler process: no live worker → NO_WORKER, and its mails sent from here."""
    with app.app_context():
        state = health.workers(jobqueue.redis_connection())
    text = (f"No RQ worker serves {', '.join(state['queues_without_worker'])} (live workers: {state['count']}). "
            "Nothing is sent, matched or read until one runs: docker compose up -d --scale worker=N.")
    _watch(app, alerts.NO_WORKER, state["ok"], text)
    if not state["ok"]:
        from jobs.alert_mail import send_alert_mail

        with app.app_context(), db.database.connection_context():
            pending = [m.id for m in AlertMail.select(AlertMail.id).join(Alert).where(
                AlertMail.status == "pending", Alert.kind == alerts.NO_WORKER)]
        with app.app_context():  # the job opens and closes its own connection
            for mail_id in pending:  # no worker would ever send them
                try:
                    send_alert_mail(mail_id)
                except Exception as exc:  # transient: the next round tries again
                    log.warning("no-worker alert mail %s not sent yet: %s", mail_id, exc)


def watch_scheduler(app: Flask) -> None:
    """From a worker (one at a time, once a minute): no scheduler heartbeat → NO_SCHEDULER."""
    with app.app_context():
        if not jobqueue.redis_connection().set(WATCH_SCHEDULER_LOCK, 1, nx=True, ex=WATCH_EVERY_S):
            return  # another worker looked less than a minute ago
    with app.app_context(), db.database.connection_context():
        state = health.recurring_scheduler(jobqueue.redis_connection(), database_ok=True)
    text = (f"The recurring scheduler has not beaten for {state['process_heartbeat_age_s']} s (missing jobs: "
            f"{', '.join(state['missing']) or 'none'}): sweeps, expiry and source passes do not run.")
    _watch(app, alerts.NO_SCHEDULER, state["ok"], text)


@job
def session_action(action: str) -> dict:
    """The session page's buttons: "status", "start", "close"; stores what the server says."""
    from jobs.whatsapp import client

    wpp = client()
    if wpp is None:
        return whatsapp_session.update(session="NOT CONFIGURED", last_error="WPPCONNECT_URL is not set")
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
            whatsapp_session.pause(exc.message)
        return whatsapp_session.update(last_error=exc.message, checked_at=utcnow().isoformat())
    return whatsapp_session.update(session=state.status, qrcode=state.qrcode, last_error=None,
                                 checked_at=utcnow().isoformat())
