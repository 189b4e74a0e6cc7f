"""Billing-database sources: reading pending rows and writing statuses and vouchers back.

Jobs (names in webapp.plumbing.jobqueue.JOBS):
- `billing_poll(source_id)`: every `interval_s` (5 s by default). Pending rows above the
  cursor (less a look-back of LOOKBACK ids, for rows committed late) become requests
  registered to the gateway source (webapp.domain.billing.register); the rows of
  requests still open are re-read, and a status the billing system wrote is observed.
  The connection is this process's one (webapp.plumbing.billing_db); when the database
  does not answer the pass raises the `database_unreachable` alarm, cleared by the next
  pass that reaches it, which catches up from the cursor.
- `billing_writeback(writeback_id)`: one transaction in the billing database: a
  compare-and-set of the row's status (only while it still holds the status we read),
  the voucher claimed from the billing database's own table (compare-and-set, so two
  rows never get one code) or taken from our pool, written into the row's voucher column.
- `billing_writeback_sweep`: every 15 s, re-enqueues write-backs whose retry is due.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from jobs import job
from webapp.config import ConfigError
from webapp.domain import billing, billing_writeback, ledger, sources, vouchers
from webapp.domain.billing_writeback import Written
from webapp.plumbing import billing_db, jobqueue
from webapp.storage.models import PaymentRequest, Source, SourceKind, WritebackStatus, utcnow

log = logging.getLogger(__name__)

LOOKBACK = 200  # ids below the cursor read again: an auto-increment row may commit after a higher one
MAX_ROWS = 500  # new rows per table per pass; the rest come next pass
VOUCHER_TRIES = 50
ALARM = "database_unreachable"


def _fields(tmap: billing.TableMap) -> list[str]:
    return [f for f in ("id", "status", "amount", "currency", "phone", "external_id", "created_at", "customer_name")
            if tmap.column(f)]


def new_rows(conn: billing_db.Connection, tmap: billing.TableMap, after: int) -> list[dict[str, Any]]:
    fields = _fields(tmap)
    q = conn.q
    sql = (f"SELECT {', '.join(q(tmap.column(f)) for f in fields)} FROM {q(tmap.table)} "
           f"WHERE {q(tmap.column('status'))} = %s AND {q(tmap.column('id'))} > %s "
           f"ORDER BY {q(tmap.column('id'))} LIMIT {MAX_ROWS}")
    return [dict(zip(fields, r)) for r in conn.fetch(sql, (tmap.pending, after))]


def statuses(conn: billing_db.Connection, tmap: billing.TableMap, row_ids: list[str]) -> dict[str, Any]:
    q, found = conn.q, {}
    for start in range(0, len(row_ids), 500):
        chunk = row_ids[start:start + 500]
        sql = (f"SELECT {q(tmap.column('id'))}, {q(tmap.column('status'))} FROM {q(tmap.table)} "
               f"WHERE {q(tmap.column('id'))} IN ({', '.join(['%s'] * len(chunk))})")
        found.update({str(r[0]): r[1] for r in conn.fetch(sql, chunk)})
    return found


def run_pass(source_id: int, *, now: datetime | None = None, conn: billing_db.Connection | None = None) -> dict[str, Any]:
    """One pass over a database source: new pending rows, then status changes; returns a summary."""
    now = now or utcnow()
    source = Source.get_by_id(source_id)
    if source.kind != SourceKind.DATABASE or not source.enabled:
        return {"source": source.name, "skipped": "not an enabled database source"}
    config = billing.parse_config(source.config)
    try:
        url = config.url()
    except ConfigError as exc:  # the variable holding the URL is not set in this process
        sources.record_pass(source.id, ok=False, error=str(exc), now=now)
        sources.raise_alarm(source.id, "database_config", str(exc), now=now)
        return {"source": source.name, "error": str(exc)}
    sources.clear_alarm(source.id, "database_config")
    try:
        conn = conn or billing_db.connection(url)
        summary = _read(source, config, conn, now)
    except billing_db.BillingDbError as exc:
        sources.record_pass(source.id, ok=False, error=str(exc), now=now)
        sources.raise_alarm(source.id, ALARM, f"the billing database does not answer: {exc}", now=now)
        return {"source": source.name, "error": str(exc)}
    sources.clear_alarm(source.id, ALARM)
    errors = summary.pop("errors")
    sources.record_pass(source.id, ok=not errors, error="; ".join(errors)[:2000] or None, now=now,
                        last_contact_at=now, counts=summary)
    return {"source": source.name, "errors": errors, **summary}


def _read(source: Source, config: billing.BillingConfig, conn: billing_db.Connection, now: datetime) -> dict:
    summary: dict[str, Any] = {"registered": 0, "observed": 0, "errors": []}
    for tmap in config.tables:
        cursor = int((source.cursor or {}).get(tmap.table, 0))
        rows = new_rows(conn, tmap, max(0, cursor - LOOKBACK))
        known = billing.known_rows(source, tmap.table, [str(r["id"]) for r in rows])
        for row in rows:
            if str(row["id"]) in known:
                continue
            try:
                if billing.register(source, config, tmap, row, now=now)[1]:
                    summary["registered"] += 1
            except billing.RowError as exc:
                summary["errors"].append(str(exc))
        if rows:
            billing.save_cursor(source.id, tmap.table, max(int(r["id"]) for r in rows))
        links = billing.open_links(source, tmap.table)
        current = statuses(conn, tmap, [link.row_id for link in links]) if links else {}
        for link in links:
            value = current.get(link.row_id)
            if value is None or str(value) == link.status_seen:
                continue  # unchanged (a row deleted at the billing system is left to its request's expiry)
            try:
                change = billing.observe_change(source, tmap, link, value, now=now)
                summary["observed"] += change not in ("noted", "unchanged")
            except ledger.LedgerError as exc:
                summary["errors"].append(f"{tmap.table} row {link.row_id}: {exc.message}")
    return summary


@job
def poll(source_id: int) -> dict[str, Any]:
    return run_pass(source_id)


# ---------------------------------------------------------------- writing back


def run_writeback(writeback_id: int, *, now: datetime | None = None,
                  conn: billing_db.Connection | None = None) -> dict[str, Any]:
    """Write one ended request back into its billing row (safe to run twice, or at once)."""
    now = now or utcnow()
    wb = billing_writeback.started(writeback_id, now)
    if wb is None:
        return {"writeback": writeback_id, "skipped": "not pending"}
    link = wb.row
    source = Source.get_by_id(link.source_id)
    actor = f"source:{source.name}"
    try:
        config = billing.parse_config(source.config)
        tmap = config.table(link.table_name)
        value = tmap.value_for(wb.outcome)
        code = None
        if wb.outcome == "paid" and config.voucher_pool:
            ours = vouchers.voucher_of(PaymentRequest.get_by_id(wb.request_id))
            code = ours.code if ours else None
        conn = conn or billing_db.connection(config.url())
        result = write(conn, config, tmap, link.row_id, expected=wb.expected, value=value, code=code,
                       claim=wb.outcome == "paid" and config.vouchers is not None)
    except (billing_db.BillingDbError, billing.BillingConfigError, ConfigError) as exc:
        billing_writeback.failed(wb.id, str(exc))
        log.warning("billing write-back %s not done (retried): %s", wb.id, exc)
        return {"writeback": wb.id, "error": str(exc)}
    billing_writeback.finished(wb.id, result, actor=actor, now=now)
    return {"writeback": wb.id, "status": result.status, "written": result.written, "voucher": result.voucher_code}


def write(conn: billing_db.Connection, config: billing.BillingConfig, tmap: billing.TableMap, row_id: str, *,
          expected: str, value: Any, code: str | None, claim: bool) -> Written:
    """The billing transaction: status (compare-and-set), then the voucher; all or nothing."""
    q = conn.q
    table, id_col, status_col = q(tmap.table), q(tmap.column("id")), q(tmap.column("status"))
    voucher_col = tmap.column("voucher")
    with conn.transaction() as tx:
        if str(value) != str(expected):
            changed = tx.execute(f"UPDATE {table} SET {status_col} = %s WHERE {id_col} = %s AND {status_col} = %s",
                                 (value, row_id, expected))
        else:
            changed = 0  # the row already says so (the billing system wrote it): nothing to write
        if changed != 1:
            cols = status_col + (f", {q(voucher_col)}" if voucher_col else "")
            rows = tx.fetch(f"SELECT {cols} FROM {table} WHERE {id_col} = %s", (row_id,))
            if rows and str(rows[0][0]) == str(value):  # written before (a retry), or by the billing system
                return Written(WritebackStatus.DONE, str(value), rows[0][1] if voucher_col else None, already=True)
            return Written(WritebackStatus.CONFLICT, found=str(rows[0][0]) if rows else "(row deleted)")
        missing = False
        if claim:
            code = claim_voucher(tx, config.vouchers, row_id)
            missing = code is None
        if code and voucher_col:
            tx.execute(f"UPDATE {table} SET {q(voucher_col)} = %s WHERE {id_col} = %s", (code, row_id))
    return Written(WritebackStatus.DONE, str(value), code, voucher_missing=missing)


def claim_voucher(tx: billing_db.Tx, spec: billing.VoucherTable, row_id: str) -> str | None:
    """Take one free voucher of the billing database's table for `row_id`: pick the first free
    one, then UPDATE it only while still free; a lost race (0 rows) looks again. None when none is free."""
    q, c = tx.conn.q, spec.columns
    table, used = q(spec.table), q(c["used"])
    free = f"({used} IS NULL OR {used} <> %s)"
    for _ in range(VOUCHER_TRIES):
        rows = tx.fetch(f"SELECT {q(c['id'])}, {q(c['code'])} FROM {table} WHERE {free} ORDER BY {q(c['id'])} LIMIT 1",
                        (spec.used_value,))
        if not rows:
            return None
        voucher_id, code = rows[0]
        taken = tx.execute(f"UPDATE {table} SET {used} = %s, {q(c['request_id'])} = %s "
                           f"WHERE {q(c['id'])} = %s AND {free}", (spec.used_value, row_id, voucher_id, spec.used_value))
        if taken == 1:
            return str(code)
    raise billing_db.BillingDbError(f"lost {VOUCHER_TRIES} races for a voucher in a row; retried later")


@job
def writeback(writeback_id: int) -> dict[str, Any]:
    return run_writeback(writeback_id)


def run_sweep(*, now: datetime | None = None) -> dict[str, Any]:
    """Enqueue the write-backs whose retry is due (after a failure, a lost job, a Redis flush)."""
    queued = 0
    for wb_id in billing_writeback.due(now):
        if not jobqueue.is_live(billing_writeback.job_id(wb_id)):
            jobqueue.enqueue("billing_writeback", wb_id, job_id=billing_writeback.job_id(wb_id))
            queued += 1
    return {"queued": queued}


@job
def sweep() -> dict[str, Any]:
    return run_sweep()

