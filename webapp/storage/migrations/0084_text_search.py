"""Indexed text search for the requests and payments lists (issue 19; see webapp/storage/search.py).

SQLite: FTS5 trigram tables with external content, kept in step by triggers. PostgreSQL: a pg_trgm
GIN index over the searched columns joined by spaces. Existing rows are indexed here.
"""
from peewee import *  # noqa: F401,F403

COLUMNS = {
    "payment_request": ("reference", "customer_name", "customer_phone"),
    "payment": ("sender_name", "sender_phone", "note", "transaction_id", "source_ref"),
}
FTS = {"payment_request": "request_search", "payment": "payment_search"}


def _sqlite(db, table):
    fts, cols = FTS[table], COLUMNS[table]
    names = ", ".join(cols)
    new = ", ".join(f"NEW.{c}" for c in cols)
    old = ", ".join(f"OLD.{c}" for c in cols)
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in cols)
    db.execute_sql(f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', content_rowid='id', "
                   f"tokenize='trigram')")
    db.execute_sql(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
                   f"INSERT INTO {fts} (rowid, {names}) VALUES (NEW.id, {new}); END")
    db.execute_sql(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
                   f"INSERT INTO {fts} ({fts}, rowid, {names}) VALUES ('delete', OLD.id, {old}); END")
    db.execute_sql(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} WHEN {changed} BEGIN "
                   f"INSERT INTO {fts} ({fts}, rowid, {names}) VALUES ('delete', OLD.id, {old}); "
                   f"INSERT INTO {fts} (rowid, {names}) VALUES (NEW.id, {new}); END")
    db.execute_sql(f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')")


def _postgres(db, table):
    text = " || ' ' || ".join(f"coalesce({c}, '')" for c in COLUMNS[table])
    db.execute_sql(f"CREATE INDEX {FTS[table]}_trgm ON {table} USING gin (({text}) public.gin_trgm_ops)")


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        # In public, so that every schema of the database finds the operator class there.
        db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    for table in COLUMNS:
        (_postgres if isinstance(db, PostgresqlDatabase) else _sqlite)(db, table)


def down(migrator, db):
    for table, fts in FTS.items():
        if isinstance(db, PostgresqlDatabase):
            db.execute_sql(f"DROP INDEX IF EXISTS {fts}_trgm")
        else:
            for what in ("insert", "delete", "update"):
                db.execute_sql(f"DROP TRIGGER IF EXISTS {fts}_{what}")
            db.execute_sql(f"DROP TABLE IF EXISTS {fts}")
