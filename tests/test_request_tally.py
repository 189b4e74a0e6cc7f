"""The request tally behind the dashboard's agent × status matrix and the agent page: exact after
every kind of write (ledger, plain updates, deletes, an agent deleted), and after folding."""
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from peewee import fn

from tests.conftest import wait_for
from webapp.domain import ledger, reports, tallies
from webapp.storage import db
from webapp.storage.models import Agent, PaymentRequest, RequestTally, utcnow


def counted() -> dict:
    """What COUNT(*) over the requests says, in request_counts' shape."""
    found: dict = defaultdict(dict)
    for agent, status, n in (PaymentRequest.select(PaymentRequest.agent, PaymentRequest.status, fn.COUNT(PaymentRequest.id))
                             .group_by(PaymentRequest.agent, PaymentRequest.status).tuples()):
        found[agent][status] = n
    return dict(found)


def test_the_tally_equals_a_count_after_every_kind_of_write(domain):
    def scenario():
        with db.transaction():
            one = Agent.create(name="One", code="T1")
            two = Agent.create(name="Two", code="T2")
        made = [ledger.create_request(ledger.NewRequest(amount_minor=1000 + i, currency="UGX",
                                                        agent_id=one.id if i % 2 else None, source="ui"),
                                      actor="test") for i in range(6)]
        assert dict(reports.request_counts(every_agent=True)) == counted()
        ledger.cancel_request(made[0].reference, actor="test", reason="test")
        with db.transaction():
            PaymentRequest.update(status="expired", ended_at=utcnow()).where(PaymentRequest.id == made[1].id).execute()
            PaymentRequest.update(agent=two.id).where(PaymentRequest.id.in_([made[2].id, made[3].id])).execute()
            PaymentRequest.update(customer_name="only the name").where(PaymentRequest.id == made[4].id).execute()
            PaymentRequest.delete().where(PaymentRequest.id == made[5].id).execute()
        assert dict(reports.request_counts(every_agent=True)) == counted()
        with db.transaction():
            Agent.delete().where(Agent.id == two.id).execute()  # its requests lose their agent (SET NULL)
        assert dict(reports.request_counts(every_agent=True)) == counted()
        assert reports.request_counts(one.id) == {one.id: counted()[one.id]}
        rows_before = RequestTally.select().count()
        reports.fold_tally()
        assert RequestTally.select().count() < rows_before
        assert dict(reports.request_counts(every_agent=True)) == counted()
        matrix = {row.agent.code if row.agent else None: {k: v for k, v in row.counts.items() if v}
                  for row in reports.agent_status_matrix()}
        assert matrix == {"T1": counted()[one.id], None: counted()[None]}

    domain(scenario)


def test_many_changes_are_folded_when_the_dashboard_reads(domain):
    def scenario():
        now = utcnow()
        with db.transaction():
            PaymentRequest.insert_many([
                {"reference": f"PW-TF{i:04d}", "amount_minor": 1000, "requested_minor": 1000, "currency": "UGX",
                 "expires_at": now + timedelta(hours=1)} for i in range(1500)]).execute()
            PaymentRequest.update(status="expired").where(PaymentRequest.reference.startswith("PW-TF")).execute()
        assert RequestTally.select().count() >= 4500  # +1 each, then −1 and +1 each
        assert dict(reports.request_counts(every_agent=True)) == counted()
        assert RequestTally.select().count() <= 10  # folded for the next read
        assert dict(reports.request_counts(every_agent=True)) == counted()

    domain(scenario)


def _bulk_load(count: int) -> None:
    """`count` requests inserted and changed twice by plain statements, as an import does: three tally
    rows for each (+1, then −1 +1 per change)."""
    now = utcnow()
    with db.transaction():
        PaymentRequest.insert_many([
            {"reference": f"PW-BL{i:05d}", "amount_minor": 1000, "requested_minor": 1000, "currency": "UGX",
             "expires_at": now + timedelta(hours=1)} for i in range(count)]).execute()
        for status in ("expired", "cancelled"):
            PaymentRequest.update(status=status).where(PaymentRequest.reference.startswith("PW-BL")).execute()


def _older_transactions_ended() -> None:
    """Wait until every transaction begun before now has ended, on the whole server (another test's
    CREATE or DROP DATABASE included). A rewrite drops only the dead rows that no snapshot may still
    see, and its own snapshot counts every transaction running when it began: in use the fold that
    killed the rows was minutes before, here it was a moment ago."""
    marker = db.database.execute_sql("SELECT txid_current()").fetchone()[0]
    oldest = "SELECT txid_snapshot_xmin(txid_current_snapshot())"  # the oldest transaction still running
    wait_for(lambda: db.database.execute_sql(oldest).fetchone()[0] > marker, timeout=60,
             message="the transactions older than the fold to end")


def _size(table: str) -> int:
    return db.database.execute_sql(f"SELECT pg_relation_size('{table}'::regclass)").fetchone()[0]


def test_a_tally_left_mostly_dead_by_a_bulk_load_is_rewritten_and_stays_exact(domain, backend):
    def scenario():
        _bulk_load(5000)
        assert RequestTally.select().count() >= 25000
        if backend == "postgres":
            loaded = _size("request_tally")
            assert loaded >= tallies.COMPACT_MIN_BYTES
            assert tallies.compact() == {}  # its rows are alive until folded: nothing to give back
        assert dict(reports.request_counts(every_agent=True)) == counted()  # folds them
        assert RequestTally.select().count() <= 10
        if backend == "sqlite":
            assert tallies.compact() == {}  # SQLite's emptied pages leave the table by themselves
            return
        assert _size("request_tally") == loaded  # the fold kept every page
        _older_transactions_ended()
        given_back = tallies.compact()
        assert set(given_back) == {"request_tally"} and given_back["request_tally"] >= loaded - 64 * 1024
        assert _size("request_tally") <= 64 * 1024
        assert dict(reports.request_counts(every_agent=True)) == counted()
        assert tallies.compact() == {}  # nothing left to do

    domain(scenario)


def test_the_rewrite_waits_for_busy_writers_no_longer_than_its_lock_timeout(domain, backend, database_url):
    if backend != "postgres":
        pytest.skip("PostgreSQL only: SQLite has no tally to rewrite")
    import psycopg2

    def scenario():
        _bulk_load(5000)
        reports.request_counts(every_agent=True)  # folded: the pages are dead
        loaded = _size("request_tally")
        writer = psycopg2.connect(database_url)  # a request being written: its tally row not yet committed
        try:
            with writer.cursor() as cur:
                cur.execute("INSERT INTO request_tally (agent_id, status, n) VALUES (NULL, 'pending', 0)")
            started = time.monotonic()
            assert tallies.compact(lock_timeout_ms=200) == {}
            assert time.monotonic() - started < 5
            assert _size("request_tally") == loaded
            writer.commit()
        finally:
            writer.close()
        _older_transactions_ended()
        assert "request_tally" in tallies.compact()  # the next run
        assert _size("request_tally") <= 64 * 1024
        assert dict(reports.request_counts(every_agent=True)) == counted()

    domain(scenario)
