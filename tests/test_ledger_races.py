"""Each ledger transition run by two processes at the same moment: exactly one winner.

Runs on SQLite (a shared file, WAL) and PostgreSQL, through real separate processes.
"""
import multiprocessing

import pytest

from tests.ledger_helpers import ago, new_request, observe, pay
from tests.race_worker import race
from webapp.storage.models import Payment, PaymentRequest

pytestmark = pytest.mark.slow
SPAWN = multiprocessing.get_context("spawn")


def run_pair(environ, calls):
    """Start one process per (call, args), release them together, return their outcomes."""
    barrier, results = SPAWN.Barrier(len(calls)), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=race, args=(environ, barrier, results, call, args, kwargs))
        for call, args, kwargs in (c if len(c) == 3 else (*c, {}) for c in calls)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert not [o for o in outcomes if o[0] == "crashed"], outcomes
    return outcomes


def winners(outcomes):
    return [o for o in outcomes if o[0] == "ok"]


def test_two_processes_confirming_the_same_pair_make_one_winner(ctx, environ):
    first, second = new_request(phone="+256772000001"), new_request(phone="+256772000002")
    payment = pay(5000).payment
    outcomes = run_pair(environ, [("confirm", (payment.id, first.reference), {"actor": "user:1"}),
                                  ("confirm", (payment.id, first.reference), {"actor": "user:2"})])
    assert len(winners(outcomes)) == 1
    assert [o[1] for o in outcomes if o[0] == "refused"] in (["invalid_state"], ["conflict"])
    assert PaymentRequest.get_by_id(first.id).status == "paid"


def test_two_processes_confirming_one_payment_for_two_requests_pay_only_one(ctx, environ):
    first, second = new_request(phone="+256772000001"), new_request(phone="+256772000002")
    payment = pay(5000).payment
    outcomes = run_pair(environ, [("confirm", (payment.id, first.reference), {"actor": "user:1"}),
                                  ("confirm", (payment.id, second.reference), {"actor": "user:2"})])
    assert len(winners(outcomes)) == 1
    statuses = sorted(PaymentRequest.get_by_id(r.id).status for r in (first, second))
    assert statuses == ["paid", "pending"]


def test_two_payments_racing_for_one_request_pay_it_once(ctx, environ):
    request = new_request(phone="+256772123456")
    outcomes = run_pair(environ, [
        ("ingest_payment", (observe(5000, ref="race-a", phone="+256772123456"),)),
        ("ingest_payment", (observe(5000, ref="race-b", phone="+256772123456"),)),
    ])
    assert sorted(o[3] for o in outcomes) == ["confirmed", "unmatched"]
    assert Payment.select().where(Payment.request == request.id, Payment.status == "confirmed").count() == 1
    assert PaymentRequest.get_by_id(request.id).status == "paid"


def test_the_same_payment_ingested_twice_at_once_is_stored_once(ctx, environ):
    new_request(phone="+256772123456")
    observation = observe(5000, ref="same-mail", phone="+256772123456")
    outcomes = run_pair(environ, [("ingest_payment", (observation,)), ("ingest_payment", (observation,))])
    assert sorted(o[2] for o in outcomes) == [False, True]
    assert len({o[1] for o in outcomes}) == 1
    assert Payment.select().count() == 1


def test_two_cancels_at_once_make_one_winner(ctx, environ):
    request = new_request()
    outcomes = run_pair(environ, [("cancel_request", (request.reference,), {"actor": "user:1"}),
                                  ("cancel_request", (request.reference,), {"actor": "user:2"})])
    assert len(winners(outcomes)) == 1
    assert [o[1] for o in outcomes if o[0] == "refused"] == ["invalid_state"]


def test_two_rejects_at_once_make_one_winner(ctx, environ):
    first, second = new_request(phone="+256772000001"), new_request(phone="+256772000002")
    payment = pay(5000).payment
    outcomes = run_pair(environ, [("reject", (payment.id, first.reference, "not theirs"), {"actor": "user:1"}),
                                  ("reject", (payment.id, first.reference, "not theirs"), {"actor": "user:2"})])
    assert len(winners(outcomes)) == 1


def test_two_sweeps_at_once_expire_each_request_once(ctx, environ):
    requests = [new_request(now=ago(minutes=30)) for _ in range(20)]
    outcomes = run_pair(environ, [("expire_due", ()), ("expire_due", ())])
    assert sum(o[1] for o in outcomes) == 20
    assert {PaymentRequest.get_by_id(r.id).status for r in requests} == {"expired"}


def test_one_transaction_reported_by_two_channels_at_once_is_one_payment(ctx, environ):
    """The provider's mail and a forwarded SMS copy (two refs, one transaction id) in two workers."""
    first, second = new_request(phone="+256772123456"), new_request(phone="+256772123456")
    outcomes = run_pair(environ, [
        ("ingest_payment", (observe(5000, ref="mail-1", phone="+256772123456", transaction_id="QK12ABC345"),)),
        ("ingest_payment", (observe(5000, ref="sms-copy", phone="+256772123456", transaction_id="QK12-abc-345"),)),
    ])
    assert len({o[1] for o in outcomes}) == 1  # both answers name the same payment
    assert Payment.select().count() == 1
    statuses = sorted(PaymentRequest.get_by_id(r.id).status for r in (first, second))
    assert statuses != ["paid", "paid"]


def test_a_gateway_poll_and_its_callback_at_once_make_one_payment_and_no_crash(ctx, environ):
    from webapp.domain import ledger

    request = new_request(source="gw", external_id="EXT-42", phone="+256772123456")
    seen = ledger.RequestObservation(source="gw", external_id="EXT-42", status="paid", amount_minor=5000,
                                     currency="UGX", transaction_id="IOTEC-TXN-777")
    outcomes = run_pair(environ, [("observe_request", (seen,)), ("observe_request", (seen,))])
    assert sorted(o[1] for o in outcomes) == ["paid", "unchanged"]
    assert Payment.select().count() == 1
    assert PaymentRequest.get_by_id(request.id).status == "paid"
