"""One transaction, one payment: whichever channels report it, money pays at most one request.

Also: reversals kept until their payment arrives, money that arrives before its request,
and what a source's "paid" may and may not do (inexact amounts, late money).
"""
from datetime import timedelta

import pytest

from tests.ledger_helpers import actions, ago, fresh, new_request, pay
from webapp.domain import ledger
from webapp.storage.models import (
    MatchCandidate,
    Payment,
    PaymentSighting,
    Reversal,
    utcnow,
)

PHONE = "+256772123456"


# ------------------------------------------------------------------ one transaction, one payment


def test_a_mail_and_a_forwarded_sms_of_one_transaction_pay_one_of_two_requests_for_the_same_customer(ctx):
    first, second = new_request(phone=PHONE, name="Jane Doe"), new_request(phone=PHONE, name="Jane Doe")
    mail = pay(5000, ref="<mail@mpesa>", source="shop-mail", phone=PHONE, transaction_id="QK12ABC345",
               provider="mpesa")
    sms = pay(5000, ref="<fwd@phone>", source="shop-mail", phone=PHONE, transaction_id="qk12abc345",
              provider="mpesa", verified=False)
    assert mail.created and not sms.created and sms.sighting
    assert sms.payment.id == mail.payment.id
    assert Payment.select().count() == 1
    statuses = sorted(fresh(r).status for r in (first, second))
    assert "paid" not in statuses or statuses.count("paid") == 1
    assert statuses == ["review", "review"]  # two equal candidates: staff choose, once
    sighting = PaymentSighting.get()
    assert (sighting.payment_id, sighting.source_ref, sighting.verified) == (mail.payment.id, "<fwd@phone>", False)
    assert not sighting.corroborates  # the same mailbox: not an independent source
    assert "payment.seen_again" in actions(f"payment:{mail.payment.id}")


def test_reading_the_second_report_again_changes_nothing(ctx):
    pay(5000, ref="a", transaction_id="QK12ABC345")
    again = [pay(5000, ref="b", transaction_id="QK12ABC345") for _ in range(2)]
    assert [r.created for r in again] == [False, False]
    assert PaymentSighting.select().count() == 1 and Payment.select().count() == 1


def test_two_genuine_payments_of_the_same_amount_from_the_same_payer_stay_two(ctx):
    new_request(phone=PHONE, now=ago(minutes=2))
    new_request(phone=PHONE, now=ago(minutes=1))
    one = pay(5000, phone=PHONE, transaction_id="QK12ABC345")
    two = pay(5000, phone=PHONE, transaction_id="QK12ABC999")
    assert one.created and two.created and one.payment.id != two.payment.id
    assert Payment.select().count() == 2


def test_another_source_reporting_the_same_transaction_corroborates_a_confirmed_payment(ctx):
    request = new_request(phone=PHONE)
    first = pay(5000, source="shop-mail", phone=PHONE, transaction_id="QK12ABC345")
    assert fresh(first.payment).status == "confirmed" and fresh(request).status == "paid"
    before = fresh(first.payment).confidence
    again = pay(5000, source="acme-portal", transaction_id="QK12ABC345")
    assert again.sighting and again.payment.id == first.payment.id
    payment = fresh(first.payment)
    assert payment.confidence == min(100, before + 10)
    assert payment.evidence[-1] == {"signal": "corroborated", "points": 10, "detail": "also seen at acme-portal"}
    assert PaymentSighting.get().corroborates


def test_a_corroboration_matches_a_waiting_payment_again_with_its_signal(ctx):
    new_request(phone=PHONE, name="Jane Doe")
    new_request(phone="+256772000002", name="Bob Otieno")
    waiting = pay(5000, source="shop-mail", transaction_id="QK12ABC345").payment  # amount only: review
    assert fresh(waiting).status == "review"
    pay(5000, source="api", transaction_id="QK12ABC345")
    signals = {e["signal"] for c in MatchCandidate.select().where(MatchCandidate.payment == waiting.id)
               for e in c.evidence}
    assert "corroborated" in signals
    assert fresh(waiting).status == "review"  # still two candidates: corroboration tells money, not whose


def test_the_same_transaction_id_with_another_amount_is_a_second_payment_that_never_confirms(ctx):
    request = new_request(4000, phone=PHONE)
    pay(5000, phone=PHONE, transaction_id="QK12ABC345")
    other = pay(4000, phone=PHONE, transaction_id="QK12ABC345")
    assert other.created
    payment = fresh(other.payment)
    assert payment.status == "review" and "also seen on payment" in payment.reason
    assert fresh(request).status == "review"


def test_ids_too_short_to_name_a_transaction_are_not_compared(ctx):
    assert ledger.normalize_txn("N/A") is None and ledger.normalize_txn("1234") is None
    assert ledger.normalize_txn(" qk12-abc.345 ") == "QK12ABC345"
    pay(5000, transaction_id="12345")
    pay(5000, transaction_id="12345")
    assert Payment.select().count() == 2


# ------------------------------------------------------------------ reversals before their payment


def test_a_reversal_reported_before_its_payment_is_kept_and_sends_the_payment_to_review(ctx):
    request = new_request(phone=PHONE)
    assert ledger.flag_reversal("shop-mail", "QK12ABC345", reason="reversed at the provider (RV1)") is None
    pending = Reversal.get()
    assert pending.applied_at is None and pending.txn_norm == "QK12ABC345"
    result = pay(5000, source="shop-mail", phone=PHONE, note=request.reference, transaction_id="QK12ABC345")
    payment = fresh(result.payment)
    assert payment.status == "review" and payment.reason.startswith("reversed at the provider")
    assert fresh(request).status == "review"  # waits for staff, never paid by itself
    assert fresh(pending).payment_id == payment.id and fresh(pending).applied_at is not None
    assert "payment.reversed" in actions(f"payment:{payment.id}")
    assert ledger.flag_reversal("shop-mail", "QK12ABC345") is not None  # now found: nothing more changes
    assert Reversal.select().count() == 1


def test_a_reversal_finds_the_payment_whichever_source_reported_it(ctx):
    request = new_request(phone=PHONE)
    paid = pay(5000, source="acme-portal", phone=PHONE, transaction_id="QK12ABC345").payment
    assert fresh(request).status == "paid"
    flagged = ledger.flag_reversal("shop-mail", "qk12abc345")
    assert flagged.id == paid.id and flagged.status == "review"
    assert fresh(request).status == "review" and fresh(request).flag == "payment_reversed"


# ------------------------------------------------------------------ money before its request


def test_money_that_arrives_just_before_its_request_is_matched_when_the_request_appears(ctx):
    early = pay(5000, name="Jane Doe", phone=PHONE, received_at=ago(minutes=2)).payment
    assert fresh(early).status == "unmatched"
    request = new_request(phone=PHONE, name="Jane Doe")
    assert fresh(early).status == "confirmed" and fresh(early).request_id == request.id
    assert fresh(request).status == "paid"


def test_earlier_money_that_is_not_decisive_goes_to_review_when_the_request_appears(ctx):
    early = pay(5000, received_at=ago(minutes=1)).payment  # amount only
    request = new_request(phone=PHONE)
    assert fresh(early).status == "review" and fresh(request).status == "review"


def test_money_from_before_the_window_stays_unmatched(ctx):
    early = pay(5000, phone=PHONE, received_at=ago(minutes=30)).payment
    new_request(phone=PHONE)
    assert fresh(early).status == "unmatched"


def test_a_portal_row_creating_a_request_picks_up_money_already_seen(ctx):
    early = pay(5000, name="Jane Doe", phone=PHONE, received_at=ago(minutes=1)).payment
    result = ledger.observe_request(ledger.RequestObservation(
        source="acme-portal", external_id="ROW-1", status="pending", amount_minor=5000, currency="UGX",
        customer_name="Jane Doe", customer_phone=PHONE))
    assert result.change == "created"
    assert fresh(early).status == "confirmed" and fresh(early).request_id == result.request.id


# ------------------------------------------------------------------ what a source's "paid" may do


def observed(external_id="EXT-1", **fields):
    return ledger.RequestObservation(source="gw", external_id=external_id, **fields)


@pytest.mark.parametrize("amount, text, why", [
    (None, "4999.5", "4999.5 UGX, not an exact amount"),
    (None, None, "no amount"),
    (4000, None, "reports 4000 UGX"),
])
def test_a_paid_report_with_an_inexact_missing_or_other_amount_never_pays(ctx, amount, text, why):
    request = new_request(source="gw", external_id="EXT-1", phone=PHONE)
    result = ledger.observe_request(observed(status="paid", amount_minor=amount, amount_text=text, currency="UGX",
                                             transaction_id="IOTEC-TXN-1"))
    assert result.change == "review"
    assert fresh(request).status == "review" and fresh(request).flag == "source_payment_doubtful"
    payment = Payment.get(Payment.source == "gw")
    assert payment.status == "review" and why in payment.reason
    candidate = MatchCandidate.get(MatchCandidate.payment == payment.id)
    assert candidate.request_id == request.id and candidate.mismatch  # staff cannot confirm it by mistake
    again = ledger.observe_request(observed(status="paid", amount_minor=amount, amount_text=text, currency="UGX",
                                            transaction_id="IOTEC-TXN-1"))
    assert again.change == "unchanged" and Payment.select().count() == 1


def test_a_paid_report_for_money_that_moved_after_expiry_goes_to_review_flagged_late(ctx):
    request = new_request(source="gw", external_id="EXT-1", phone=PHONE, now=ago(minutes=20))
    ledger.expire_due()
    assert fresh(request).status == "expired"
    result = ledger.observe_request(observed(status="paid", amount_minor=5000, currency="UGX",
                                             transaction_id="IOTEC-TXN-1", paid_at=ago(minutes=1)))
    assert result.change == "review"
    payment = Payment.get(Payment.source == "gw")
    assert payment.status == "review" and payment.late and "late" in payment.reason
    assert fresh(request).status == "expired"
    ledger.confirm(payment.id, request.reference, actor="user:1")  # staff may still accept it
    assert fresh(request).status == "paid"


def test_a_paid_report_arriving_late_for_money_that_moved_in_time_pays(ctx):
    request = new_request(source="gw", external_id="EXT-1", phone=PHONE, now=ago(minutes=20))
    ledger.expire_due()
    result = ledger.observe_request(observed(status="paid", amount_minor=5000, currency="UGX",
                                             transaction_id="IOTEC-TXN-1", paid_at=ago(minutes=10)))
    assert result.change == "paid" and fresh(request).status == "paid"


def test_a_source_saying_paid_with_money_that_already_pays_another_request_pays_nothing_more(ctx):
    other = new_request(phone=PHONE)
    mail = pay(5000, source="shop-mail", phone=PHONE, transaction_id="MTN-55512345").payment
    assert fresh(other).status == "paid"
    request = new_request(source="gw", external_id="EXT-1", phone=PHONE)
    result = ledger.observe_request(observed(status="paid", amount_minor=5000, currency="UGX",
                                             transaction_id="MTN-55512345"))
    assert result.change == "review"
    assert fresh(request).status == "pending" and fresh(request).flag == "source_payment_doubtful"
    assert fresh(mail).request_id == other.id and Payment.select().count() == 1
    assert PaymentSighting.get().conflict


def test_a_source_saying_paid_for_money_already_waiting_in_review_pays_with_that_payment(ctx):
    request = new_request(source="gw", external_id="EXT-1", phone="+256772000001")
    new_request(phone="+256772000002")
    waiting = pay(5000, source="shop-mail", transaction_id="MTN-55512345").payment
    assert fresh(waiting).status == "review"
    result = ledger.observe_request(observed(status="paid", amount_minor=5000, currency="UGX",
                                             transaction_id="MTN-55512345"))
    assert result.change == "paid"
    assert fresh(waiting).status == "confirmed" and fresh(waiting).request_id == request.id
    assert Payment.select().count() == 1 and PaymentSighting.select().count() == 1


def test_history_first_seen_already_paid_is_not_late(ctx):
    result = ledger.observe_request(ledger.RequestObservation(
        source="acme-portal", external_id="OLD-1", status="paid", amount_minor=5000, currency="UGX",
        created_at=utcnow() - timedelta(days=3), transaction_id="MTN-99912345"))
    assert result.change == "paid" and result.request.status == "paid"
