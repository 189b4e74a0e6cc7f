"""Indexed "contains" search over the requests' and payments' text columns (issue 19).

`LIKE '%q%'` reads every row when few match. The search indexes (migration 0084) answer it
from an index instead, one per table over the columns staff search:

- SQLite: an FTS5 table with the trigram tokenizer (`request_search`, `payment_search`),
  external content kept in step by triggers; a quoted phrase of 3+ characters matches any
  substring, case-insensitively, like the LIKE it replaces.
- PostgreSQL: a pg_trgm GIN index on the columns joined by spaces (`search_text` below), which
  ILIKE '%q%' uses as it stands.

Terms of fewer than 3 characters cannot use a trigram index: `contains()` answers None and the
caller falls back to the plain LIKE.

A common term (a frequent name: thousands of rows) is the other way round: the index hands back
every match, which the list must then sort to show its newest 50. So `contains()` first asks the
index for at most WIDE + 1 matches; up to WIDE, the list reads those rows by id; beyond, it
answers None too, and the LIKE walks the list's own order index and stops at the first page
(1 row in every few hundred matches, so a page costs a few thousand rows at most).
"""
from __future__ import annotations

from peewee import Expression, PostgresqlDatabase

from webapp.storage.db import database

MIN_TERM = 3
WIDE = 2000  # more matches than this: the list's order index and a LIKE find a page sooner
COLUMNS = {
    "payment_request": ("reference", "customer_name", "customer_phone"),
    "payment": ("sender_name", "sender_phone", "note", "transaction_id", "source_ref"),
}
FTS_TABLES = {"payment_request": "request_search", "payment": "payment_search"}


def search_text(table: str) -> str:
    """The PostgreSQL expression the trigram index covers (the same text in the migration)."""
    # Unqualified: peewee aliases the tables of a query, and no joined table has these columns.
    return " || ' ' || ".join(f"coalesce({column}, '')" for column in COLUMNS[table])


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(model, terms: list[str]) -> Expression | None:
    """A condition "any of the searched columns of `model` contains any of `terms`" that an index
    answers (the ids of the matching rows), or None when a term is too short for the index or
    matches more than WIDE rows (the caller then uses LIKE along the list's order)."""
    terms = [t for t in dict.fromkeys(t.strip() for t in terms) if t]
    if not terms or any(len(t) < MIN_TERM for t in terms):
        return None
    table = model._meta.table_name
    if isinstance(database.obj, PostgresqlDatabase):
        text = search_text(table)
        sql = " OR ".join(f"({text}) ILIKE %s ESCAPE '\\'" for _ in terms)
        query, params = f"SELECT id FROM {table} WHERE {sql} LIMIT {WIDE + 1}", [f"%{_escape_like(t)}%" for t in terms]
    else:
        fts = FTS_TABLES[table]
        query = f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? LIMIT {WIDE + 1}"
        params = [" OR ".join('"' + t.replace('"', '""') + '"' for t in terms)]
    ids = [row[0] for row in database.execute_sql(query, params).fetchall()]
    if len(ids) > WIDE:
        return None
    return model.id.in_(ids)
