"""A batch (ledger.ingest_payments, which reads for the whole batch first) decides exactly what
the same payments decide one by one, however its payments interact: the same report twice,
the same money from two sources, two payments after one request, installments adding up,
a request moved to review by one payment and paid by the next.

Each run uses a currency of its own (both without decimals, so amounts read the same) in one
database (matching never crosses currencies), so the runs can be compared row for row."""
from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta

import pytest

from tests.ledger_helpers import new_request, observe
from webapp.domain import ledger, payers
from webapp.storage import db
from webapp.storage.models import (
    Event,
    MatchCandidate,
    Notification,
    Payment,
    PaymentRequest,
    PaymentSighting,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)

NOW = utcnow().replace(microsecond=0)


def _scenario(tag: str, currency: str, digit: int) -> list[ledger.PaymentObservation]:
    """Requests of `currency` (references starting with `tag`), and the payments to ingest."""
    phone = lambda n: f"+25677{digit}00000{n}"  # noqa: E731
    created = NOW - timedelta(minutes=5)
    for suffix, amount, name, who, extra in (
        ("R1", 5000, "Jane Doe", phone(1), {}),
        ("R2", 5000, "John Okello", phone(2), {}),
        ("R3", 5000, "Ann Other", None, {}),
        ("R4", 7000, "Peter K", phone(3), {}),
        ("R5", 7000, "Paul K", phone(3), {}),
        ("R6", 30000, "Amina N", phone(4), {"allow_partial": True, "due_at": NOW + timedelta(days=30)}),
        ("R7", 9000, "Quoted Person", None, {}),
        ("R8", 11000, "Bob Smith", None, {}),
        ("R9", 13000, "Kato Moses", None, {}),
        ("R11", 16000, "Sara N", phone(5), {}),
    ):
        new_request(amount, currency, name=name, phone=who, now=created, reference=f"{tag}{suffix}", **extra)
    pupil = payers.save(f"{tag}-ADM", "Kato Moses", [phone(6)], "P5", actor="test")[0]
    new_request(40000, currency, name="Kato Moses", phone=None, now=created, reference=f"{tag}R10",
                allow_partial=True, due_at=NOW + timedelta(days=30), payer_id=pupil.id)
    at = NOW - timedelta(minutes=1)
    src, other = f"s{tag}", f"t{tag}"
    txn = f"TX{digit}123456"
    assert ledger.flag_reversal(src, f"RV{digit}654321", currency=currency) is None  # before its payment

    def obs(amount, ref, **extra):
        extra.setdefault("received_at", at)
        return observe(amount, currency, ref=f"{tag}-{ref}", source=extra.pop("source", src), **extra)

    return [
        obs(15000, "o19", transaction_id=f"TX{digit}222333"),  # nobody's
        obs(16000, "o20", phone=phone(5), transaction_id=f"TX{digit}222333"),  # R11's phone, o19's id: review
        obs(5000, "o1", phone=phone(1)),                       # pays R1
        obs(5000, "o2", phone=phone(1)),                       # R1 is paid now: R2/R3 by amount only
        obs(5000, "o3"),                                       # the same three again
        obs(5000, "o1", phone=phone(1)),                       # the same report again
        obs(10000, "o5", phone=phone(4)),                      # an installment toward R6
        obs(25000, "o6", phone=phone(4)),                      # more than R6's balance: review
        obs(20000, "o6b", phone=phone(4)),                     # what is left on R6, exactly
        obs(9000, "o7", note=f"for {tag}R7 thanks"),          # quotes R7
        obs(11000, "o8", transaction_id=txn),                  # R8 by amount only
        obs(11000, "o9", transaction_id=txn, source=other),    # the same money from another source
        obs(12000, "o10", transaction_id=txn),                 # the same transaction id, another amount
        obs(7000, "o11", phone=phone(3)),                      # R4 or R5: one phone, two requests
        obs(7000, "o12", phone=phone(3)),
        obs(None, "o13", parsed=False, raw="unreadable"),      # kept as evidence
        obs(5000, "o14", phone=phone(2)),                      # R2, in review since o2
        obs(20000, "o15", phone=phone(6)),                     # toward R10, by the payer's roster phone
        obs(20000, "o16", phone=phone(6)),                     # R10's balance, exactly
        obs(13000, "o17", name="Kato Moses", received_at=at + timedelta(seconds=5)),  # R9 by name
        obs(5000, "o18", phone=phone(2), transaction_id=f"RV{digit}654321"),  # reversed before it arrived
    ]


def _state(tag: str, currency: str) -> dict:
    """What the run left, with its tag and row ids taken out."""
    def plain(text):
        text = (text or "").replace(tag, "").replace(currency, "CUR")
        # row ids, the run's transaction id and phones
        return re.sub(r"(payment |TX|\+25677)\d+", r"\1#", text) or None

    payments = {p.id: p for p in Payment.select().where(Payment.source.startswith(f"s{tag}")
                                                         | Payment.source.startswith(f"t{tag}"))}
    requests = {r.id: r for r in PaymentRequest.select().where(PaymentRequest.currency == currency)}

    def ref(payment):
        return payment.source_ref.replace(tag, "")

    def req(request_id):
        return requests[request_id].reference.replace(tag, "") if request_id in requests else None

    return {
        "payments": sorted((ref(p), p.status, req(p.request_id), p.confidence, p.late, p.verified, plain(p.reason),
                            plain(json.dumps(p.evidence, sort_keys=True))) for p in payments.values()),
        "sightings": sorted((s.source_ref.replace(tag, ""), ref(payments[s.payment_id]), s.corroborates)
                            for s in PaymentSighting.select().where(PaymentSighting.payment.in_(list(payments)))),
        "requests": sorted((req(r.id), r.status, r.paid_minor) for r in requests.values()),
        "candidates": sorted((ref(payments[c.payment_id]), req(c.request_id), c.score, c.mismatch)
                             for c in MatchCandidate.select().where(MatchCandidate.payment.in_(list(payments)))),
        "notifications": sorted((n.kind, n.phone[-1:] if n.phone else None, n.status) for n in Notification.select()
                                .where(Notification.payment.in_(list(payments))
                                       | Notification.request.in_(list(requests)))),
        "events": Counter(e.action for e in Event.select().where(Event.subject.in_(
            [f"payment:{i}" for i in payments] + [f"request:{r.reference}" for r in requests.values()]))),
    }


@pytest.mark.parametrize("batch, listening", [(100, False), (5, True), (2, False), (100, True)])
def test_a_batch_decides_what_the_same_payments_decide_one_by_one(ctx, batch, listening):
    if listening:  # a webhook endpoint wants every event: the events' bodies are read from the rows
        WebhookEndpoint.create(url="https://hooks.example.com/paywatch", secret="whsec_" + "x" * 32, events=[],
                               is_active=True)
    one_by_one = _scenario("A", "UGX", 1)
    with db.count_queries() as alone:
        for observation in one_by_one:
            ledger.ingest_payment(observation, actor="test", now=NOW)
    expected = _state("A", "UGX")
    expected_deliveries = Counter(d.event for d in WebhookDelivery.select())

    batched = _scenario("B", "RWF", 2)
    results = []
    with db.count_queries() as together:
        for i in range(0, len(batched), batch):
            results += ledger.ingest_payments(batched[i:i + batch], actor="test", now=NOW)
    got = _state("B", "RWF")
    # ... in fewer statements: no batch was rolled back and run again one payment at a time
    # (what a duplicate key inside the batch would cost).
    assert together[0] < alone[0]

    for part in expected:
        assert got[part] == expected[part], part
    deliveries = Counter(d.event for d in WebhookDelivery.select()) - expected_deliveries
    assert deliveries == expected_deliveries
    assert bool(deliveries["payment.received"]) is listening
    # The scenario does what it says (so that the comparison compares something).
    requests = dict((r, (s, paid)) for r, s, paid in expected["requests"])
    assert requests["R1"][0] == "paid" and requests["R7"][0] == "paid"
    assert requests["R6"] == ("paid", 30000) and requests["R10"] == ("paid", 40000)
    payments = {p[0]: p for p in expected["payments"]}
    assert payments["-o6"][1] == "review" and "over-payment" in payments["-o6"][6]
    assert "also seen on payment" in payments["-o10"][6]
    assert payments["-o20"][1] == "review" and "also seen on payment" in payments["-o20"][6]
    assert ("-o9", "-o8", True) in expected["sightings"]
    assert payments["-o18"][1] == "review" and expected["events"]["payment.reversed"] == 1
    assert [r.created for r in results].count(False) == 2  # o1 again, o9 (a sighting)
