"""Turning ledger events into notification rows (the outbox).

A Notification row exists before any job sends it; its dedupe key (kind, subject,
recipient) makes the same event produce one message per recipient however often
it is reported. Bodies are rendered from the templates when the row is sent.
Called by webapp.domain.ledger inside its transactions.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from webapp.storage import sqlcache
from webapp.storage.models import Notification, NotificationStatus, Payment, PaymentRequest, utcnow


class Kind:
    PENDING_ALERT_AGENT = "pending_alert_agent"
    PENDING_ALERT_CUSTOMER = "pending_alert_customer"
    CONFIRMED_CUSTOMER = "payment_confirmed_customer"
    CONFIRMED_AGENT = "payment_confirmed_agent"
    EXPIRED_CUSTOMER = "request_expired_customer"
    REJECTED_CUSTOMER = "payment_rejected_customer"
    INSTALLMENT_CUSTOMER = "installment_received_customer"
    UNMATCHED_ADMIN = "payment_unmatched_admin"
    ADMIN_ALERT = "admin_alert"
    REMINDER = "reminder"
    ALL = (
        PENDING_ALERT_AGENT, PENDING_ALERT_CUSTOMER, CONFIRMED_CUSTOMER, CONFIRMED_AGENT,
        EXPIRED_CUSTOMER, REJECTED_CUSTOMER, UNMATCHED_ADMIN, ADMIN_ALERT, REMINDER, INSTALLMENT_CUSTOMER,
    )
    PENDING_ALERTS = (PENDING_ALERT_AGENT, PENDING_ALERT_CUSTOMER)
    # Wait out quiet hours; everything else is transactional (a setting decides).
    REMINDERS = (PENDING_ALERT_AGENT, PENDING_ALERT_CUSTOMER, REMINDER)


def _queue(kind: str, phone: str | None, subject: str, *, due_at: datetime | None = None,
           request: PaymentRequest | None = None, payment: Payment | None = None, **context) -> str | None:
    """Insert one outbox row unless its dedupe key exists; returns the key of a new row, else None."""
    new = _queue_many([_message(kind, phone, subject, due_at=due_at, request=request, payment=payment, **context)])
    return new[0] if new else None


def _message(kind: str, phone: str | None, subject: str, *, due_at: datetime | None = None,
             request: PaymentRequest | None = None, payment: Payment | None = None, **context) -> dict | None:
    """The outbox row for one message (None when there is no phone to send it to)."""
    if not phone:
        return None
    return {
        "kind": kind,
        "phone": phone,
        "request": request.id if request else None,
        "payment": payment.id if payment else None,
        "due_at": due_at or utcnow(),
        "dedupe_key": f"{kind}:{subject}:{phone}",
        "context": context,
    }


def _queue_many(rows: list[dict | None]) -> list[str]:
    """Insert the outbox rows of one event in one statement, skipping those whose dedupe key
    exists, and schedule their sends; returns the keys of the new rows, in order."""
    rows = list({row["dedupe_key"]: row for row in rows if row}.values())  # a phone listed twice: one row
    if not rows:
        return []
    new = sqlcache.insert_many(Notification, rows, ignore_conflict=True, returning_key="dedupe_key")
    keys = []
    for row in rows:
        new_id = new.get(row["dedupe_key"])
        if new_id is not None:
            schedule_send(new_id, row["due_at"])
            keys.append(row["dedupe_key"])
    return keys


def send_job_id(notification_id: int, due_at: datetime) -> str:
    """One job id per row and due time: enqueueing the same schedule twice keeps one job."""
    return f"notify-{notification_id}-{int(due_at.timestamp())}"


def schedule_send(notification_id: int, due_at: datetime) -> None:
    """Enqueue the send job at `due_at`, after the current transaction commits."""
    from webapp.plumbing import jobqueue

    job_id = send_job_id(notification_id, due_at)
    if due_at <= utcnow():
        jobqueue.enqueue("send_notification", notification_id, job_id=job_id)
    else:
        jobqueue.enqueue_at("send_notification", due_at, notification_id, job_id=job_id)


def _agent_phone(request: PaymentRequest) -> str | None:
    return request.agent.phone if request.agent_id and request.agent.is_active else None


def request_created(request: PaymentRequest, alert_after: timedelta) -> list[str]:
    """The pending alert to agent and customer, due `alert_after` after the request appeared."""
    due = request.created_at + alert_after
    subject = f"request:{request.reference}"
    return _queue_many([
        _message(Kind.PENDING_ALERT_AGENT, _agent_phone(request), subject, due_at=due, request=request),
        _message(Kind.PENDING_ALERT_CUSTOMER, request.customer_phone, subject, due_at=due, request=request),
    ])


def cancel_pending_alerts(request: PaymentRequest, reason: str) -> int:
    """A request that ended (or was paid) sends no 'still pending' alert."""
    return sqlcache.update(
        Notification, {"status": NotificationStatus.CANCELLED, "last_error": reason},
        {"request": request.id, "kind": Kind.PENDING_ALERTS, "status": NotificationStatus.PENDING},
    )


def request_paid(request: PaymentRequest, payment: Payment, *, alerts_pending: bool = True) -> list[str]:
    """The confirmations to customer and agent; `alerts_pending` False: the caller saw that no
    'still pending' alert waits (else any is cancelled)."""
    if alerts_pending:
        cancel_pending_alerts(request, "paid")
    subject = f"request:{request.reference}"
    return _queue_many([
        _message(Kind.CONFIRMED_CUSTOMER, request.customer_phone, subject, request=request, payment=payment),
        _message(Kind.CONFIRMED_AGENT, _agent_phone(request), subject, request=request, payment=payment),
    ])


def installment_received(request: PaymentRequest, payment: Payment) -> list[str]:
    """Tell the customer an installment arrived and what is left ("received 200,000, balance 300,000")."""
    cancel_pending_alerts(request, "installment")
    subject = f"payment:{payment.id}:request:{request.reference}"
    new = _queue(Kind.INSTALLMENT_CUSTOMER, request.customer_phone, subject, request=request, payment=payment)
    return [new] if new else []


def request_expired(request: PaymentRequest) -> list[str]:
    cancel_pending_alerts(request, "expired")
    new = _queue(Kind.EXPIRED_CUSTOMER, request.customer_phone, f"request:{request.reference}", request=request)
    return [new] if new else []


def request_ended(request: PaymentRequest, status: str) -> None:
    cancel_pending_alerts(request, status)


def payment_rejected(request: PaymentRequest, payment: Payment, message: str | None = None) -> list[str]:
    """Tell the customer their payment was not accepted: staff's `message` (a template text,
    checked by the caller) or the kind's template. Staff's internal reason never goes out."""
    subject = f"payment:{payment.id}:request:{request.reference}"
    context = {"template": message} if message else {}
    new = _queue(Kind.REJECTED_CUSTOMER, request.customer_phone, subject, request=request, payment=payment,
                 **context)
    return [new] if new else []


def payment_unmatched(payment: Payment, admin_phones: list[str]) -> list[str]:
    return _queue_many([_message(Kind.UNMATCHED_ADMIN, phone, f"payment:{payment.id}", payment=payment)
                        for phone in admin_phones])


def admin_alert(key: str, text: str) -> list[str]:
    """One WhatsApp per admin phone for an operational alarm; `key` makes it once per occurrence."""
    from webapp.domain import options

    phones = options.current().get("admin_phones") or []
    return _queue_many([_message(Kind.ADMIN_ALERT, phone, key, text=text) for phone in phones])


def test_message(phone: str, *, actor: str) -> str:
    """The session page's test message to `phone` (E.164): an ordinary outbox row; returns its dedupe key."""
    from webapp.domain import audit
    from webapp.storage import db

    now = utcnow()
    with db.transaction():
        key = _queue(Kind.ADMIN_ALERT, phone, f"test:{now.isoformat()}",
                     text=f"Paywatch test message ({now.strftime('%Y-%m-%d %H:%M:%S')} UTC): WhatsApp works.")
        audit.record("whatsapp.test_message", f"phone:{phone}", actor=actor)
    return key or ""


def retry(notification_id: int, *, actor: str) -> Notification:
    """Staff's retry button: a failed (or cancelled) message goes out again, now."""
    from webapp.domain import audit
    from webapp.storage import db

    now = utcnow()
    with db.transaction():
        changed = sqlcache.update(
            Notification, {"status": NotificationStatus.PENDING, "attempts": 0, "due_at": now, "last_error": None},
            {"id": notification_id, "status": (NotificationStatus.FAILED, NotificationStatus.CANCELLED)},
        )
        if changed != 1:
            raise ValueError(f"notification {notification_id} is not failed or cancelled")
        audit.record("notification.retried", f"notification:{notification_id}", actor=actor)
        schedule_send(notification_id, now)
    return Notification.get_by_id(notification_id)
