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
    if not phone:
        return None
    row = {
        "kind": kind,
        "phone": phone,
        "request": request.id if request else None,
        "payment": payment.id if payment else None,
        "due_at": due_at or utcnow(),
        "dedupe_key": f"{kind}:{subject}:{phone}",
        "context": context,
    }
    new_id = sqlcache.insert(Notification, row, ignore_conflict=True)
    if new_id is None:
        return None
    schedule_send(new_id, row["due_at"])
    return row["dedupe_key"]


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
    ids = [
        _queue(Kind.PENDING_ALERT_AGENT, _agent_phone(request), subject, due_at=due, request=request),
        _queue(Kind.PENDING_ALERT_CUSTOMER, request.customer_phone, subject, due_at=due, request=request),
    ]
    return [i for i in ids if i]


def cancel_pending_alerts(request: PaymentRequest, reason: str) -> int:
    """A request that ended (or was paid) sends no 'still pending' alert."""
    return sqlcache.update(
        Notification, {"status": NotificationStatus.CANCELLED, "last_error": reason},
        {"request": request.id, "kind": Kind.PENDING_ALERTS, "status": NotificationStatus.PENDING},
    )


def request_paid(request: PaymentRequest, payment: Payment) -> list[str]:
    cancel_pending_alerts(request, "paid")
    subject = f"request:{request.reference}"
    ids = [
        _queue(Kind.CONFIRMED_CUSTOMER, request.customer_phone, subject, request=request, payment=payment),
        _queue(Kind.CONFIRMED_AGENT, _agent_phone(request), subject, request=request, payment=payment),
    ]
    return [i for i in ids if i]


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
    ids = [_queue(Kind.UNMATCHED_ADMIN, phone, f"payment:{payment.id}", payment=payment) for phone in admin_phones]
    return [i for i in ids if i]


def admin_alert(key: str, text: str) -> list[str]:
    """One WhatsApp per admin phone for an operational alarm; `key` makes it once per occurrence."""
    from webapp.domain import options

    phones = options.current().get("admin_phones") or []
    ids = [_queue(Kind.ADMIN_ALERT, phone, key, text=text) for phone in phones]
    return [i for i in ids if i]


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
