"""N+1 guard: a list page costs a fixed number of SQL statements, however many rows it shows.

Each list is fetched with 10 rows of each kind, then with 60: the count must not move, and
must stay under a fixed ceiling. A serializer or template that loads a related row per item
(the request a payment pays, a request's agent, voucher, payments, their sightings, a
candidate's request…) fails here. The rows carry every relation the lists show.
"""
from datetime import timedelta

import pytest

from webapp.domain import apikeys, audit
from webapp.storage import db
from webapp.storage.models import (
    Agent,
    MatchCandidate,
    Notification,
    Payment,
    PaymentRequest,
    PaymentSighting,
    Voucher,
    utcnow,
)

CEILING = 30  # statements for one page, session and navigation badge included (review: + its first
#                5 unmatched payments' suggestions, a fixed number of queries each)

PAGES = {
    "payments": "/payments/",
    "requests": "/requests/",
    "review": "/review/",
    "notifications": "/notifications/",
    "audit": "/audit/",
    "api requests": "/api/v1/requests",
    "api payments": "/api/v1/payments",
    "api pending-verifications": "/api/v1/admin/pending-verifications",
    "api unmatched-payments": "/api/v1/admin/unmatched-payments",
}


def add_rows(count: int, start: int) -> None:
    """`count` of each: a paid request (agent, voucher) with its confirmed payment and a sighting of it;
    a request in review with a payment in review as its candidate (late, for pending-verifications);
    an unmatched payment; a notification about a request; an audit event."""
    now = utcnow()
    with db.transaction():
        agent = Agent.create(name=f"Agent {start}", code=f"QC{start:04d}", phone=None)
        for i in range(start, start + count):
            paid = PaymentRequest.create(
                reference=f"PW-QC{i:05d}", amount_minor=1000 + i, requested_minor=1000 + i, currency="UGX",
                customer_name=f"Customer {i}", customer_phone=f"+2567700{i:05d}", agent=agent, status="paid",
                expires_at=now + timedelta(hours=1), paid_at=now, paid_minor=1000 + i)
            Voucher.create(pool="gold", code=f"V{i:05d}", request=paid, assigned_at=now)
            payment = Payment.create(
                source="portal", source_ref=f"qc-{i}", transaction_id=f"QC{i:06d}X", txn_norm=f"QC{i:06d}X",
                amount_minor=1000 + i, currency="UGX", received_at=now, status="confirmed", request=paid,
                confidence=100)
            PaymentSighting.create(payment=payment, source="mailbox", source_ref=f"qc-mail-{i}",
                                   amount_minor=1000 + i, currency="UGX", received_at=now, corroborates=True)
            waiting = PaymentRequest.create(
                reference=f"PW-QR{i:05d}", amount_minor=5000 + i, requested_minor=5000 + i, currency="UGX",
                customer_name=f"Waiting {i}", agent=agent, status="review", expires_at=now + timedelta(hours=1))
            doubtful = Payment.create(
                source="portal", source_ref=f"qr-{i}", amount_minor=5000 + i, currency="UGX", received_at=now,
                status="review", late=True, sender_name=f"PAYER {i}")
            PaymentSighting.create(payment=doubtful, source="mailbox", source_ref=f"qr-mail-{i}",
                                   amount_minor=5000 + i, currency="UGX", received_at=now)
            MatchCandidate.create(payment=doubtful, request=waiting, score=40, evidence=[])
            Payment.create(source="mailbox", source_ref=f"qu-{i}", amount_minor=700 + i, currency="UGX",
                           received_at=now, status="unmatched")
            Notification.create(kind="payment_confirmed_customer", phone=f"+2567700{i:05d}", body="Thanks",
                                request=paid, payment=payment, status="sent", dedupe_key=f"qc:{i}")
            audit.record("request.paid", f"request:{paid.reference}", actor=f"user:{i % 3 + 1}")


def counts(client, headers) -> dict[str, int]:
    found = {}
    for name, path in PAGES.items():
        with db.count_queries() as counted:
            response = client.get(path, headers=headers if path.startswith("/api/") else {})
        assert response.status_code == 200, (name, response.status_code)
        found[name] = counted[0]
    return found


@pytest.fixture
def api_headers(app, domain):
    return {"Authorization": f"Bearer {domain(lambda: apikeys.create('n+1 guard', 'staff')[1])}"}


def test_every_list_costs_the_same_statements_for_10_rows_and_for_60(client, domain, login_as, api_headers):
    login_as("staff")
    domain(add_rows, 10, 0)
    counts(client, api_headers)  # warm: first-use reads (settings, templates) are not the list's cost
    with_10 = counts(client, api_headers)
    domain(add_rows, 50, 10)
    with_60 = counts(client, api_headers)
    assert with_60 == with_10
    assert max(with_60.values()) <= CEILING, with_60


def test_the_lists_show_what_they_preloaded(client, domain, login_as, api_headers):
    """The preloaded relations are the right ones (not merely few queries)."""
    login_as("viewer")
    domain(add_rows, 3, 0)
    listing = client.get("/api/v1/requests?status=paid", headers=api_headers).get_json()["data"]
    first = next(r for r in listing if r["reference"] == "PW-QC00001")
    assert first["agent"] == "QC0000" and first["voucher"] == "V00001"
    assert [p["source_ref"] for p in first["payments"]] == ["qc-1"]
    assert first["payments"][0]["request"] == "PW-QC00001"
    assert [s["source_ref"] for s in first["payments"][0]["also_seen"]] == ["qc-mail-1"]
    pending = client.get("/api/v1/admin/pending-verifications", headers=api_headers).get_json()
    waiting = next(r for r in pending["data"] if r["reference"] == "PW-QR00002")
    assert [c["payment"]["source_ref"] for c in waiting["candidates"]] == ["qr-2"]
    assert waiting["candidates"][0]["payment"]["also_seen"][0]["source_ref"] == "qr-mail-2"
    assert {p["source_ref"] for p in pending["late_payments"]} == {"qr-0", "qr-1", "qr-2"}
    page = client.get("/payments/").get_data(as_text=True)
    assert 'href="/requests/PW-QC00002"' in page
