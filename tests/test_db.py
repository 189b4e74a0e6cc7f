from datetime import datetime, timedelta

import pytest
from playhouse.migrations import Runner

from webapp.domain import audit
from webapp.plumbing import jobqueue
from webapp.storage import db, sqlcache
from webapp.storage.models import MODELS, Event, PaymentRequest, utcnow


def test_migrations_create_every_model_on_an_empty_database(app):
    with db.database.connection_context():
        tables = set(db.database.get_tables())
    assert {model._meta.table_name for model in MODELS} <= tables


def test_upgrade_twice_changes_nothing(app, runner):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    with db.database.connection_context():
        status = Runner(db.database.obj, str(db.MIGRATIONS)).status()
    assert status and all(m.applied for m in status)


def test_the_flow_indexes_exist(app):
    with db.database.connection_context():
        request_indexes = {tuple(i.columns): i.unique for i in db.database.get_indexes("payment_request")}
        payment_indexes = {tuple(i.columns): i.unique for i in db.database.get_indexes("payment")}
        notification_indexes = {tuple(i.columns): i.unique for i in db.database.get_indexes("notification")}
    assert request_indexes[("status", "expires_at")] is False
    assert request_indexes[("amount_minor", "currency", "status")] is False
    assert payment_indexes[("source", "source_ref")] is True
    assert notification_indexes[("status", "due_at")] is False
    assert notification_indexes[("dedupe_key",)] is True


def test_times_come_back_aware_in_utc_and_naive_ones_are_refused(app):
    with db.database.connection_context():
        event = Event.create(action="test", subject="x", actor="system")
        assert Event.get_by_id(event.id).at.utcoffset().total_seconds() == 0
        with pytest.raises(ValueError, match="naive"):
            Event.create(action="test", subject="x", actor="system", at=datetime(2026, 1, 1))


def test_after_commit_callbacks_wait_for_the_outermost_commit(app):
    ran = []
    with db.database.connection_context():
        with db.transaction():
            db.after_commit(lambda: ran.append("outer"))
            with db.transaction():
                db.after_commit(lambda: ran.append("inner"))
            assert ran == []
        assert ran == ["outer", "inner"]


def test_a_rolled_back_transaction_enqueues_nothing(app, redis_conn):
    with app.app_context(), db.database.connection_context():
        with pytest.raises(RuntimeError):
            with db.transaction():
                Event.create(action="test", subject="x", actor="system")
                jobqueue.enqueue("heartbeat")
                raise RuntimeError("boom")
        assert Event.select().count() == 0
        assert jobqueue.queue("fast").count == 0


def test_expires_at_is_required_and_status_defaults_to_pending(app):
    with db.database.connection_context():
        request = PaymentRequest.create(
            reference="PW-TEST22", amount_minor=500, requested_minor=500, currency="UGX", expires_at=utcnow()
        )
        assert request.status == "pending"


def test_a_rolled_back_savepoint_takes_its_callbacks_along(app):
    ran = []
    with db.database.connection_context():
        with db.transaction():
            db.after_commit(lambda: ran.append("kept"))
            with pytest.raises(RuntimeError):
                with db.transaction():
                    db.after_commit(lambda: ran.append("rolled back"))
                    raise RuntimeError("boom")
    assert ran == ["kept"]


def test_the_jobs_of_one_transaction_reach_redis_after_its_commit_scheduled_or_not(app, redis_conn):
    # One pipeline for all of them: an enqueue after an enqueue_at once made rq refuse the pipeline.
    later = utcnow() + timedelta(minutes=5)
    with app.app_context(), db.database.connection_context():
        with db.transaction():
            jobqueue.enqueue_at("send_notification", later, 1, job_id="pipe-a")
            jobqueue.enqueue("heartbeat", job_id="pipe-b")
            jobqueue.enqueue_at("send_notification", later, 2, job_id="pipe-c")
            jobqueue.enqueue("heartbeat", job_id="pipe-d")
            assert not jobqueue.is_live("pipe-b")
        assert [jobqueue.is_live(j) for j in ("pipe-a", "pipe-b", "pipe-c", "pipe-d")] == [True] * 4
        assert jobqueue.queue("fast").count == 2


def test_audit_events_of_a_transaction_commit_or_roll_back_with_it(app):
    with app.app_context(), db.database.connection_context():
        with db.transaction():
            audit.record("test.kept", "x:1", actor="system")
            with pytest.raises(RuntimeError):
                with db.transaction():
                    audit.record("test.dropped", "x:2", actor="system")
                    raise RuntimeError("boom")
            audit.record("test.kept", "x:3", actor="system")
        with pytest.raises(RuntimeError):
            with db.transaction():
                audit.record("test.dropped", "x:4", actor="system")
                raise RuntimeError("boom")
        assert [(e.action, e.subject) for e in Event.select().order_by(Event.id)] == [
            ("test.kept", "x:1"), ("test.kept", "x:3")]
        assert isinstance(audit.record("test.now", "x:5", actor="system"), int)  # outside: written at once


def test_timed_tells_statements_commits_and_the_work_after_commits_apart(app, redis_conn):
    """db.timed() (bench/match.py --breakdown): each statement text with its runs, the COMMITs, the
    jobs put on Redis after them; rows still come back through its cursors; nothing after the block."""
    with app.app_context(), db.database.connection_context():
        with db.timed() as spent:
            with db.transaction():
                sqlcache.insert(Event, {"action": "test", "subject": "x:1", "actor": "system", "at": utcnow()})
                sqlcache.insert(Event, {"action": "test", "subject": "x:2", "actor": "system", "at": utcnow()})
                jobqueue.enqueue("heartbeat")
            with db.transaction():
                read = [e.subject for e in Event.select().order_by(Event.id)]
        Event.create(action="test", subject="x:3", actor="system")  # after the block: not counted
        with db.transaction():
            jobqueue.enqueue("heartbeat")

    assert read == ["x:1", "x:2"]
    texts = {}
    for sql, (count, seconds) in spent.items():
        assert seconds > 0
        text = sqlcache.statement_of(sql)  # on PostgreSQL an EXECUTE of the prepared INSERT
        texts[text.split(" (")[0]] = texts.get(text.split(" (")[0], 0) + count
    assert texts['INSERT INTO "event"'] == 2
    assert sum(n for text, n in texts.items() if text.startswith('SELECT') and '"event"' in text) == 1
    assert spent["COMMIT"][0] == 2
    assert spent["after commit"][0] == 1  # the transaction that enqueued; none for the one that did not
    assert "execute_sql" not in vars(db.database.obj) and "commit" not in vars(db.database.obj)
