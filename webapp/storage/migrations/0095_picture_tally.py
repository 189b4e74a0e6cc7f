"""Roll-ups behind the dashboard's charts, kept by triggers in the writing transaction (issue 19):
the charts read a few thousand tally rows (summed per local day in SQL) instead of a month of
payments, requests, events and notifications. See webapp.storage.models.PictureTally.

Rows are (figure, slot, key, currency, n, amount), appended +/− like request_tally (0083) so no
writer waits on a shared counter row. `slot` is the UTC quarter hour (epoch seconds // 900): every
zone's offset is a whole number of quarter hours, so a slot lies inside one local day whatever
PAYWATCH_TIMEZONE says (and when it changes). Figures summed over the whole 30-day window also
get a row per UTC day (epoch seconds // 86400) under "<figure>/day": the window reads whole days
there and quarter hours only at its two ends.

  paid, paid/day          paid requests (not first seen settled) by paid_at; key: time-to-pay bucket
  source, source/day      confirmed payments by received_at; key: source; currency, amount
  agent, agent/day        confirmed payments of a request by received_at; key: the request's agent id
                          ('' for none); a request changing agent moves its payments
  review                  audit events payment.unmatched / payment.review by `at`; key: the action
  whatsapp                notifications: sent by sent_at (key delivered when ack >= 2, else sent),
                          failed by due_at (key failed)
"""
from peewee import *  # noqa: F401,F403

QUARTER, DAY = 900, 86400
# The time-to-pay buckets' upper bounds in seconds (webapp.domain.reports.TIME_TO_PAY_BUCKETS; the
# key is the bucket's index, the last bucket open). Changing the buckets needs a migration.
BUCKET_LIMITS = (60, 300, 900, 3600, 3 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)


def _dialect(pg: bool):
    def slot(column: str, size: int) -> str:
        if pg:
            return f"CAST(floor(date_part('epoch', {column}) / {size}) AS BIGINT)"
        return f"CAST(strftime('%s', {column}) AS INTEGER) / {size}"

    def seconds(r: str) -> str:
        if pg:
            return f"date_part('epoch', {r}.paid_at - {r}.created_at)"
        # Rounded to the millisecond: julianday's floating point puts 60 s at 59.99999….
        return f"round((julianday({r}.paid_at) - julianday({r}.created_at)) * 86400, 3)"

    return slot, seconds


def contributions(table: str, pg: bool) -> list:
    """[(figure, time column, slot size, key SQL, currency SQL, amount SQL, condition SQL)] with {r} for the row."""
    _, seconds = _dialect(pg)
    none = "CAST(NULL AS TEXT)"
    if table == "payment_request":
        bucket = ("CASE " + " ".join(f"WHEN {seconds('{r}')} < {limit} THEN '{i}'" for i, limit in enumerate(BUCKET_LIMITS))
                  + f" ELSE '{len(BUCKET_LIMITS)}' END")
        paid = "{r}.status = 'paid' AND {r}.paid_at IS NOT NULL AND {r}.seen_settled = FALSE"
        return [(figure, "paid_at", size, bucket, none, "0", paid) for figure, size in (("paid", QUARTER), ("paid/day", DAY))]
    if table == "payment":
        agent = "(SELECT COALESCE(CAST(agent_id AS TEXT), '') FROM payment_request WHERE id = {r}.request_id)"
        confirmed = "{r}.status = 'confirmed'"
        return ([(figure, "received_at", size, "{r}.source", "{r}.currency", "{r}.amount_minor", confirmed)
                 for figure, size in (("source", QUARTER), ("source/day", DAY))]
                + [(figure, "received_at", size, agent, "{r}.currency", "{r}.amount_minor",
                    confirmed + " AND {r}.request_id IS NOT NULL") for figure, size in (("agent", QUARTER), ("agent/day", DAY))])
    if table == "event":
        return [("review", "at", QUARTER, "{r}.action", none, "0", "{r}.action IN ('payment.unmatched', 'payment.review')")]
    if table == "notification":
        return [("whatsapp", "sent_at", QUARTER, "CASE WHEN {r}.ack >= 2 THEN 'delivered' ELSE 'sent' END", none, "0",
                 "{r}.status = 'sent' AND {r}.sent_at IS NOT NULL"),
                ("whatsapp", "due_at", QUARTER, "'failed'", none, "0", "{r}.status = 'failed'")]
    raise ValueError(table)


WATCHED = {  # the columns whose change can move a row's contributions
    "payment_request": ("status", "paid_at", "created_at", "seen_settled"),
    "payment": ("status", "received_at", "amount_minor", "currency", "source", "request_id"),
    "event": ("action", "at"),
    "notification": ("status", "ack", "sent_at", "due_at"),
}
COLUMNS = "INSERT INTO picture_tally (figure, slot, key, currency, n, amount) "


def rows_of(table: str, r: str, sign: int, pg: bool) -> str:
    """One INSERT adding row `r`'s contributions times `sign` (r: NEW / OLD)."""
    slot, _ = _dialect(pg)
    parts = [f"SELECT '{figure}', {slot(f'{r}.{column}', size)}, {key.format(r=r)}, {currency.format(r=r)}, {sign}, "
             f"{sign} * {amount.format(r=r)} WHERE {condition.format(r=r)}"
             for figure, column, size, key, currency, amount, condition in contributions(table, pg)]
    return COLUMNS + " UNION ALL ".join(parts)


def counts(table: str, r: str, pg: bool) -> str:
    """SQL true when row `r` adds to some figure: a trigger's WHEN, so that the rows that add to none
    (most payments, events and messages as they are written) do not run the trigger's body at all."""
    conditions = dict.fromkeys(f"({c[-1].format(r=r)})" for c in contributions(table, pg))
    return "(" + " OR ".join(conditions) + ")"


def agent_moves(r: str, sign: int, pg: bool) -> str:
    """A request's confirmed payments counted for (sign 1) or taken from (sign −1) its agent `r`.agent_id."""
    slot, _ = _dialect(pg)
    return COLUMNS + " UNION ALL ".join(
        f"SELECT '{figure}', {slot('p.received_at', size)}, COALESCE(CAST({r}.agent_id AS TEXT), ''), p.currency, "
        f"{sign}, {sign} * p.amount_minor FROM payment p WHERE p.request_id = {r}.id AND p.status = 'confirmed'"
        for figure, size in (("agent", QUARTER), ("agent/day", DAY)))


def sqlite_statements() -> list[str]:
    out = []
    for table, watched in WATCHED.items():
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
        old, new = counts(table, "OLD", False), counts(table, "NEW", False)
        out += [f"CREATE TRIGGER picture_tally_{table}_insert AFTER INSERT ON {table} WHEN {new} BEGIN "
                f"{rows_of(table, 'NEW', 1, False)}; END",
                f"CREATE TRIGGER picture_tally_{table}_delete AFTER DELETE ON {table} WHEN {old} BEGIN "
                f"{rows_of(table, 'OLD', -1, False)}; END",
                f"CREATE TRIGGER picture_tally_{table}_update AFTER UPDATE OF {', '.join(watched)} ON {table} "
                f"WHEN ({changed}) AND ({old} OR {new}) "
                f"BEGIN {rows_of(table, 'OLD', -1, False)}; {rows_of(table, 'NEW', 1, False)}; END"]
    out.append("CREATE TRIGGER picture_tally_request_agent AFTER UPDATE OF agent_id ON payment_request "
               f"WHEN OLD.agent_id IS NOT NEW.agent_id BEGIN {agent_moves('OLD', -1, False)}; "
               f"{agent_moves('NEW', 1, False)}; END")
    return out


def postgres_statements() -> list[str]:
    out = []
    for table, watched in WATCHED.items():
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
        old, new = counts(table, "OLD", True), counts(table, "NEW", True)
        out += [f"""CREATE FUNCTION picture_tally_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                      IF TG_OP IN ('UPDATE', 'DELETE') THEN {rows_of(table, 'OLD', -1, True)}; END IF;
                      IF TG_OP IN ('UPDATE', 'INSERT') THEN {rows_of(table, 'NEW', 1, True)}; END IF;
                      RETURN NULL;
                    END $$""",
                f"CREATE TRIGGER picture_tally_{table}_insert AFTER INSERT ON {table} "
                f"FOR EACH ROW WHEN {new} EXECUTE FUNCTION picture_tally_{table}()",
                f"CREATE TRIGGER picture_tally_{table}_delete AFTER DELETE ON {table} "
                f"FOR EACH ROW WHEN {old} EXECUTE FUNCTION picture_tally_{table}()",
                f"CREATE TRIGGER picture_tally_{table}_update AFTER UPDATE OF {', '.join(watched)} ON {table} "
                f"FOR EACH ROW WHEN (({changed}) AND ({old} OR {new})) EXECUTE FUNCTION picture_tally_{table}()"]
    out += [f"""CREATE FUNCTION picture_tally_request_agent() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  {agent_moves('OLD', -1, True)};
                  {agent_moves('NEW', 1, True)};
                  RETURN NULL;
                END $$""",
            "CREATE TRIGGER picture_tally_request_agent AFTER UPDATE OF agent_id ON payment_request "
            "FOR EACH ROW WHEN (OLD.agent_id IS DISTINCT FROM NEW.agent_id) "
            "EXECUTE FUNCTION picture_tally_request_agent()"]
    return out


def backfill(table: str, pg: bool) -> list[str]:
    """The rows already there, one tally row per (figure, slot, key, currency)."""
    slot, _ = _dialect(pg)
    out = []
    for figure, column, size, key, currency, amount, condition in contributions(table, pg):
        out.append(f"{COLUMNS} SELECT '{figure}', {slot(f'r.{column}', size)} AS s, {key.format(r='r')} AS k, "
                   f"{currency.format(r='r')} AS c, COUNT(*), SUM({amount.format(r='r')}) FROM {table} r "
                   f"WHERE {condition.format(r='r')} AND r.{column} IS NOT NULL GROUP BY 2, 3, 4")
    return out


def up(migrator, db):
    class PictureTally(Model):
        figure = CharField()
        slot = BigIntegerField()
        key = CharField(null=True)
        currency = CharField(null=True)
        n = IntegerField()
        amount = BigIntegerField()

        class Meta:
            database = db
            table_name = "picture_tally"
            indexes = ((("figure", "slot", "key", "currency", "n", "amount"), False),)

    db.create_tables([PictureTally])
    pg = isinstance(db, PostgresqlDatabase)
    for table in WATCHED:
        for statement in backfill(table, pg):
            db.execute_sql(statement)
    for statement in postgres_statements() if pg else sqlite_statements():
        db.execute_sql(statement)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        for table in WATCHED:
            for name in ("insert", "delete", "update"):
                db.execute_sql(f"DROP TRIGGER IF EXISTS picture_tally_{table}_{name} ON {table}")
            db.execute_sql(f"DROP FUNCTION IF EXISTS picture_tally_{table}()")
        db.execute_sql("DROP TRIGGER IF EXISTS picture_tally_request_agent ON payment_request")
        db.execute_sql("DROP FUNCTION IF EXISTS picture_tally_request_agent()")
    else:
        for table in WATCHED:
            for name in ("insert", "delete", "update"):
                db.execute_sql(f"DROP TRIGGER IF EXISTS picture_tally_{table}_{name}")
        db.execute_sql("DROP TRIGGER IF EXISTS picture_tally_request_agent")
    db.execute_sql("DROP TABLE picture_tally")
