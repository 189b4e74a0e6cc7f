"""A batch of payments (ledger.ingest_payments) with another writer in the middle, and the
prepared statements the ledger runs on PostgreSQL."""
from __future__ import annotations

import threading

import pytest
from peewee import IntegrityError, NotSupportedError

from tests.conftest import wait_for
from tests.ledger_helpers import actions, new_request, observe
from webapp.domain import ledger, outbox
from webapp.storage import db, sqlcache
from webapp.storage.models import MatchCandidate, Notification, Payment, PaymentRequest


def test_a_batch_pays_each_request_once_and_records_each_payment_once(ctx):
    first, second = new_request(phone="+256772000001"), new_request(6000, phone="+256772000002")
    batch = [observe(5000, ref="b-1", phone="+256772000001"), observe(6000, ref="b-2", phone="+256772000002"),
             observe(5000, ref="b-1", phone="+256772000001"), observe(7000, ref="b-3")]
    results = ledger.ingest_payments(batch, actor="test")
    assert [r.created for r in results] == [True, True, False, True]
    assert results[2].payment.id == results[0].payment.id
    assert [r.decision.action for r in (results[0], results[1], results[3])] == ["confirm", "confirm", "unmatched"]
    assert {PaymentRequest.get_by_id(r.id).status for r in (first, second)} == {"paid"}
    assert Payment.select().count() == 3
    assert actions(f"payment:{results[0].payment.id}").count("payment.received") == 1


def _hold_a_payment_until_someone_waits(app, obs, held: threading.Event, errors: list) -> None:
    """Store `obs` in a transaction of this thread's own connection and commit it only once
    another transaction waits for its row lock (pg_locks is read live, not from a snapshot)."""
    try:
        with app.app_context(), db.database.connection_context():
            with db.transaction():
                ledger.ingest_payment(obs, actor="rival")
                held.set()
                wait_for(lambda: db.database.execute_sql("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0],
                         timeout=60, interval=0.02, message="the batch to wait for the rival's row")
    except BaseException as exc:  # reported to the test
        errors.append(exc)
        held.set()


def test_a_batch_that_meets_a_payment_stored_meanwhile_keeps_it_once_and_the_rest_once(ctx, backend):
    if backend != "postgres":
        pytest.skip("a SQLite batch holds the write lock from its first statement: nobody writes in between")
    first, second = new_request(phone="+256772000001"), new_request(6000, phone="+256772000002")
    rival = observe(6000, ref="b-2", phone="+256772000002")
    held, errors = threading.Event(), []
    thread = threading.Thread(target=_hold_a_payment_until_someone_waits, args=(ctx, rival, held, errors))
    thread.start()
    assert held.wait(60)
    # The batch does not see the rival's uncommitted payment, inserts the same report, waits on
    # the unique key, gets a duplicate key error when the rival commits: the batch is rolled
    # back and runs again with a savepoint per payment.
    results = ledger.ingest_payments([observe(5000, ref="b-1", phone="+256772000001"),
                                      observe(6000, ref="b-2", phone="+256772000002"),
                                      observe(7000, ref="b-3")], actor="test")
    thread.join(60)
    assert not errors, errors
    assert [r.created for r in results] == [True, False, True]
    assert Payment.select().where(Payment.source_ref == "b-2").count() == 1
    assert Payment.select().count() == 3
    assert {PaymentRequest.get_by_id(r.id).status for r in (first, second)} == {"paid"}
    # Nothing of the rolled-back first run is left: one audit entry and one confirmation each.
    assert actions(f"payment:{results[0].payment.id}") == ["payment.received", "payment.confirmed"]
    assert actions(f"payment:{results[2].payment.id}") == ["payment.received", "payment.unmatched"]
    assert Notification.select().where(Notification.request == first.id,
                                       Notification.kind == outbox.Kind.CONFIRMED_CUSTOMER).count() == 1


def _prepared_names() -> set[str]:
    return {name for (name,) in db.database.execute_sql("SELECT name FROM pg_prepared_statements")}


def test_on_postgresql_the_ledger_statements_are_prepared_once_per_connection(ctx, backend):
    if backend != "postgres":
        pytest.skip("PostgreSQL only: SQLite's driver keeps its own statement cache")
    new_request(phone="+256772000001"), new_request(phone="+256772000002")
    ledger.ingest_payment(observe(5000, ref="p-1", phone="+256772000001"), actor="test")
    names = _prepared_names()
    assert names and all(name.startswith("pw_") for name in names)
    # The same path again (another request paid by its phone): the same statements, none prepared twice.
    assert ledger.ingest_payment(observe(5000, ref="p-2", phone="+256772000002"), actor="test").decision.action \
        == "confirm"
    assert _prepared_names() == names


def test_after_a_table_changes_under_a_prepared_statement_it_fails_once_then_works(ctx, backend):
    if backend != "postgres":
        pytest.skip("PostgreSQL only")
    ledger.ingest_payment(observe(5000, ref="c-1"), actor="test")
    db.database.execute_sql('ALTER TABLE "payment" ADD COLUMN "added_later" integer')
    with pytest.raises(NotSupportedError, match="cached plan must not change result type"):
        ledger.ingest_payment(observe(5000, ref="c-2"), actor="test")
    result = ledger.ingest_payment(observe(5000, ref="c-2"), actor="test")
    assert result.created and Payment.select().count() == 2


def test_with_pg_prepare_off_nothing_is_prepared(environ, redis_conn, backend):
    if backend != "postgres":
        pytest.skip("PostgreSQL only")
    from webapp import create_app
    from webapp.config import load_settings

    app = create_app(load_settings({**environ, "PAYWATCH_PG_PREPARE": "off"}))
    with app.app_context():
        db.upgrade()
    with app.app_context(), db.database.connection_context():
        new_request(phone="+256772000001")
        result = ledger.ingest_payment(observe(5000, ref="o-1", phone="+256772000001"), actor="test")
        assert result.decision.action == "confirm"
        assert _prepared_names() == set()
    db.database.obj.close()


def test_a_batch_writes_its_new_payments_in_one_insert_after_the_rows_that_name_them(ctx):
    new_request(5000, phone="+256772000001"), new_request(7000, phone=None), new_request(7000, name="Ann", phone=None)
    with db.recorded_queries() as statements:
        results = ledger.ingest_payments([
            observe(5000, ref="w-1", phone="+256772000001"),  # confirms: its messages name it
            observe(7000, ref="w-2"),  # two requests of its amount: review, with two candidate rows
            observe(9000, ref="w-3"),  # nobody's
        ], actor="test")
    assert [r.decision.action for r in results] == ["confirm", "review", "unmatched"]
    texts = [sqlcache.statement_of(s) for s in statements]
    inserts = [i for i, s in enumerate(texts) if s.startswith('INSERT INTO "payment" ')]
    assert len(inserts) == 1
    naming = ('INSERT INTO "match_candidate"', 'INSERT INTO "notification"')
    named = [i for i, s in enumerate(texts) if s.startswith(naming)]
    assert named and max(named) < inserts[0]
    stored = {p.source_ref: p for p in Payment.select()}
    assert {ref: p.status for ref, p in stored.items()} == {"w-1": "confirmed", "w-2": "review", "w-3": "unmatched"}
    assert MatchCandidate.select().where(MatchCandidate.payment == stored["w-2"].id).count() == 2
    assert Notification.select().where(Notification.payment == stored["w-1"].id).count() >= 1


def test_keys_deferred_to_the_commit_still_refuse_a_row_naming_no_payment(ctx):
    """db.defer_foreign_keys() moves the check, it does not drop it (on PostgreSQL: every key that
    names a payment is DEFERRABLE, or the INSERT below would fail at once instead)."""
    request = new_request(5000)
    written = None
    with pytest.raises(IntegrityError):
        with db.transaction():
            db.defer_foreign_keys()
            MatchCandidate.create(payment=987654, request=request.id, score=0)  # accepted for now
            written = MatchCandidate.select().count()
    assert written == 1  # the INSERT went through; the COMMIT refused it
    assert MatchCandidate.select().count() == 0
