"""The tally tables' upkeep: the rows their triggers append, folded; their dead pages, given back.

request_tally (migration 0083), payment_tally (0104) and picture_tally (0095) are kept by triggers in the writing
transaction, one +/− row per change; webapp.domain.reports reads their sums and folds them here when
the rows pile up, and the recurring compact_tallies job (jobs.sweeps) gives back, on PostgreSQL, the
pages a bulk load left behind.
"""
from __future__ import annotations

import logging

from peewee import OperationalError, PostgresqlDatabase

from webapp.storage.db import database, transaction

log = logging.getLogger(__name__)


def fold(table: str, groups: tuple[str, ...], sums: tuple[str, ...], where: str = "1 = 1") -> None:
    """Replace `table`'s rows matching `where` (constant SQL) by one per `groups` with the sums of `sums`
    (all-zero sums dropped). Exact under concurrent writers: only the rows deleted here are summed; rows appended
    meanwhile stay."""
    columns = ", ".join(groups + sums)
    grouped = f"SELECT {', '.join(groups)}, {', '.join(f'SUM({c})' for c in sums)}"
    having = " OR ".join(f"SUM({c}) <> 0" for c in sums)
    with transaction():
        if isinstance(database.obj, PostgresqlDatabase):
            database.execute_sql(
                f"WITH gone AS (DELETE FROM {table} WHERE {where} RETURNING {columns}) INSERT INTO {table} ({columns}) "
                f"{grouped} FROM gone GROUP BY {', '.join(groups)} HAVING {having}")
            return
        # SQLite: one writer at a time, so a snapshot of the ids read here is all there is.
        top = database.execute_sql(f"SELECT MAX(id) FROM {table} WHERE {where}").fetchone()[0]
        if top is None:
            return
        database.execute_sql(f"INSERT INTO {table} ({columns}) {grouped} FROM {table} WHERE id <= ? AND {where} "
                             f"GROUP BY {', '.join(groups)} HAVING {having}", (top,))
        database.execute_sql(f"DELETE FROM {table} WHERE id <= ? AND {where}", (top,))


def fold_after_read(table: str, groups: tuple[str, ...], sums: tuple[str, ...], where: str = "1 = 1") -> bool:
    """fold() for a read that found the rows piled up (a page, a poll). What that read summed is exact
    already, so a fold that cannot have the write lock now — SQLite: another writer held it for the whole
    busy_timeout, as a long import can — is left to the next read (and logged) instead of failing the page.
    Returns whether it folded."""
    try:
        fold(table, groups, sums, where)
    except OperationalError as exc:
        log.warning("%s not folded, the next read tries again: %s", table, str(exc).strip())
        return False
    return True


# PostgreSQL keeps every page a tally table ever filled: a bulk load's triggers append a row per request
# or payment (~6,300 pages for 1M requests), a fold leaves ~350 of them alive, and VACUUM makes the rest
# reusable without giving them back, so each read of the tally still walks them all (~10 ms at 1M).
# A table at least COMPACT_MIN_BYTES big with more than COMPACT_BYTES_PER_ROW per live row (a folded
# tally row takes ~60) is rewritten; one that grows by ordinary use never gets there. Not one with more
# than COMPACT_MAX_ROWS live rows: the rewrite copies them while writers wait (the picture tally after
# a 1M load holds 1.1M folded rows, read through its covering index: seconds of waiting for little).
TALLY_TABLES = ("request_tally", "payment_tally", "picture_tally")
COMPACT_MIN_BYTES = 1 << 20
COMPACT_BYTES_PER_ROW = 1024
COMPACT_MAX_ROWS = 100_000


def compact(lock_timeout_ms: int = 250) -> dict[str, int]:
    """Rewrite each tally table that is mostly dead space (VACUUM FULL, PostgreSQL); returns {table: bytes
    given back}. Runs outside any transaction (VACUUM cannot run in one), from the recurring
    compact_tallies job. Nothing to do on SQLite: a DELETE's emptied pages leave the table's b-tree for
    the file's free list, so reads never walk them.

    The rewrite locks the table: writers of requests and payments wait while it runs (39 ms for the
    pages of 1M requests' load) and while it waits for the lock, which it does `lock_timeout_ms` at most
    (a busy table, a backup holding it) before leaving the table to the next run. It drops only the dead
    rows no open snapshot may still see: right after a bulk load (while its ANALYZE runs) or beside a
    long transaction it gives back little, and the next run tries again."""
    if not isinstance(database.obj, PostgresqlDatabase):
        return {}
    if database.obj.in_transaction():
        raise RuntimeError("tallies.compact runs outside a transaction (VACUUM cannot run inside one)")
    given_back = {}
    for table in TALLY_TABLES:  # constants of this module
        size = database.execute_sql(f"SELECT pg_relation_size('{table}'::regclass)").fetchone()[0]
        if size < COMPACT_MIN_BYTES:
            continue
        # The live rows, counted up to one past the cap (the chart tally of a large ledger is big).
        rows = database.execute_sql(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT {COMPACT_MAX_ROWS + 1}) AS live").fetchone()[0]
        if rows > COMPACT_MAX_ROWS or size <= COMPACT_BYTES_PER_ROW * max(rows, 1):
            continue
        database.execute_sql(f"SET lock_timeout = {int(lock_timeout_ms)}")
        try:
            database.execute_sql(f"VACUUM FULL {table}")
        except OperationalError as exc:  # lock_timeout: busy writers; the next run tries again
            log.warning("%s not compacted (%s rows in %s bytes), next run: %s", table, rows, size, str(exc).strip())
            continue
        finally:
            database.execute_sql("RESET lock_timeout")
        after = database.execute_sql(f"SELECT pg_relation_size('{table}'::regclass)").fetchone()[0]
        log.info("%s compacted: %s rows, %s bytes -> %s", table, rows, size, after)
        given_back[table] = size - after
    return given_back
