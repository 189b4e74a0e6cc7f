"""Request counts per (agent, status) kept by triggers in the writing transaction (issue 19):
the dashboard's agent × status matrix and the agent page read a few rows instead of counting a
million requests. Append-only (+1 / −1 rows), so concurrent writers never wait on a counter row."""
from peewee import *  # noqa: F401,F403

SQLITE = [
    """CREATE TRIGGER request_tally_insert AFTER INSERT ON payment_request BEGIN
         INSERT INTO request_tally (agent_id, status, n) VALUES (NEW.agent_id, NEW.status, 1);
       END""",
    """CREATE TRIGGER request_tally_update AFTER UPDATE OF status, agent_id ON payment_request
       WHEN OLD.status IS NOT NEW.status OR OLD.agent_id IS NOT NEW.agent_id BEGIN
         INSERT INTO request_tally (agent_id, status, n) VALUES (OLD.agent_id, OLD.status, -1),
                                                                (NEW.agent_id, NEW.status, 1);
       END""",
    """CREATE TRIGGER request_tally_delete AFTER DELETE ON payment_request BEGIN
         INSERT INTO request_tally (agent_id, status, n) VALUES (OLD.agent_id, OLD.status, -1);
       END""",
]
POSTGRES = [
    """CREATE FUNCTION request_tally_count() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           INSERT INTO request_tally (agent_id, status, n) VALUES (OLD.agent_id, OLD.status, -1);
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') THEN
           INSERT INTO request_tally (agent_id, status, n) VALUES (NEW.agent_id, NEW.status, 1);
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER request_tally_insert_delete AFTER INSERT OR DELETE ON payment_request
       FOR EACH ROW EXECUTE FUNCTION request_tally_count()""",
    """CREATE TRIGGER request_tally_update AFTER UPDATE OF status, agent_id ON payment_request
       FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.agent_id IS DISTINCT FROM NEW.agent_id)
       EXECUTE FUNCTION request_tally_count()""",
]


def up(migrator, db):
    class RequestTally(Model):
        agent_id = IntegerField(null=True)
        status = CharField()
        n = IntegerField()

        class Meta:
            database = db
            table_name = "request_tally"

    db.create_tables([RequestTally])
    for statement in POSTGRES if isinstance(db, PostgresqlDatabase) else SQLITE:
        db.execute_sql(statement)
    # The requests already there, counted once.
    db.execute_sql("INSERT INTO request_tally (agent_id, status, n) "
                   "SELECT agent_id, status, COUNT(*) FROM payment_request GROUP BY agent_id, status")


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER IF EXISTS request_tally_insert_delete ON payment_request")
        db.execute_sql("DROP TRIGGER IF EXISTS request_tally_update ON payment_request")
        db.execute_sql("DROP FUNCTION IF EXISTS request_tally_count()")
    else:
        for name in ("insert", "update", "delete"):
            db.execute_sql(f"DROP TRIGGER IF EXISTS request_tally_{name}")
    db.execute_sql("DROP TABLE request_tally")
