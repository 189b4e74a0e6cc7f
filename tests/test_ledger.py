"""Every ledger transition: its effect, its audit event, its outbox rows, and what a repeat does."""
import re
from datetime import timedelta

import pytest

from tests.ledger_helpers import actions, ago, fresh, new_request, observe, pay
from webapp.domain import ledger, options
from webapp.storage.models import (
    AmountReservation,
    Event,
    MatchCandidate,
    Notification,
    Payment,
    RejectedPair,
    utcnow,
)


def kinds(**where):
    query = Notification.select()
    for field, value in where.items():
        query = query.where(getattr(Notification, field) == value)
    return sorted((n.kind, n.status) for n in query)


# ------------------------------------------------------------------ requests


def test_a_new_request_gets_a_short_unambiguous_reference_and_expires_after_the_ttl(ctx):
    request = new_request()
    assert re.fullmatch(r"PW-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}", request.reference)
    assert request.status == "pending"
    assert request.expires_at - request.created_at == timedelta(minutes=15)
    assert actions(f"request:{request.reference}") == ["request.created"]


def test_a_request_can_override_its_lifetime(ctx):
    request = new_request(expires_in=timedelta(minutes=90))
    assert request.expires_at - request.created_at == timedelta(minutes=90)


def test_a_new_request_queues_the_pending_alert_for_customer_and_agent(ctx):
    from webapp.storage.models import Agent

    agent = Agent.create(name="Sam", code="A1", phone="+256700000001")
    request = new_request(agent_id=agent.id)
    rows = {n.kind: n for n in Notification.select().where(Notification.request == request.id)}
    assert set(rows) == {"pending_alert_agent", "pending_alert_customer"}
    assert rows["pending_alert_agent"].phone == "+256700000001"
    assert rows["pending_alert_customer"].due_at == request.created_at + timedelta(seconds=120)


def test_a_taken_reference_is_refused(ctx):
    new_request(reference="BOOKING-1")
    with pytest.raises(ledger.LedgerError) as info:
        new_request(reference="BOOKING-1")
    assert info.value.code == "reference_taken" and info.value.status == 409


def test_unique_amounts_move_a_clashing_request_by_one_minor_unit_and_release_it_when_it_ends(ctx):
    options.update({"unique_amounts": True, "unique_amount_max_steps": 2}, actor="test")
    first, second, third = new_request(5000), new_request(5000), new_request(5000)
    assert [first.amount_minor, second.amount_minor, third.amount_minor] == [5000, 5001, 5002]
    assert second.requested_minor == 5000
    with pytest.raises(ledger.LedgerError) as info:
        new_request(5000)
    assert info.value.code == "no_unique_amount"
    ledger.cancel_request(first.reference, actor="test")
    assert not AmountReservation.select().where(AmountReservation.request == first.id).exists()
    assert new_request(5000).amount_minor == 5000
    # Paid (whole, in the one statement that also says an amount was reserved): released too.
    assert pay(5001, phone=second.customer_phone).decision.action == "confirm"
    assert not AmountReservation.select().where(AmountReservation.request == second.id).exists()
    assert AmountReservation.select().where(AmountReservation.request == third.id).exists()


def test_unique_amounts_are_off_by_default(ctx):
    assert new_request(5000).amount_minor == new_request(5000).amount_minor == 5000


def test_cancel_ends_a_pending_request_once(ctx):
    request = new_request()
    ledger.cancel_request(request.reference, actor="user:1", reason="customer changed their mind")
    assert fresh(request).status == "cancelled"
    assert kinds(request=request.id) == [("pending_alert_customer", "cancelled")]
    with pytest.raises(ledger.LedgerError) as info:
        ledger.cancel_request(request.reference, actor="user:1")
    assert info.value.code == "invalid_state"
    assert actions(f"request:{request.reference}") == ["request.created", "request.cancelled"]


def test_the_sweep_expires_due_requests_once_and_tells_the_customer(ctx):
    due = new_request(now=ago(minutes=20))
    young = new_request()
    assert ledger.expire_due() == 1
    assert ledger.expire_due() == 0
    assert fresh(due).status == "expired" and fresh(young).status == "pending"
    assert kinds(request=due.id) == [("pending_alert_customer", "cancelled"), ("request_expired_customer", "pending")]
    assert actions(f"request:{due.reference}")[-1] == "request.expired"


def test_the_sweep_leaves_a_request_under_review(ctx):
    first, second = new_request(now=ago(minutes=20)), new_request(now=ago(minutes=20))
    pay(5000, received_at=ago(minutes=19))  # two candidates: review
    assert fresh(first).status == fresh(second).status == "review"
    assert ledger.expire_due() == 0


# ------------------------------------------------------------------ payments


def test_ingest_is_idempotent_on_source_and_source_ref(ctx):
    first = ledger.ingest_payment(observe(ref="mail-1"))
    again = ledger.ingest_payment(observe(ref="mail-1"))
    other_source = ledger.ingest_payment(observe(ref="mail-1", source="portal"))
    assert first.created and not again.created and other_source.created
    assert again.payment.id == first.payment.id
    assert Payment.select().count() == 2


def test_a_sure_match_is_confirmed_automatically_with_its_evidence(ctx):
    request = new_request(phone="+256772123456")
    result = pay(5000, phone="+256772123456", name="Someone")
    payment = fresh(result.payment)
    assert result.decision.action == "confirm"
    assert payment.status == "confirmed" and payment.request_id == request.id and payment.confidence >= 60
    assert {"currency", "amount", "window", "phone"} <= {e["signal"] for e in payment.evidence}
    assert fresh(request).status == "paid" and fresh(request).paid_at is not None
    assert kinds(request=request.id) == [
        ("payment_confirmed_customer", "pending"),
        ("pending_alert_customer", "cancelled"),
    ]
    assert actions(f"request:{request.reference}") == ["request.created", "request.paid"]
    assert actions(f"payment:{payment.id}") == ["payment.received", "payment.confirmed"]


def test_a_quoted_reference_confirms_even_among_equal_amounts(ctx):
    target, other = new_request(phone=None), new_request(phone=None)
    result = pay(5000, note=f"booking {target.reference.lower()}")
    assert result.decision.action == "confirm"
    assert fresh(target).status == "paid" and fresh(other).status == "pending"


def test_a_doubtful_payment_goes_to_review_with_a_candidate_row_per_request(ctx):
    first, second = new_request(phone=None), new_request(phone=None)
    result = pay(5000)
    payment = fresh(result.payment)
    assert payment.status == "review" and "too close" in payment.reason
    assert {c.request_id for c in MatchCandidate.select().where(MatchCandidate.payment == payment.id)} == {first.id, second.id}
    assert fresh(first).status == fresh(second).status == "review"


def test_a_payment_for_nothing_stays_unmatched_with_a_reason(ctx):
    result = pay(777)
    assert fresh(result.payment).status == "unmatched"
    assert "no open request" in fresh(result.payment).reason


def test_unreadable_evidence_is_kept_unmatched_and_never_matched(ctx):
    new_request()
    result = ledger.ingest_payment(observe(None, None, raw="From: MPESA\n???", parsed=False))
    payment = fresh(result.payment)
    assert payment.status == "unmatched" and payment.parsed is False and "MPESA" in payment.raw
    assert actions(f"payment:{payment.id}") == ["payment.received", "payment.unreadable"]


def test_a_payment_after_expiry_goes_to_review_flagged_late(ctx):
    request = new_request(now=ago(hours=2), phone="+256772123456")
    ledger.expire_due()
    result = pay(5000, phone="+256772123456")
    assert result.decision.action == "review" and fresh(result.payment).late is True
    assert fresh(request).status == "expired"


def test_a_second_payment_never_attaches_to_a_paid_request(ctx):
    request = new_request(phone="+256772123456")
    pay(5000, phone="+256772123456")
    second = pay(5000, phone="+256772123456")
    assert fresh(second.payment).status == "unmatched"
    assert Payment.select().where(Payment.request == request.id, Payment.status == "confirmed").count() == 1


# ------------------------------------------------------------------ staff decisions


def review_pair():
    first, second = new_request(phone="+256772000001"), new_request(phone="+256772000002")
    payment = pay(5000).payment
    return first, second, payment


def test_staff_confirm_pays_the_request_and_releases_the_other_candidate(ctx):
    first, second, payment = review_pair()
    ledger.confirm(payment.id, second.reference, actor="user:1", user_id=None)
    assert fresh(payment).status == "confirmed" and fresh(payment).request_id == second.id
    assert fresh(second).status == "paid" and fresh(first).status == "pending"
    assert not MatchCandidate.select().where(MatchCandidate.payment == payment.id).exists()
    with pytest.raises(ledger.LedgerError) as info:
        ledger.confirm(payment.id, second.reference, actor="user:1")
    assert info.value.code == "invalid_state"


def test_reject_needs_a_reason(ctx):
    first, _, payment = review_pair()
    with pytest.raises(ledger.LedgerError) as info:
        ledger.reject(payment.id, first.reference, "  ", actor="user:1")
    assert info.value.code == "reason_required"
    assert fresh(payment).status == "review"


def test_reject_puts_the_request_back_to_pending_and_never_suggests_the_pair_again_and_tells_nobody(ctx):
    first, second, payment = review_pair()
    ledger.reject(payment.id, first.reference, "wrong customer", actor="user:1")
    assert fresh(first).status == "pending"
    assert RejectedPair.select().where(RejectedPair.payment == payment.id, RejectedPair.request == first.id).exists()
    assert fresh(payment).status == "review" and fresh(payment).request_id == second.id
    assert [c.request_id for c in MatchCandidate.select().where(MatchCandidate.payment == payment.id)] == [second.id]
    assert "payment_rejected_customer" not in [kind for kind, _ in kinds(request=first.id)]  # the reason is internal
    ledger.reject(payment.id, second.reference, "not theirs either", actor="user:1")
    assert fresh(payment).status == "rejected" and fresh(second).status == "pending"
    with pytest.raises(ledger.LedgerError):
        ledger.reject(payment.id, second.reference, "again", actor="user:1")


def test_reject_tells_the_customer_only_when_staff_ask_with_staffs_own_words(ctx):
    first, _, payment = review_pair()
    ledger.reject(payment.id, first.reference, "Wrong customer — amount coincidence", actor="user:1",
                  notify_customer=True, message="Hello, your transfer for {{ reference }} was short; please call us.")
    row = Notification.get(Notification.request == first.id, Notification.kind == "payment_rejected_customer")
    assert row.phone == first.customer_phone
    assert row.context == {"template": "Hello, your transfer for {{ reference }} was short; please call us."}
    assert "coincidence" not in str(row.context)
    details = Event.get(Event.action == "payment.rejected").details
    assert details["reason"] == "Wrong customer — amount coincidence" and details["customer_told"] is True


def test_reject_never_tells_a_customer_about_money_someone_else_sent(ctx):
    first, _, _ = review_pair()
    stranger = pay(5000, phone="+256701999999").payment
    assert fresh(stranger).status == "review"
    with pytest.raises(ledger.LedgerError) as info:
        ledger.reject(stranger.id, first.reference, "a stranger's money", actor="user:1", notify_customer=True)
    assert info.value.code == "not_the_customers_money" and info.value.status == 422
    assert "+256701999999" in info.value.message
    assert fresh(stranger).status == "review"  # nothing changed
    assert MatchCandidate.select().where(MatchCandidate.payment == stranger.id, MatchCandidate.request == first.id).exists()
    ledger.reject(stranger.id, first.reference, "a stranger's money", actor="user:1")  # without telling: fine
    assert not Notification.select().where(Notification.kind == "payment_rejected_customer").exists()


def test_a_rejection_message_that_is_not_a_valid_template_is_refused(ctx):
    first, _, payment = review_pair()
    with pytest.raises(ledger.LedgerError) as info:
        ledger.reject(payment.id, first.reference, "short", actor="user:1", notify_customer=True,
                      message="Hello {{ nonsense }}")
    assert info.value.code == "invalid_message" and "nonsense" in info.value.message


def test_link_attaches_an_unmatched_payment_and_refuses_another_amount(ctx):
    request = new_request(5000, now=ago(days=5))
    unmatched = pay(5000).payment
    assert fresh(unmatched).status == "unmatched"
    wrong = pay(4000).payment
    with pytest.raises(ledger.LedgerError) as info:
        ledger.link(wrong.id, request.reference, actor="user:1")
    assert info.value.code == "amount_mismatch" and info.value.status == 422
    ledger.link(unmatched.id, request.reference, actor="user:1")
    assert fresh(request).status == "paid" and fresh(unmatched).status == "confirmed"
    assert actions(f"payment:{unmatched.id}")[-1] == "payment.confirmed"


def test_a_cancelled_request_cannot_be_paid(ctx):
    request = new_request()
    ledger.cancel_request(request.reference, actor="test")
    payment = pay(5000).payment
    with pytest.raises(ledger.LedgerError) as info:
        ledger.link(payment.id, request.reference, actor="user:1")
    assert info.value.code == "invalid_state"


def test_modes_come_from_the_settings(ctx):
    options.update({"verification_mode": "manual"}, actor="test")
    request = new_request(phone="+256772123456")
    result = pay(5000, phone="+256772123456")
    assert result.decision.action == "review" and fresh(request).status == "review"
    options.update({"verification_mode": "automated"}, actor="test")
    new_request(7000, phone=None), new_request(7000, phone=None)
    assert pay(7000).decision.action == "unmatched"


def test_an_unknown_reference_is_a_clear_404(ctx):
    with pytest.raises(ledger.LedgerError) as info:
        ledger.find_request("PW-NOPE22")
    assert info.value.status == 404 and "PW-NOPE22" in info.value.message


def test_references_are_found_however_they_are_typed(ctx):
    request = new_request()
    assert ledger.find_request(request.reference.lower().replace("-", " ")).id == request.id


def test_times_are_utc(ctx):
    request = new_request()
    assert request.created_at.utcoffset() == timedelta(0)
    assert abs(request.created_at - utcnow()) < timedelta(seconds=5)


def test_a_batch_ingests_each_payment_once_in_one_commit(ctx):
    request = new_request(phone="+256772123456")
    results = ledger.ingest_payments([
        observe(5000, ref="batch-1", phone="+256772123456"),
        observe(5000, ref="batch-1", phone="+256772123456"),  # the same mail read twice in one pass
        observe(999, ref="batch-2"),
    ], actor="test")
    assert [r.created for r in results] == [True, False, True]
    assert results[0].payment.id == results[1].payment.id
    assert fresh(request).status == "paid" and fresh(results[2].payment).status == "unmatched"


@pytest.mark.parametrize("decision", ["confirm", "reject"])
def test_a_reversed_payment_goes_back_to_staff_as_an_ordinary_review(ctx, decision):
    request = new_request(phone="+256772123456")
    payment = pay(5000, phone="+256772123456", transaction_id="QK1234ABCD", source="mailbox").payment
    ledger.flag_reversal("mailbox", "QK1234ABCD")
    assert fresh(payment).status == "review" and fresh(request).status == "review"
    assert fresh(request).flag == "payment_reversed"
    if decision == "confirm":
        ledger.confirm(payment.id, request.reference, actor="user:1")
        assert fresh(request).status == "paid" and fresh(payment).status == "confirmed"
    else:
        ledger.reject(payment.id, request.reference, "the customer's bank pulled it back", actor="user:1")
        assert fresh(request).status == "pending" and fresh(payment).status == "rejected"
