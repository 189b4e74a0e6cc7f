"""How long personal text is kept (run-time options `keep_*`): raw mail and payment bodies, message
texts, alert mails, API idempotency records. Payments, requests and the audit log are kept for good;
only their raw text goes (a payment keeps its amount, sender, reference and evidence).

apply(now) blanks or deletes what is older than its option, in batches, and returns the counts.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from webapp.domain import options
from webapp.storage import db
from webapp.storage.models import (AlertMail, IdempotencyRecord, Notification, NotificationStatus, Payment,
                                   PaymentSighting, Reversal, utcnow)

BATCH = 1000
ENDED = (NotificationStatus.SENT, NotificationStatus.FAILED, NotificationStatus.CANCELLED)


def _blank(model, field, cutoff_field, cutoff: datetime, *extra, values: dict | None = None) -> int:
    """Blank `field` on rows older than `cutoff`, BATCH rows per transaction; returns the count."""
    total = 0
    while True:
        with db.transaction():
            ids = [r.id for r in model.select(model.id).where(cutoff_field < cutoff, field != "", *extra).limit(BATCH)]
            if not ids:
                return total
            total += model.update(**(values or {field.name: ""})).where(model.id.in_(ids)).execute()


def apply(now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    values = options.current()
    mail_cutoff = now - timedelta(days=values["keep_mail_days"])
    message_cutoff = now - timedelta(days=values["keep_message_days"])
    done = {
        "payment_raw": _blank(Payment, Payment.raw, Payment.received_at, mail_cutoff),
        "sighting_raw": _blank(PaymentSighting, PaymentSighting.raw, PaymentSighting.received_at, mail_cutoff),
        "reversal_raw": _blank(Reversal, Reversal.raw, Reversal.created_at, mail_cutoff),
        "message_texts": _blank(Notification, Notification.body, Notification.created_at, message_cutoff,
                                Notification.status.in_(ENDED), values={"body": "", "context": {}}),
        "alert_mails": _blank(AlertMail, AlertMail.body, AlertMail.created_at, message_cutoff,
                              AlertMail.status != "pending"),
    }
    cutoff = now - timedelta(hours=values["keep_idempotency_hours"])
    done["idempotency_records"] = IdempotencyRecord.delete().where(IdempotencyRecord.created_at < cutoff).execute()
    return done
