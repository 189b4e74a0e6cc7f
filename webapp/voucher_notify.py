"""The customer's voucher message: one `voucher_customer` outbox row per request and phone.

The row carries its text in `context["text"]` (the fallback template of a kind without
its own is `{{ text }}`) and the code in `context["code"]`; the send job is scheduled
through notify.schedule_send, after the ledger's transaction commits.
"""
from __future__ import annotations

from webapp import money, notify, sqlcache
from webapp.models import Notification, PaymentRequest, Voucher, utcnow

KIND = "voucher_customer"


def voucher_issued(request: PaymentRequest, voucher: Voucher) -> str | None:
    """Queue the voucher WhatsApp to the customer; returns its dedupe key, None when there is no phone
    or it was queued already."""
    if not request.customer_phone:
        return None
    text = (f"Thank you{' ' + request.customer_name if request.customer_name else ''}! "
            f"Your payment {request.reference} of {money.display(request.amount_minor, request.currency)} "
            f"is confirmed. Your voucher code: {voucher.code}")
    now = utcnow()
    key = f"{KIND}:request:{request.reference}:{request.customer_phone}"
    new_id = sqlcache.insert(Notification, {
        "kind": KIND, "phone": request.customer_phone, "request": request.id, "payment": None,
        "due_at": now, "dedupe_key": key, "context": {"text": text, "code": voucher.code, "pool": voucher.pool},
    }, ignore_conflict=True)
    if new_id is None:
        return None
    notify.schedule_send(new_id, now)
    return key
