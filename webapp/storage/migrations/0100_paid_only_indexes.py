"""The paid requests' indexes hold paid requests only (issue 19, ingest).

(status, paid_at), (agent_id, status, paid_at) and (status, time to pay) served only queries for
paid requests (the dashboard's collections and slow payers, an agent's collections, the daily
summary), but held every request: each request that moved between pending and review (an
ambiguous payment moves ~10 at once) changed six b-tree entries in them. As partial indexes
`WHERE status = 'paid'` a request enters them once, when it is paid. The queries say
`status = 'paid'` as a literal (webapp.domain.reports.PAID): SQLite uses a partial index only
for a condition it can see when it prepares the statement. The models cannot declare partial
or expression indexes: tests/test_schema.py knows these by name.
"""
from peewee import *  # noqa: F401,F403

PAID = "status = 'paid'"
OLD = {
    "payment_request_status_paid_at": "(status, paid_at)",
    "payment_request_agent_id_status_paid_at": "(agent_id, status, paid_at)",
}


def _time_to_pay(db) -> str:
    if isinstance(db, PostgresqlDatabase):
        return "((paid_at - created_at))"
    return "((julianday(paid_at) - julianday(created_at)))"


def up(migrator, db):
    for name in (*OLD, "payment_request_time_to_pay"):
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
    db.execute_sql(f"CREATE INDEX payment_request_paid_by_paid_at ON payment_request (paid_at) WHERE {PAID}")
    db.execute_sql(f"CREATE INDEX payment_request_paid_by_agent ON payment_request (agent_id, paid_at) WHERE {PAID}")
    db.execute_sql(f"CREATE INDEX payment_request_time_to_pay ON payment_request {_time_to_pay(db)} WHERE {PAID}")


def down(migrator, db):
    for name in ("payment_request_paid_by_paid_at", "payment_request_paid_by_agent", "payment_request_time_to_pay"):
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
    for name, columns in OLD.items():
        db.execute_sql(f"CREATE INDEX {name} ON payment_request {columns}")
    expression = _time_to_pay(db)[1:-1]
    db.execute_sql(f"CREATE INDEX payment_request_time_to_pay ON payment_request (status, {expression})")
