"""Re-reading kept evidence: an unreadable or generically read payment read again by a new rule.

`reread_payment()` is one transaction: compare-and-set on the payment still waiting
(unmatched or in review, unreadable or generic), the new reading written over the old
one, the audit event, and matching run again with the usual holds. Money already
stored under the same (currency, transaction id, amount) is not made twice: the
payment stays in review, its reason naming the other payment.
"""
from __future__ import annotations

from datetime import datetime

from webapp.domain import audit
from webapp.domain.ledger.core import LedgerError, PaymentObservation, _clear_candidates, _release_requests, normalize_txn
from webapp.domain.ledger.money_in import _hold, _match
from webapp.storage import db
from webapp.storage.models import Payment, PaymentStatus, utcnow

WAITING = (PaymentStatus.UNMATCHED, PaymentStatus.REVIEW)


def reread_payment(payment_id: int, obs: PaymentObservation, *, actor: str, why: str,
                   now: datetime | None = None) -> Payment:
    """Replace a waiting payment's reading with `obs` (a rule's, amount required) and match it again.

    Raises LedgerError when the payment is gone, decided, or was read by a rule already.
    """
    now = now or utcnow()
    if obs.amount_minor is None or not obs.currency:
        raise LedgerError("unreadable", "a re-reading needs an amount and a currency", status=422)
    with db.transaction():
        payment = Payment.get_or_none(Payment.id == payment_id)
        if payment is None:
            raise LedgerError("not_found", f"payment {payment_id} does not exist", status=404)
        txn = normalize_txn(obs.transaction_id)
        twin = None
        if txn:
            twin = (Payment.select(Payment.id).where(Payment.currency == obs.currency, Payment.txn_norm == txn,
                                                     Payment.amount_minor == obs.amount_minor, Payment.id != payment_id)
                    .first())
        values = dict(
            amount_minor=obs.amount_minor, currency=obs.currency, transaction_id=obs.transaction_id,
            txn_norm=None if twin else txn, provider=obs.provider or payment.provider,
            sender_name=obs.sender_name or "", sender_phone=obs.sender_phone, note=obs.note or "",
            received_at=obs.received_at, parsed=True, generic=False, reading="",
        )
        changed = (Payment.update(**values)
                   .where(Payment.id == payment_id, Payment.status.in_(WAITING),
                          (Payment.parsed == False) | (Payment.generic == True))  # noqa: E712
                   .execute())
        if changed != 1:
            raise LedgerError("conflict", f"payment {payment_id} is decided or already read by a rule", status=409)
        audit.record("payment.reread", f"payment:{payment_id}", actor=actor, why=why,
                     amount_minor=obs.amount_minor, currency=obs.currency, transaction_id=obs.transaction_id,
                     was_unreadable=not payment.parsed, was_generic=payment.generic)
        _release_requests(_clear_candidates(payment_id))
        fresh = Payment.get_by_id(payment_id)
        if twin is not None:
            reason = f"re-read as the same money as payment {twin.id}: a person must decide"
            Payment.update(status=PaymentStatus.REVIEW, reason=reason).where(Payment.id == payment_id).execute()
            return Payment.get_by_id(payment_id)
        _match(fresh, now, hold=_hold(fresh))
    return Payment.get_by_id(payment_id)
