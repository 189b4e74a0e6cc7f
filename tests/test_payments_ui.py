"""The payments pages: live filtered list, detail with every signal and the raw evidence, staff record."""
import html
import re
from datetime import datetime, timezone

import pytest

from webapp.domain import ledger
from webapp.storage.models import Payment, PaymentStatus

UTC = timezone.utc


@pytest.fixture
def ingest(domain):
    def run(source_ref, amount_minor=5000, source="mailbox", received_at=None, **fields):
        return domain(ledger.ingest_payment, ledger.PaymentObservation(
            source=source, source_ref=source_ref, amount_minor=amount_minor, currency="UGX",
            received_at=received_at or datetime.now(UTC), **fields)).payment

    return run


def ids(response):
    return [int(i) for i in re.findall(r'<tr id="payment-(\d+)"', response.get_data(as_text=True))]


def payments(domain):
    return domain(lambda: list(Payment.select().order_by(Payment.id)))


def record_form(auth, **fields):
    return {"csrf_token": auth.csrf_token("/payments/new"), "amount": "5000", "currency": "UGX", **fields}


def flashes(page: str) -> str:
    return html.unescape(" ".join(re.findall(r'class="flash flash-\w+" role="status">([^<]*)<', page)))


# ---------------------------------------------------------------- record


def test_staff_record_a_payment_and_see_it_confirmed(client, auth, login_as, make_request, domain):
    staff = login_as("staff")
    owed = make_request(7000, customer_phone="+256772123456")
    response = client.post("/payments/", data=record_form(
        auth, amount="7000", sender_name="Grace", sender_phone="0772123456", evidence="You have received UGX 7,000"),
        follow_redirects=True)
    page = response.get_data(as_text=True)
    [payment] = payments(domain)
    assert response.status_code == 200 and response.request.path == f"/payments/{payment.id}"
    assert (payment.source, payment.status, payment.sender_phone) == ("manual", PaymentStatus.CONFIRMED, "+256772123456")
    assert payment.source_ref.startswith("manual-") and payment.request_id == owed.id
    assert f"recorded and confirmed: it pays {owed.reference}" in flashes(page)
    assert f'"recorded_by": "user:{staff.id}"' in payment.raw and "You have received UGX 7,000" in payment.raw
    assert "You have received UGX 7,000" in page  # the raw evidence, shown


def test_a_payment_nothing_matches_is_recorded_as_unmatched(client, auth, login_as, domain):
    login_as("staff")
    page = client.post("/payments/", data=record_form(auth, amount="999"), follow_redirects=True).get_data(as_text=True)
    [payment] = payments(domain)
    assert payment.status == PaymentStatus.UNMATCHED
    assert f"Payment {payment.id} of UGX 999 recorded; no request matched" in flashes(page)


def test_the_same_transaction_id_twice_records_one_payment(client, auth, login_as, domain):
    login_as("staff")
    data = record_form(auth, transaction_id="TX-778899")
    client.post("/payments/", data=data)
    page = client.post("/payments/", data=data, follow_redirects=True).get_data(as_text=True)
    [payment] = payments(domain)
    assert (payment.source_ref, payment.transaction_id) == ("TX-778899", "TX-778899")
    assert "was already recorded; nothing changed" in flashes(page)


def test_a_transaction_another_source_saw_is_recorded_on_that_payment_never_as_new_money(
        client, auth, login_as, ingest, domain):
    login_as("staff")
    seen = ingest("mail-1", transaction_id="TX-100200")
    response = client.post("/payments/", data=record_form(auth, transaction_id="tx100200"), follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == f"/payments/{seen.id}"
    assert f"That money is already payment {seen.id} (seen at mailbox" in flashes(page)
    assert len(payments(domain)) == 1
    assert 'id="sightings"' in page and "manual" in page  # "Also seen in" the staff's entry


def test_the_received_time_is_read_in_the_configured_zone(client, auth, login_as, domain):
    login_as("staff")
    client.post("/payments/", data=record_form(auth, received_at="2024-03-01T10:00"))
    [payment] = payments(domain)
    assert payment.received_at == datetime(2024, 3, 1, 7, 0, tzinfo=UTC)  # Kampala is UTC+3


@pytest.mark.parametrize("fields, message", [
    ({"amount": "five"}, "is not a number"),
    ({"amount": ""}, "Enter the amount"),
    ({"sender_phone": "777"}, "not a valid number"),
    ({"received_at": "2999-01-01T10:00"}, "in the future"),
    ({"received_at": "yesterday"}, "Not a valid datetime"),
])
def test_a_bad_record_form_says_why_and_records_nothing(client, auth, login_as, domain, fields, message):
    login_as("staff")
    response = client.post("/payments/", data=record_form(auth, **fields))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert payments(domain) == []


def test_viewers_cannot_record_payments(client, auth, login_as, domain):
    login_as("viewer")
    assert client.get("/payments/new").status_code == 403
    assert client.post("/payments/", data={"csrf_token": auth.csrf_token("/payments/"), "amount": "1"}).status_code == 403
    assert payments(domain) == []


# ---------------------------------------------------------------- detail


def test_the_detail_shows_each_evidence_signal_and_the_raw_evidence(client, login_as, make_request, ingest):
    login_as("viewer")
    owed = make_request(6000, customer_name="Grace Nakato", customer_phone="+256772123456")
    payment = ingest("mail-2", 6000, sender_name="GRACE NAKATO", sender_phone="+256772123456",
                     note=f"pay {owed.reference}", raw="From: provider\n\nReceived UGX 6,000 <b>now</b>")
    assert payment.status == PaymentStatus.CONFIRMED
    page = client.get(f"/payments/{payment.id}").get_data(as_text=True)
    section = page.split('id="payment-evidence"')[1].split("</section>")[0]
    signals = re.findall(r'data-signal="(\w+)"', section)
    assert {"reference", "phone", "name", "amount_unique"} <= set(signals)
    assert len(signals) == len(payment.evidence)
    raw = re.search(r'<pre id="raw-evidence">(.*?)</pre>', page, re.S).group(1)
    assert html.unescape(raw) == "From: provider\n\nReceived UGX 6,000 <b>now</b>"
    assert f'href="/requests/{owed.reference}"' in page
    assert 'data-action="payment.confirmed"' in page


def test_the_detail_of_a_payment_in_review_shows_every_candidate(client, login_as, make_request, ingest):
    login_as("viewer")
    first, second = make_request(8000), make_request(8000)
    payment = ingest("mail-3", 8000)
    assert payment.status == PaymentStatus.REVIEW
    page = client.get(f"/payments/{payment.id}").get_data(as_text=True)
    assert f'id="candidate-{first.reference}"' in page and f'id="candidate-{second.reference}"' in page
    assert 'href="/review"' in page


def test_an_unreadable_payment_shows_as_unreadable(client, login_as, domain):
    login_as("viewer")
    result = domain(ledger.ingest_payment, ledger.PaymentObservation(
        source="mailbox", source_ref="mail-x", amount_minor=None, currency=None,
        received_at=datetime.now(UTC), raw="garbled"))
    page = client.get(f"/payments/{result.payment.id}").get_data(as_text=True)
    assert 'id="payment-amount">unreadable<' in page and "garbled" in page
    assert "unreadable" in client.get("/payments/").get_data(as_text=True)


def test_an_unknown_payment_is_404(client, login_as):
    login_as("viewer")
    assert client.get("/payments/999999").status_code == 404


# ---------------------------------------------------------------- list


def test_the_list_filters_by_status_source_amount_and_text(client, login_as, make_request, ingest):
    login_as("viewer")
    make_request(4000, customer_phone="+256772123456")
    confirmed = ingest("mail-4", 4000, sender_phone="+256772123456", sender_name="Grace")
    unmatched = ingest("row-5", 9000, source="portal", sender_name="John Okello", note="rent", transaction_id="QX12")
    assert confirmed.status == "confirmed" and unmatched.status == "unmatched"
    assert ids(client.get("/payments/?status=unmatched")) == [unmatched.id]
    assert ids(client.get("/payments/?source=mailbox")) == [confirmed.id]
    assert ids(client.get("/payments/?amount=4000")) == [confirmed.id]
    assert ids(client.get("/payments/?min=5000")) == [unmatched.id]
    assert ids(client.get("/payments/?q=okello")) == [unmatched.id]
    assert ids(client.get("/payments/?q=qx12")) == [unmatched.id]
    assert ids(client.get("/payments/?q=0772123456")) == [confirmed.id]


def test_the_list_filters_by_received_date_in_the_configured_zone(client, login_as, ingest):
    login_as("viewer")
    night = ingest("a", received_at=datetime(2024, 5, 1, 21, 30, tzinfo=UTC))  # 00:30 on the 2nd, Kampala
    day = ingest("b", received_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    assert ids(client.get("/payments/?from=2024-05-02")) == [night.id]
    assert ids(client.get("/payments/?from=2024-05-01&to=2024-05-01")) == [day.id]


def test_the_payment_list_pages_by_keyset_and_answers_htmx_with_the_table(client, login_as, ingest):
    login_as("viewer")
    made = [ingest(f"r-{i}", 100 + i).id for i in range(3)]
    first = client.get("/payments/?size=2")
    assert ids(first) == [made[2], made[1]]
    older = re.search(r'href="([^"]*after=[^"]*)"[^>]*>Older', first.get_data(as_text=True)).group(1)
    assert ids(client.get(html.unescape(older))) == [made[0]]
    partial = client.get("/payments/?status=unmatched", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="payments-table"' in body and 'hx-trigger="every 5s"' in body
    assert "HX-Request" in partial.headers["Vary"]
    bad = client.get("/payments/?status=lost")
    assert bad.status_code == 400 and "Choose one of unmatched" in bad.get_data(as_text=True)
