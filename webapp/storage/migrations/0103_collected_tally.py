"""The dashboard's collections per day from the picture tally (issue 19, pages).

The dashboard's "collected per day, last 14 days" summed the paid requests of two weeks
(~38k rows at 1M requests: an index walk, a row read each, a sort by quarter hour): 115 ms
server time on a slow 2-core machine, over the 100 ms goal, and every visitor's poll runs it
again. It now reads the picture tally (migration 0095) under a figure of its own:

  collected               paid requests by paid_at (UTC quarter hour); key and currency: the
                          request's currency; n 1, amount its amount_minor (seen-settled ones
                          included, as the query counted them)

about 1,344 rows a currency for 14 days, whatever the ledger's size. Its triggers are separate
from 0095's (which stay as they are): a request is paid once, so the extra row costs ingest
one trigger run per payment that pays a request, and nothing for a request moved to review.
"""
from peewee import *  # noqa: F401,F403

QUARTER = 900
WATCHED = ("status", "paid_at", "amount_minor", "currency")
CONDITION = "{r}.status = 'paid' AND {r}.paid_at IS NOT NULL"


def _slot(column: str, pg: bool) -> str:
    if pg:
        return f"CAST(floor(date_part('epoch', {column}) / {QUARTER}) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER) / {QUARTER}"


def _row(r: str, sign: int, pg: bool) -> str:
    """One INSERT adding request `r`'s contribution times `sign` (r: NEW / OLD) when it counts."""
    return (f"INSERT INTO picture_tally (figure, slot, key, currency, n, amount) SELECT 'collected', "
            f"{_slot(f'{r}.paid_at', pg)}, {r}.currency, {r}.currency, {sign}, {sign} * {r}.amount_minor "
            f"WHERE {CONDITION.format(r=r)}")


def backfill(pg: bool) -> str:
    return (f"INSERT INTO picture_tally (figure, slot, key, currency, n, amount) SELECT 'collected', "
            f"{_slot('r.paid_at', pg)} AS s, r.currency, r.currency, COUNT(*), SUM(r.amount_minor) "
            f"FROM payment_request r WHERE {CONDITION.format(r='r')} GROUP BY 2, 3")


def sqlite_statements() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)
    old, new = f"({CONDITION.format(r='OLD')})", f"({CONDITION.format(r='NEW')})"
    return [f"CREATE TRIGGER collected_tally_insert AFTER INSERT ON payment_request WHEN {new} BEGIN "
            f"{_row('NEW', 1, False)}; END",
            f"CREATE TRIGGER collected_tally_delete AFTER DELETE ON payment_request WHEN {old} BEGIN "
            f"{_row('OLD', -1, False)}; END",
            f"CREATE TRIGGER collected_tally_update AFTER UPDATE OF {', '.join(WATCHED)} ON payment_request "
            f"WHEN ({changed}) AND ({old} OR {new}) BEGIN {_row('OLD', -1, False)}; {_row('NEW', 1, False)}; END"]


def postgres_statements() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
    old, new = f"({CONDITION.format(r='OLD')})", f"({CONDITION.format(r='NEW')})"
    return [f"""CREATE FUNCTION collected_tally() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_row('OLD', -1, True)}; END IF;
                  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_row('NEW', 1, True)}; END IF;
                  RETURN NULL;
                END $$""",
            f"CREATE TRIGGER collected_tally_insert AFTER INSERT ON payment_request "
            f"FOR EACH ROW WHEN {new} EXECUTE FUNCTION collected_tally()",
            f"CREATE TRIGGER collected_tally_delete AFTER DELETE ON payment_request "
            f"FOR EACH ROW WHEN {old} EXECUTE FUNCTION collected_tally()",
            f"CREATE TRIGGER collected_tally_update AFTER UPDATE OF {', '.join(WATCHED)} ON payment_request "
            f"FOR EACH ROW WHEN (({changed}) AND ({old} OR {new})) EXECUTE FUNCTION collected_tally()"]


def up(migrator, db):
    pg = isinstance(db, PostgresqlDatabase)
    db.execute_sql(backfill(pg))
    for statement in postgres_statements() if pg else sqlite_statements():
        db.execute_sql(statement)


def down(migrator, db):
    pg = isinstance(db, PostgresqlDatabase)
    for name in ("insert", "delete", "update"):
        db.execute_sql(f"DROP TRIGGER IF EXISTS collected_tally_{name}" + (" ON payment_request" if pg else ""))
    if pg:
        db.execute_sql("DROP FUNCTION IF EXISTS collected_tally()")
    db.execute_sql("DELETE FROM picture_tally WHERE figure = 'collected'")
