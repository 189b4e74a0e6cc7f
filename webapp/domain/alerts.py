"""Operators' alerts on two channels (e-mail over SMTP and WhatsApp), once per episode, with the all-clear.

    open_alert(kind, key, text)   an episode begins: True the first time (mail + WhatsApp queued), then False
    clear_alert(kind, key)        it ends: True when one was open (the all-clear is queued)
    event(kind, key, text)        a one-off (a message failed for good): told once, no all-clear

Call them inside or outside a transaction: the Alert row, its AlertMail rows (one per episode
change, to PAYWATCH_ALERT_EMAILS) and the WhatsApp rows (outbox.admin_alert, to the admin
phones) are written in one transaction, and the mail is sent by the `send_alert_mail` job after
commit (retried; the `alerts_check` sweep sends any mail Redis lost). Other modules call these
with their own kinds — the webhook sender: open_alert(WEBHOOK_DISABLED, f"endpoint:{id}", text)
when it disables an endpoint, clear_alert(WEBHOOK_DISABLED, f"endpoint:{id}") when it is enabled again.
"""
from __future__ import annotations

from datetime import datetime

from peewee import IntegrityError

from webapp.domain import audit, durations, outbox
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Alert, AlertMail, utcnow

WHATSAPP_DOWN = "whatsapp_down"
MESSAGE_FAILED = "message_failed"
SOURCE_ALARM = "source_alarm"
SOURCE_STALE = "source_stale"
NO_WORKER = "no_worker"
NO_SCHEDULER = "no_scheduler"
SENDING_PAUSED = "sending_paused"
VOUCHER_POOL_EMPTY = "voucher_pool_empty"
WEBHOOK_DISABLED = "webhook_disabled"
KINDS = (WHATSAPP_DOWN, MESSAGE_FAILED, SOURCE_ALARM, SOURCE_STALE, NO_WORKER, NO_SCHEDULER, SENDING_PAUSED,
         VOUCHER_POOL_EMPTY, WEBHOOK_DISABLED)
TITLES = {
    WHATSAPP_DOWN: "WhatsApp session down", MESSAGE_FAILED: "a message failed for good",
    SOURCE_ALARM: "source in alarm", SOURCE_STALE: "source stale", NO_WORKER: "no live worker",
    NO_SCHEDULER: "no scheduler heartbeat", SENDING_PAUSED: "WhatsApp sending paused",
    VOUCHER_POOL_EMPTY: "voucher pool empty", WEBHOOK_DISABLED: "webhook endpoint disabled",
}


class AlertError(ValueError):
    """An unknown alert kind."""


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise AlertError(f"unknown alert kind {kind!r}; known: {', '.join(KINDS)}")


def open_alert(kind: str, key: str, text: str, *, now: datetime | None = None) -> bool:
    """Begin an episode of `kind` about `key`; True (and both channels told) only when none was open."""
    _check(kind)
    now = now or utcnow()
    try:
        with db.transaction():
            alert = Alert.create(kind=kind, key=key, text=text[:4000], open_key=f"{kind}:{key}", opened_at=now)
            audit.record("alert.opened", f"alert:{alert.id}", actor="system", kind=kind, key=key, text=text[:500])
            _tell(alert, f"[Paywatch] {TITLES[kind]}: {key}", text, f"alert:{alert.id}:opened")
    except IntegrityError:  # one is open already (maybe opened by another process just now)
        return False
    return True


def clear_alert(kind: str, key: str, *, text: str = "", now: datetime | None = None) -> bool:
    """End the open episode of `kind` about `key`; True (and the all-clear told) when there was one."""
    _check(kind)
    now = now or utcnow()
    with db.transaction():
        alert = Alert.get_or_none(Alert.open_key == f"{kind}:{key}")
        if alert is None:
            return False
        if not Alert.update(open_key=None, closed_at=now).where(Alert.id == alert.id, Alert.open_key.is_null(False)).execute():
            return False  # another process closed it first
        lasted = durations.spoken(now - alert.opened_at)
        body = (text or f"Resolved after {lasted}.") + f"\n\nThe alert was: {alert.text}"
        audit.record("alert.cleared", f"alert:{alert.id}", actor="system", kind=kind, key=key)
        _tell(alert, f"[Paywatch] all clear: {TITLES[kind]}: {key}", body, f"alert:{alert.id}:cleared")
    return True


def event(kind: str, key: str, text: str, *, now: datetime | None = None, tell: bool = True) -> bool:
    """A one-off alert (no all-clear follows); True the first time for (kind, key).
    tell=False records it without telling anyone (one told event stands for several)."""
    _check(kind)
    now = now or utcnow()
    with db.transaction():
        if Alert.select().where(Alert.kind == kind, Alert.key == key).exists():
            return False
        alert = Alert.create(kind=kind, key=key, text=text[:4000], opened_at=now, closed_at=now, all_clear=False)
        audit.record("alert.event", f"alert:{alert.id}", actor="system", kind=kind, key=key, text=text[:500])
        if tell:
            _tell(alert, f"[Paywatch] {TITLES[kind]}: {key}", text, f"alert:{alert.id}:event")
    return True


def is_open(kind: str, key: str) -> bool:
    return Alert.select().where(Alert.open_key == f"{kind}:{key}").exists()


def open_keys(kind: str) -> list[str]:
    """The keys of the open episodes of `kind`."""
    return [a.key for a in Alert.select(Alert.key).where(Alert.kind == kind, Alert.open_key.is_null(False))]


def mail(subject: str, body: str, dedupe_key: str, alert: Alert | None = None) -> int | None:
    """Queue one e-mail to the operators (PAYWATCH_ALERT_EMAILS); None when there is nobody to
    mail or it was queued before under `dedupe_key`. Sent by the send_alert_mail job after commit."""
    from webapp.config import settings

    recipients = settings().alert_emails
    if not recipients or not settings().smtp_url:
        return None
    with db.transaction():
        if AlertMail.select().where(AlertMail.dedupe_key == dedupe_key).exists():
            return None
        row = AlertMail.create(alert=alert, to=",".join(recipients), subject=subject[:250], body=body,
                               dedupe_key=dedupe_key)
        jobqueue.enqueue("send_alert_mail", row.id, job_id=mail_job_id(row.id))
    return row.id


def mail_job_id(mail_id: int) -> str:
    return f"alert-mail-{mail_id}"


def _tell(alert: Alert, subject: str, body: str, dedupe_key: str) -> None:
    mail(subject, body, dedupe_key, alert)
    outbox.admin_alert(dedupe_key, f"{subject}\n{body}"[:1500])
