"""PostgreSQL: the payments list sorted by amount, largest first (issue 19). Empty amounts (evidence no
rule could read) come last in both directions (webapp.web.listing), so the order is
`amount_minor DESC NULLS LAST, id DESC`; PostgreSQL puts NULLs last going up, so an ascending index
read backwards gives NULLS FIRST and the list sorted every payment. This index is that order.
SQLite needs none: its NULLs come first going up, so the ascending index read backwards is the order.
Per backend, made here only (tests/test_schema.py knows it by name)."""
from peewee import *  # noqa: F401,F403

NAME = "payment_amount_desc_nulls_last"


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME} ON payment (amount_minor DESC NULLS LAST, id DESC)")


def down(migrator, db):
    db.execute_sql(f"DROP INDEX IF EXISTS {NAME}")
