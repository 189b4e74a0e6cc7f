"""Payment counts per status kept by triggers in the writing transaction (issue 19, pages).

Every staff page's navigation badge, the dashboard's counters and the review queue's counts said
how many payments wait for staff by counting them: ~80k unmatched payments in a 1M-payment ledger
(an index-only count, 4 ms on SQLite at each of those renders and polls). Like request_tally (0083):
append-only +1 / −1 rows per status, so no writer waits on a shared counter row; reads sum them and
fold them when they pile up (webapp.domain.reports.payment_counts)."""
from peewee import *  # noqa: F401,F403

SQLITE = [
    """CREATE TRIGGER payment_tally_insert AFTER INSERT ON payment BEGIN
         INSERT INTO payment_tally (status, n) VALUES (NEW.status, 1);
       END""",
    """CREATE TRIGGER payment_tally_update AFTER UPDATE OF status ON payment
       WHEN OLD.status IS NOT NEW.status BEGIN
         INSERT INTO payment_tally (status, n) VALUES (OLD.status, -1), (NEW.status, 1);
       END""",
    """CREATE TRIGGER payment_tally_delete AFTER DELETE ON payment BEGIN
         INSERT INTO payment_tally (status, n) VALUES (OLD.status, -1);
       END""",
]
POSTGRES = [
    """CREATE FUNCTION payment_tally_count() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           INSERT INTO payment_tally (status, n) VALUES (OLD.status, -1);
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') THEN
           INSERT INTO payment_tally (status, n) VALUES (NEW.status, 1);
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER payment_tally_insert_delete AFTER INSERT OR DELETE ON payment
       FOR EACH ROW EXECUTE FUNCTION payment_tally_count()""",
    """CREATE TRIGGER payment_tally_update AFTER UPDATE OF status ON payment
       FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION payment_tally_count()""",
]
BACKFILL = "INSERT INTO payment_tally (status, n) SELECT status, COUNT(*) FROM payment GROUP BY status"


def up(migrator, db):
    class PaymentTally(Model):
        status = CharField()
        n = IntegerField()

        class Meta:
            database = db
            table_name = "payment_tally"

    db.create_tables([PaymentTally])
    for statement in POSTGRES if isinstance(db, PostgresqlDatabase) else SQLITE:
        db.execute_sql(statement)
    # The payments already there, counted once.
    db.execute_sql(BACKFILL)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER IF EXISTS payment_tally_insert_delete ON payment")
        db.execute_sql("DROP TRIGGER IF EXISTS payment_tally_update ON payment")
        db.execute_sql("DROP FUNCTION IF EXISTS payment_tally_count()")
    else:
        for name in ("insert", "update", "delete"):
            db.execute_sql(f"DROP TRIGGER IF EXISTS payment_tally_{name}")
    db.execute_sql("DROP TABLE payment_tally")
