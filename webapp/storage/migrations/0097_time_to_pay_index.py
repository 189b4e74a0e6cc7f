"""The paid requests by time to pay (issue 19): the dashboard's slow payers walk the slowest paid
requests through this index (status, paid_at − created_at) and stop at the first ten paid in the
last 30 days, instead of computing the time to pay of a month of paid requests and sorting them.
An expression index, per backend (webapp.domain.reports.slowest_paid orders by the same expression);
the models cannot declare it, tests/test_schema.py knows it by name."""
from peewee import *  # noqa: F401,F403

NAME = "payment_request_time_to_pay"


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME} ON payment_request (status, (paid_at - created_at))")
    else:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME} ON payment_request "
                       "(status, (julianday(paid_at) - julianday(created_at)))")


def down(migrator, db):
    db.execute_sql(f"DROP INDEX IF EXISTS {NAME}")
