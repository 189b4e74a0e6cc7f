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
"""
from __future__ import annotations

from peewee import SQL, Expression, PostgresqlDatabase

from webapp.storage.db import database

MIN_TERM = 3
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
    answers, or None when a term is too short for one (the caller then uses LIKE)."""
    terms = [t for t in dict.fromkeys(t.strip() for t in terms) if t]
    if not terms or any(len(t) < MIN_TERM for t in terms):
        return None
    table = model._meta.table_name
    if isinstance(database.obj, PostgresqlDatabase):
        text = search_text(table)
        sql = " OR ".join(f"({text}) ILIKE %s ESCAPE '\\'" for _ in terms)
        return SQL(f"({sql})", [f"%{_escape_like(t)}%" for t in terms])
    phrases = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    fts = FTS_TABLES[table]
    return model.id.in_(SQL(f"(SELECT rowid FROM {fts} WHERE {fts} MATCH ?)", [phrases]))
