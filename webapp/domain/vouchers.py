"""Vouchers: codes in named pools, one handed to the customer of a paid request.

- import_codes(pool, lines) loads a CSV (one `code` column, header optional) and reports
  what it added, what was already there (duplicates) and the lines it could not read.
- on_paid(request) runs inside the ledger's transaction when a request with a
  `voucher_pool` is paid: it assigns exactly one voucher (assign), queues the customer's
  WhatsApp, alerts the admins once when the pool runs low; with the pool empty it flags
  the request `voucher_pool_empty` and alerts the admins once per empty spell.

Assignment is a compare-and-set on the voucher row (`… WHERE id = ? AND request_id IS
NULL`). On PostgreSQL the row is first picked with `FOR UPDATE SKIP LOCKED`, so N
concurrent payments take N different rows without waiting on each other or retrying;
on SQLite the ledger's transaction already holds the write lock (BEGIN IMMEDIATE), so the
sub-select + compare-and-set cannot lose. The unique index on voucher.request_id makes
a second voucher for one request impossible whatever happens.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from typing import Iterable

from peewee import JOIN, IntegrityError, PostgresqlDatabase, fn

from webapp.domain import alerts, audit, options, outbox, webhooks
from webapp.storage import db
from webapp.storage.models import PaymentRequest, Voucher, utcnow

POOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CODE = re.compile(r"^[!-~]{1,64}$")  # printable ASCII, no spaces
DEFAULT_LOW_STOCK = 10  # the `voucher_low_stock` option when the settings do not have it
EMPTY_FLAG = "voucher_pool_empty"
CHUNK = 500


class VoucherError(ValueError):
    """A pool name or import that cannot be accepted; the message says why."""


@dataclass
class ImportReport:
    pool: str
    added: int = 0
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)


def check_pool(pool: str) -> str:
    pool = (pool or "").strip()
    if not POOL.match(pool):
        raise VoucherError(f"pool name must be 1–64 letters, digits, '.', '-' or '_', got {pool!r}")
    return pool


def read_codes(lines: Iterable[str], report: ImportReport) -> list[str]:
    """Codes from CSV lines (first column; a first row `code` is a header); bad lines go to the report."""
    codes, seen = [], set()
    for number, row in enumerate(csv.reader(lines), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        code = cells[0]
        if number == 1 and code.lower() == "code":
            continue
        if not CODE.match(code):
            report.rejected.append((number, ",".join(row)[:100], "a code is 1–64 printable characters, no spaces"))
        elif code in seen:
            report.duplicates.append(code)
        else:
            seen.add(code)
            codes.append(code)
    return codes


def import_codes(pool: str, lines: Iterable[str], *, actor: str) -> ImportReport:
    """Add the codes of a CSV to `pool` in one transaction; codes already in the pool are reported."""
    report = ImportReport(check_pool(pool))
    codes = read_codes(lines, report)
    now = utcnow()
    with db.transaction():
        for start in range(0, len(codes), CHUNK):
            chunk = codes[start:start + CHUNK]
            present = {v.code for v in Voucher.select(Voucher.code).where(Voucher.pool == report.pool,
                                                                           Voucher.code.in_(chunk))}
            report.duplicates += [c for c in chunk if c in present]
            fresh = [{"pool": report.pool, "code": c, "created_at": now} for c in chunk if c not in present]
            if fresh:
                Voucher.insert_many(fresh).execute()
            report.added += len(fresh)
        audit.record("vouchers.imported", f"pool:{report.pool}", actor=actor, added=report.added,
                     duplicates=len(report.duplicates), rejected=len(report.rejected))
        if report.added:  # refilled: an empty spell ends (the all-clear); the next one alerts again
            alerts.clear_alert(alerts.VOUCHER_POOL_EMPTY, report.pool, text=f"{report.added} codes imported.")
    if report.added >= db.BULK_ROWS:
        db.refresh_statistics(Voucher)
    return report


def counts(pool: str) -> tuple[int, int]:
    """(total, left) of one pool."""
    total, used = (Voucher.select(fn.COUNT(Voucher.id), fn.COUNT(Voucher.request))
                   .where(Voucher.pool == pool).scalar(as_tuple=True))
    return total or 0, (total or 0) - (used or 0)


def pools() -> list[dict]:
    """Every pool with its counts: [{pool, total, used, left}], by name."""
    rows = (Voucher.select(Voucher.pool, fn.COUNT(Voucher.id).alias("total"),
                           fn.COUNT(Voucher.request).alias("used"))
            .group_by(Voucher.pool).order_by(Voucher.pool).dicts())
    return [{**r, "left": r["total"] - r["used"]} for r in rows]


def used_codes(pool: str):
    """The pool's assigned vouchers with their request, in order of assignment (a query)."""
    return (Voucher.select(Voucher, PaymentRequest).join(PaymentRequest, JOIN.INNER)
            .where(Voucher.pool == pool).order_by(Voucher.assigned_at, Voucher.id))


def voucher_of(request: PaymentRequest) -> Voucher | None:
    return Voucher.get_or_none(Voucher.request == request.id)


def assign(request: PaymentRequest, *, tries: int = 5) -> Voucher | None:
    """Give `request` one voucher of its pool (the one it has, when it has one); None when empty."""
    existing = voucher_of(request)
    if existing or not request.voucher_pool:
        return existing
    now = utcnow()
    postgres = isinstance(db.database.obj, PostgresqlDatabase)
    for _ in range(tries):
        try:
            with db.transaction():
                won = _take(request, now, postgres)
                if won:
                    webhooks.request_event("voucher.assigned", request)
        except IntegrityError:  # the same request got one in another process meanwhile
            return voucher_of(request)
        if won is None:
            return None
        if won:
            return voucher_of(request)
    return None


def _take(request: PaymentRequest, now, postgres: bool) -> bool | None:
    """One compare-and-set attempt: True when won, False when lost a race, None when the pool is empty."""
    free = Voucher.select(Voucher.id).where(Voucher.pool == request.voucher_pool, Voucher.request.is_null())
    if postgres:
        row = free.order_by(Voucher.id).limit(1).for_update("FOR UPDATE SKIP LOCKED").first()
        if row is None:
            return None
        target = row.id
    else:
        target = free.order_by(Voucher.id).limit(1)
        if not target.exists():
            return None
    changed = (Voucher.update(request=request.id, assigned_at=now)
               .where(Voucher.id == target, Voucher.request.is_null()).execute())
    return changed == 1


def on_paid(request: PaymentRequest) -> Voucher | None:
    """A paid request with a pool gets its voucher; see the module doc.

    The code reaches the customer in their payment confirmation (rendered when it is
    sent, after this transaction commits), so one WhatsApp carries both.
    """
    if not request.voucher_pool:
        return None
    voucher = assign(request)
    total, left = counts(request.voucher_pool)
    if voucher is None:
        _flag_empty(request, total)
        return None
    threshold = options.current().get("voucher_low_stock", DEFAULT_LOW_STOCK)
    if left < threshold:
        # Keyed by the pool's size: once per import, again after the next import runs low.
        outbox.admin_alert(f"voucher_low_stock:{request.voucher_pool}:{total}",
                           f"Paywatch: voucher pool {request.voucher_pool} is running low: {left} of {total} left.")
    return voucher


def _flag_empty(request: PaymentRequest, total: int) -> None:
    with db.transaction():
        PaymentRequest.update(flag=EMPTY_FLAG).where(PaymentRequest.id == request.id).execute()
        audit.record("request.voucher_missing", f"request:{request.reference}", actor="system",
                     pool=request.voucher_pool)
        alerts.open_alert(alerts.VOUCHER_POOL_EMPTY, request.voucher_pool,
                          f"Voucher pool {request.voucher_pool} is empty; {request.reference} was paid "
                          "without a voucher. Import codes, then hand one out by hand.")
