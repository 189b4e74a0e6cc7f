"""Statements sent ahead to a writer thread (webapp/storage/writebehind.py, sqlcache's `wait=False`):
in order with the statements that wait, committed or rolled back with their transaction, and a
failure raised where the caller can tell it from its own statement's."""
from __future__ import annotations

import threading

import pytest
from peewee import DataError, IntegrityError

from tests.ledger_helpers import new_request, observe
from webapp.domain import ledger
from webapp.storage import db, sqlcache, writebehind
from webapp.storage.models import Event, Payment, PaymentRequest, utcnow


def _event(subject: str) -> dict:
    return {"action": "test", "subject": subject, "actor": "system", "at": utcnow()}


def _subjects() -> list[str]:
    return [e.subject for e in Event.select(Event.subject).where(Event.action == "test").order_by(Event.id)]


def _duplicate_of(request: PaymentRequest) -> dict:
    now = utcnow()
    return {"reference": request.reference, "amount_minor": 100, "requested_minor": 0, "currency": "UGX",
            "customer_name": "Twin", "status": "pending", "source": "test", "created_at": now, "expires_at": now,
            "meta": {}}


def test_statements_sent_ahead_run_in_order_before_any_statement_that_waits_and_commit(ctx):
    with writebehind.sending(db.database.obj), db.transaction():
        sqlcache.insert(Event, _event("x:1"), wait=False)
        seen_inside = _subjects()  # a statement that waits: everything sent before it has run
        sqlcache.insert_many(Event, [_event("x:2"), _event("x:3")], wait=False)
        sqlcache.update(Event, {"subject": "x:3b"}, {"subject": "x:3"}, wait=False)
    assert seen_inside == ["x:1"]
    assert _subjects() == ["x:1", "x:2", "x:3b"]


def test_a_failure_sent_ahead_is_raised_at_the_next_statement_that_waits_and_nothing_of_it_stays(ctx, backend):
    request = new_request()
    with pytest.raises((writebehind.Failed, IntegrityError)) as raised:
        with writebehind.sending(db.database.obj), db.transaction():
            sqlcache.insert(Event, _event("x:1"), wait=False)
            sqlcache.insert(PaymentRequest, _duplicate_of(request), wait=False)  # the reference is taken
            if backend == "postgres":  # sent ahead: the line that sent it does not know yet
                sqlcache.insert(Event, _event("x:2"), wait=False)  # the transaction is lost: never runs
                Event.select().count()
            raise AssertionError("the duplicate reference went unnoticed")
    if backend == "postgres":
        assert isinstance(raised.value, writebehind.Failed)
        assert isinstance(raised.value.error, IntegrityError)  # as peewee raises it: the batch's retry catches it
        assert not isinstance(raised.value, IntegrityError)  # no handler on the way takes it for its own
    else:  # SQLite runs in this process: nothing is sent ahead, the INSERT itself raised
        assert isinstance(raised.value, IntegrityError)
    assert _subjects() == []
    assert PaymentRequest.select().count() == 1


def test_a_rollback_drops_what_was_sent_ahead_and_its_failure(ctx, backend):
    if backend != "postgres":
        pytest.skip("SQLite runs every statement at once: nothing is sent ahead")
    request = new_request()
    with pytest.raises(RuntimeError, match="the caller's own error"):
        with writebehind.sending(db.database.obj), db.transaction():
            sqlcache.insert(Event, _event("x:1"), wait=False)
            sqlcache.insert(PaymentRequest, _duplicate_of(request), wait=False)
            raise RuntimeError("the caller's own error")  # not hidden behind the failure sent ahead
    assert _subjects() == []
    with db.transaction():  # the connection goes on as usual
        sqlcache.insert(Event, _event("x:3"))
    assert _subjects() == ["x:3"]


def test_another_thread_neither_waits_for_nor_gets_this_threads_failure(ctx, backend):
    if backend != "postgres":
        pytest.skip("SQLite runs every statement at once: nothing is sent ahead")
    request = new_request()
    other: list = []

    def elsewhere() -> None:
        try:
            with ctx.app_context(), db.database.connection_context():
                other.append(PaymentRequest.select().count())
        except BaseException as exc:  # reported to the test
            other.append(exc)

    with pytest.raises(writebehind.Failed):
        with writebehind.sending(db.database.obj), db.transaction():
            sqlcache.insert(PaymentRequest, _duplicate_of(request), wait=False)
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join(60)
            Event.select().count()
    assert other == [1]


def test_a_batch_gives_the_databases_own_error_for_a_statement_sent_ahead(ctx, backend):
    if backend != "postgres":
        pytest.skip("SQLite does not check text lengths")
    too_long = "N" * 5000  # longer than the sender_name column
    with pytest.raises(DataError):
        ledger.ingest_payments([observe(5000, ref="long-1"), observe(7000, ref="long-2", name=too_long)],
                               actor="test")
    assert Payment.select().count() == 0


def test_statements_sent_ahead_are_counted_and_timed_with_the_others(ctx, backend):
    """bench/match.py's statements per payment and --breakdown see them (count_queries, timed)."""
    def run() -> list[str]:
        with writebehind.sending(db.database.obj), db.transaction():
            sqlcache.insert_many(Event, [_event("x:1")], wait=False)
            sqlcache.insert_many(Event, [_event("x:2")], wait=False)
            return _subjects()

    run()  # PostgreSQL prepares the statements the first time (a savepoint each): not counted below
    with db.recorded_queries() as seen, db.timed() as spent:
        read = run()
    assert read == ["x:1", "x:2"] * 2
    assert sum(sqlcache.statement_of(sql).startswith('INSERT INTO "event"') for sql in seen) == 2
    assert sum(count for sql, (count, _) in spent.items()
               if sqlcache.statement_of(sql).startswith('INSERT INTO "event"')) == 2
    if backend == "postgres":  # the SELECT and the COMMIT each waited for what was sent before them
        assert spent[db.AHEAD][0] == 2
    else:
        assert db.AHEAD not in spent
