"""The payment tally behind the review badge, the dashboard's counters and the review counts
(migration 0104): exact after ingests of every outcome, staff decisions, plain updates and deletes,
after folding, and from the migration's count of the payments already there; a read whose fold cannot
have SQLite's write lock still answers."""
import importlib.util

import pytest
from peewee import fn

from tests.ledger_helpers import new_request, pay
from webapp.domain import ledger, reports
from webapp.storage import db
from webapp.storage.models import Payment, PaymentTally, utcnow
from webapp.web.review import review_counts


def counted() -> dict:
    """What COUNT(*) over the payments says, in payment_counts' shape."""
    return dict(Payment.select(Payment.status, fn.COUNT(Payment.id)).group_by(Payment.status).tuples())


def test_the_tally_equals_a_count_after_every_kind_of_write(domain):
    def scenario():
        first, twin, _ = [new_request(amount) for amount in (1000, 2000, 2000)]
        # confirmed (its reference), review (two requests of that amount), unmatched × 2
        outcomes = [pay(1000, note=first.reference), pay(2000), pay(3000), pay(4000)]
        assert [r.payment.status for r in outcomes] == ["confirmed", "review", "unmatched", "unmatched"]
        assert reports.payment_counts() == counted()
        ledger.confirm(outcomes[1].payment.id, twin.reference, actor="test")  # staff decide: review → confirmed
        with db.transaction():
            Payment.update(status="review").where(Payment.id == outcomes[3].payment.id).execute()
            Payment.update(note="only the note").where(Payment.id == outcomes[0].payment.id).execute()
            Payment.delete().where(Payment.id == outcomes[2].payment.id).execute()
        assert reports.payment_counts() == counted() == {"confirmed": 2, "review": 1}
        counts = review_counts()
        assert (counts["payments"], counts["unmatched"]) == (counted().get("review", 0), counted().get("unmatched", 0))
        assert counts["queue"] == counts["payments"] + counts["unmatched"] == 1

    domain(scenario)


def _pile_up(count: int) -> None:
    """`count` unmatched payments, then each moved to review: three tally rows each."""
    with db.transaction():
        for i in range(count):
            Payment.create(source="test", source_ref=f"pile-{i}", amount_minor=100 + i, currency="UGX",
                           received_at=utcnow(), status="unmatched")
        Payment.update(status="review").where(Payment.source_ref.startswith("pile-")).execute()


def test_many_changes_are_folded_when_a_page_reads(domain):
    def scenario():
        _pile_up(700)
        assert PaymentTally.select().count() >= 2100  # +1 each, then −1 and +1 each
        assert reports.payment_counts() == counted() == {"review": 700}
        assert PaymentTally.select().count() <= 4  # folded for the next read
        assert reports.payment_counts() == counted()

    domain(scenario)


def test_the_migration_counts_the_payments_already_there(domain):
    spec = importlib.util.spec_from_file_location("migration_0104", db.MIGRATIONS / "0104_payment_tally.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    def scenario():
        request = new_request(1000)
        pay(1000, note=request.reference)
        for amount in (5000, 6000):
            pay(amount)
        expected = counted()
        with db.transaction():
            PaymentTally.delete().execute()
            db.database.execute_sql(migration.BACKFILL)
        assert reports.payment_counts() == expected == {"confirmed": 1, "unmatched": 2}

    domain(scenario)


@pytest.mark.one_backend  # SQLite: a fold needs the file's one write lock (PostgreSQL's takes row locks)
def test_a_read_whose_fold_cannot_have_the_write_lock_still_answers_and_the_next_read_folds(domain, database_url,
                                                                                             caplog):
    """A long writer (an import) holding SQLite's write lock past busy_timeout: the read that found the
    rows piled up still answers, exactly; the fold is left to the next read."""
    import sqlite3

    def scenario():
        _pile_up(600)
        piled = PaymentTally.select().count()
        assert piled >= 1800
        db.database.execute_sql("PRAGMA busy_timeout = 200")  # this connection's wait, not 5 s
        writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held
        try:
            with caplog.at_level("WARNING", logger="webapp.domain.tallies"):
                assert reports.payment_counts() == {"review": 600}
            assert "payment_tally not folded, the next read tries again: database is locked" in caplog.text
            assert review_counts()["queue"] == 600
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert PaymentTally.select().count() == piled  # nothing lost, nothing folded
        assert reports.payment_counts() == {"review": 600}
        assert PaymentTally.select().count() <= 4  # the next read folded them

    domain(scenario)
