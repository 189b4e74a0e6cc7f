"""The payment tally behind the review badge, the dashboard's counters and the review counts
(migration 0104): exact after ingests of every outcome, staff decisions, plain updates and deletes,
after folding, and from the migration's count of the payments already there."""
import importlib.util

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


def test_many_changes_are_folded_when_a_page_reads(domain):
    def scenario():
        with db.transaction():
            for i in range(700):
                Payment.create(source="test", source_ref=f"fold-{i}", amount_minor=100 + i, currency="UGX",
                               received_at=utcnow(), status="unmatched")
            Payment.update(status="review").where(Payment.source_ref.startswith("fold-")).execute()
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
