"""The payer roster (students, tenants, members): create, CSV import, requests for a group, statements.

A payer has a code the business already uses (admission number, unit, member number),
a name, a group (class, building) and the phones known to pay for them; an installment
request names its payer, and a payment from one of those phones counts toward it
(webapp.domain.ledger.installments). CSV import: `code,name,phones,group` (phones separated
by ";" or spaces), keyed by code, so importing again updates rather than duplicates.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from webapp.config import settings
from webapp.domain import audit, ledger, phones
from webapp.domain.agents import ImportReport, csv_rows
from webapp.storage import db
from webapp.storage.models import Payer, Payment, PaymentRequest, PaymentStatus, RequestStatus, utcnow

COLUMNS = ("code", "name", "phones", "group")
MAX_TEXT = 200
_SPLIT = re.compile(r"[;,/\s]+(?=[+0-9])")


class PayerError(ValueError):
    """Input that cannot be accepted; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _text(raw: str | None, field: str, *, required: bool) -> str:
    value = " ".join((raw or "").split())
    if required and not value:
        raise PayerError(field, f"{field}: required")
    if len(value) > MAX_TEXT:
        raise PayerError(field, f"{field}: at most {MAX_TEXT} characters")
    return value


def clean_phones(raw: str | list[str] | None) -> list[str]:
    """E.164 numbers from a list or one text ("0772 123456; +256701234567"); PayerError naming the bad one."""
    items = raw if isinstance(raw, list) else [p for p in _SPLIT.split((raw or "").strip()) if p.strip()]
    found = []
    for item in items[:5]:
        try:
            number = phones.to_e164(str(item), settings().phone_region)
        except phones.PhoneError:
            raise PayerError("phones", f"phones: {str(item)[:40]!r} is not a phone number") from None
        if number not in found:
            found.append(number)
    if len(items) > 5:
        raise PayerError("phones", "phones: at most 5 per payer")
    return found


def save(code: str, name: str, phone_list, group: str = "", *, actor: str) -> tuple[Payer, str]:
    """Create or update the payer with `code`; returns (payer, "created" | "updated" | "unchanged")."""
    code, name = _text(code, "code", required=True), _text(name, "name", required=True)
    group, numbers = _text(group, "group", required=False), clean_phones(phone_list)
    with db.transaction():
        payer = Payer.get_or_none(Payer.code == code)
        if payer is None:
            payer = Payer.create(code=code, name=name, group=group, phones=numbers, created_at=utcnow())
            outcome = "created"
        elif (payer.name, payer.group, payer.phones) == (name, group, numbers):
            return payer, "unchanged"
        else:
            Payer.update(name=name, group=group, phones=numbers).where(Payer.id == payer.id).execute()
            payer, outcome = Payer.get_by_id(payer.id), "updated"
        audit.record(f"payer.{outcome}", f"payer:{code}", actor=actor, name=name, group=group, phones=len(numbers))
    return payer, outcome


def import_csv(text: str, *, actor: str) -> ImportReport:
    """Import `code,name,phones,group` lines; every rejected line is reported with its reason."""
    report = ImportReport("payers")
    seen: dict[str, int] = {}
    with db.transaction():
        for number, row in csv_rows(text, COLUMNS, report):
            code = row.get("code", "").strip()
            if code in seen:
                report.rejected.append((number, f"repeats line {seen[code]} ({code})"))
                continue
            try:
                with db.transaction():
                    _, outcome = save(code, row.get("name", ""), row.get("phones", ""), row.get("group", ""),
                                      actor=actor)
            except PayerError as exc:
                report.rejected.append((number, exc.message))
                continue
            seen[code] = number
            setattr(report, outcome, getattr(report, outcome) + 1)
        report.rejected.sort()
    if len(seen) >= db.BULK_ROWS:
        db.refresh_statistics(Payer)
    return report


@dataclass(frozen=True)
class GroupRequests:
    created: list[str]
    skipped: list[tuple[str, str]]  # (payer code, why)


def request_for_group(group: str, amount_minor: int, currency: str, due_at: datetime, *, label: str,
                      actor: str, allow_partial: bool = True) -> GroupRequests:
    """One installment request per payer of `group` ("term 1 fees, 500,000, due 2027-01-15, class P5").

    A payer who already has an open request with this label is skipped (running it twice
    creates nothing new).
    """
    group = _text(group, "group", required=True)
    created, skipped = [], []
    for payer in Payer.select().where(Payer.group == group).order_by(Payer.code):
        exists = PaymentRequest.select().where(
            PaymentRequest.payer == payer.id, PaymentRequest.status.in_(RequestStatus.OPEN + (RequestStatus.PARTIAL,)),
            PaymentRequest.meta.cast("text").contains(f'"label": "{_json_safe(label)}"')).exists()
        if exists:
            skipped.append((payer.code, f"already has an open request “{label}”"))
            continue
        new = ledger.NewRequest(
            amount_minor=amount_minor, currency=currency, customer_name=payer.name,
            customer_phone=payer.phones[0] if payer.phones else None, due_at=due_at, allow_partial=allow_partial,
            payer_id=payer.id, source="ui", meta={"label": label})
        created.append(ledger.create_request(new, actor=actor).reference)
    return GroupRequests(created, skipped)


def _json_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Line:
    at: datetime
    kind: str  # "request" | "payment"
    reference: str
    text: str
    charge_minor: int  # what a request adds to the balance
    paid_minor: int  # what a payment takes off


@dataclass(frozen=True)
class Statement:
    payer: Payer
    currency: str
    lines: list[Line]
    owed_minor: int
    paid_minor: int

    @property
    def balance_minor(self) -> int:
        return self.owed_minor - self.paid_minor


def statement(payer: Payer) -> Statement:
    """The payer's requests (charges) and confirmed payments toward them, oldest first, with the balance.

    Cancelled and failed requests are left out; so are payments still in review.
    """
    requests = list(PaymentRequest.select().where(
        PaymentRequest.payer == payer.id,
        PaymentRequest.status.not_in((RequestStatus.CANCELLED, RequestStatus.FAILED))).order_by(PaymentRequest.id))
    lines = [Line(r.created_at, "request", r.reference, (r.meta or {}).get("label") or "request",
                  r.amount_minor, 0) for r in requests]
    by_id = {r.id: r for r in requests}
    payments = Payment.select().where(Payment.request.in_(list(by_id)), Payment.status == PaymentStatus.CONFIRMED) \
        if by_id else []
    for p in payments:
        lines.append(Line(p.received_at, "payment", by_id[p.request_id].reference,
                          f"payment {p.transaction_id or p.source_ref}", 0, p.amount_minor or 0))
    lines.sort(key=lambda line: (line.at, line.kind != "request"))
    currency = requests[0].currency if requests else settings().currency
    owed = sum(r.amount_minor for r in requests if r.status != RequestStatus.EXPIRED)
    paid = sum(line.paid_minor for line in lines)
    return Statement(payer, currency, lines, owed, paid)
