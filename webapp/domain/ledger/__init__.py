"""Every state change of requests and payments.

Each public function is one transaction holding the change (a compare-and-set:
UPDATE … WHERE status IN (allowed) and a row count check), its audit event and its
outbox rows; jobs are enqueued only after the commit. Running one twice, or two
at once in two processes, leaves exactly one winner: the loser sees the row
count 0 and gets a LedgerError (staff actions) or a fresh decision (matching).

Split by subject: core (errors, shared compare-and-sets), owed (requests),
money_in (payments and matching), decisions (staff), observed (what sources report),
reread (kept evidence read again by a new rule).
"""
from webapp.domain.ledger.core import (
    DECIDABLE,
    PAYABLE,
    IngestResult,
    LedgerError,
    NewRequest,
    PaymentObservation,
    find_payment,
    find_request,
    normalize_txn,
    text_key,
)
from webapp.domain.ledger.decisions import confirm, link, reject, why_not_tell_customer
from webapp.domain.ledger.money_in import ingest_payment, ingest_payments
from webapp.domain.ledger.observed import (
    ENDINGS,
    REVERSED_REASON,
    ObserveResult,
    RequestObservation,
    flag_reversal,
    observe_request,
)
from webapp.domain.ledger.owed import cancel_request, create_request, expire_due
from webapp.domain.ledger.reread import reread_payment

__all__ = [
    "DECIDABLE", "ENDINGS", "PAYABLE", "REVERSED_REASON", "IngestResult", "LedgerError", "NewRequest",
    "ObserveResult", "PaymentObservation", "RequestObservation", "cancel_request", "confirm", "create_request",
    "expire_due", "find_payment", "find_request", "flag_reversal", "ingest_payment", "ingest_payments", "link",
    "normalize_txn", "observe_request", "reject", "reread_payment", "text_key", "why_not_tell_customer",
]
