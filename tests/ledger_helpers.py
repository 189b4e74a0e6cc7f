"""Building requests and payments through the ledger, for tests."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from webapp.domain import ledger
from webapp.storage.models import Event, utcnow

_refs = itertools.count(1)


def new_request(amount: int = 5000, currency: str = "UGX", *, name: str = "Jane Doe",
                phone: str | None = "+256772123456", now: datetime | None = None, **extra):
    return ledger.create_request(
        ledger.NewRequest(amount_minor=amount, currency=currency, customer_name=name, customer_phone=phone, **extra),
        actor="test", now=now,
    )


def observe(amount: int | None = 5000, currency: str | None = "UGX", *, ref: str | None = None,
            source: str = "test", received_at: datetime | None = None, name: str = "", phone: str | None = None,
            note: str = "", **extra) -> ledger.PaymentObservation:
    return ledger.PaymentObservation(
        source=source, source_ref=ref or f"ref-{next(_refs)}", amount_minor=amount, currency=currency,
        received_at=received_at or utcnow(), sender_name=name, sender_phone=phone, note=note, **extra,
    )


def pay(amount: int = 5000, **kwargs) -> ledger.IngestResult:
    now = kwargs.pop("now", None)
    return ledger.ingest_payment(observe(amount, **kwargs), actor="test", now=now)


def ago(**delta) -> datetime:
    return utcnow() - timedelta(**delta)


def fresh(row):
    """The row as the database holds it now."""
    return type(row).get_by_id(row.id)


def actions(subject: str) -> list[str]:
    """The audit actions recorded about `subject`, oldest first."""
    return [e.action for e in Event.select().where(Event.subject == subject).order_by(Event.id)]
