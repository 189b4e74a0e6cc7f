"""What a source reports about requests (portal rows, gateway statuses) through ledger.observe_request."""
import pytest

from webapp.domain import ledger
from webapp.storage.models import Agent, Lead, Notification, Payment, PaymentRequest


def seen(status="pending", **extra):
    values = dict(source="acme-portal", external_id="TX000123", status=status, amount_minor=50000, currency="UGX",
                  customer_name="Jane Doe", customer_phone="+256772123456", agent_code="AG7")
    values.update(extra)
    return ledger.RequestObservation(**values)


def test_a_new_pending_row_creates_the_request_agent_lead_and_pending_alert(ctx):
    result = ledger.observe_request(seen())
    request = result.request
    assert result.change == "created" and request.status == "pending" and request.external_id == "TX000123"
    agent = Agent.get(Agent.code == "AG7")
    assert request.agent_id == agent.id
    assert Lead.get(Lead.phone == "+256772123456").agent_id == agent.id
    assert {n.kind for n in Notification.select().where(Notification.request == request.id)} == {"pending_alert_customer"}


def test_reading_the_same_row_again_changes_nothing(ctx):
    first = ledger.observe_request(seen())
    again = ledger.observe_request(seen())
    assert again.change == "unchanged" and again.request.id == first.request.id
    assert PaymentRequest.select().count() == 1 and Lead.select().count() == 1


def test_a_row_turning_completed_pays_the_request_once(ctx):
    ledger.observe_request(seen())
    paid = ledger.observe_request(seen("paid", transaction_id="MTN123"))
    assert paid.change == "paid" and paid.request.status == "paid"
    payment = Payment.get(Payment.request == paid.request.id)
    assert payment.status == "confirmed" and payment.source == "acme-portal" and payment.transaction_id == "MTN123"
    kinds = {(n.kind, n.status) for n in Notification.select().where(Notification.request == paid.request.id)}
    assert ("pending_alert_customer", "cancelled") in kinds and ("payment_confirmed_customer", "pending") in kinds
    assert ledger.observe_request(seen("paid")).change == "unchanged"
    assert Payment.select().count() == 1


@pytest.mark.parametrize("status", ["failed", "expired", "cancelled"])
def test_an_ending_row_ends_the_request(ctx, status):
    ledger.observe_request(seen())
    result = ledger.observe_request(seen(status))
    assert result.change == "ended" and result.request.status == status
    assert Notification.get(Notification.kind == "pending_alert_customer").status == "cancelled"


def test_a_row_first_seen_completed_is_recorded_paid_without_any_message(ctx):
    result = ledger.observe_request(seen("paid"))
    assert result.request.status == "paid"
    assert Notification.select().count() == 0


def test_a_row_without_an_amount_is_ignored(ctx):
    assert ledger.observe_request(seen(amount_minor=None)).change == "ignored"
    assert PaymentRequest.select().count() == 0


def test_history_first_seen_paid_keeps_the_rows_paid_time_and_stays_out_of_time_to_pay(ctx):
    from datetime import timedelta

    from webapp.domain import reports
    from webapp.storage.models import Agent, utcnow

    now = utcnow()
    created, moved = now - timedelta(days=3), now - timedelta(days=3) + timedelta(minutes=7)
    history = ledger.observe_request(seen("paid", external_id="OLD1", created_at=created, paid_at=moved,
                                          transaction_id="MTN900001"), now=now)
    request = PaymentRequest.get_by_id(history.request.id)
    assert request.status == "paid" and request.seen_settled and request.paid_at == moved
    assert Payment.get(Payment.request == request.id).received_at == moved
    # Watched being paid: a true time to pay.
    ledger.observe_request(seen(external_id="NEW1"), now=now - timedelta(minutes=10))
    ledger.observe_request(seen("paid", external_id="NEW1", transaction_id="MTN900002"), now=now)
    watched = PaymentRequest.get(PaymentRequest.external_id == "NEW1")
    assert watched.status == "paid" and not watched.seen_settled
    assert [r.external_id for r in reports.slowest_paid(30, now=now)] == ["NEW1"]
    stats = reports.agent_stats(Agent.get(Agent.code == "AG7"))
    assert stats.counts["paid"] == 2 and stats.median_seconds_to_pay == pytest.approx(600, abs=2)
