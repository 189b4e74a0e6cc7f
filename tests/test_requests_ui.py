"""The requests pages: live filtered list, create, detail with its timeline, cancel."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain import ledger, options
from webapp.storage.models import Agent, Event, PaymentRequest, RequestStatus

UTC = timezone.utc


@pytest.fixture
def agent(domain):
    return domain(Agent.create, name="Amina", phone="+256700000001", code="AG7")


def references(response):
    return re.findall(r'<tr id="request-([A-Za-z0-9_-]+)"', response.get_data(as_text=True))


def count_requests(domain):
    return domain(lambda: PaymentRequest.select().count())


# ---------------------------------------------------------------- list


def test_the_list_filters_by_status(client, login_as, make_request, domain):
    login_as("viewer")
    open_one, cancelled = make_request(), make_request(6000)
    domain(ledger.cancel_request, cancelled.reference, actor="test")
    assert references(client.get("/requests/?status=cancelled")) == [cancelled.reference]
    assert references(client.get("/requests/?status=pending")) == [open_one.reference]
    assert set(references(client.get("/requests/"))) == {open_one.reference, cancelled.reference}


def test_the_list_filters_by_agent_code(client, login_as, make_request, agent):
    login_as("viewer")
    theirs, _other = make_request(agent_id=agent.id), make_request(6000)
    assert references(client.get("/requests/?agent=AG7")) == [theirs.reference]


def test_an_unknown_agent_code_in_the_filters_is_a_clear_error(client, login_as, make_request):
    login_as("viewer")
    make_request()
    response = client.get("/requests/?agent=NOPE")
    assert response.status_code == 400
    assert "No agent has code &#39;NOPE&#39;" in response.get_data(as_text=True)
    assert references(response) == []


def test_the_list_filters_by_a_date_range_read_in_the_configured_zone(client, login_as, make_request):
    login_as("viewer")
    # 22:30 UTC on the 10th is 01:30 on the 11th in Kampala (UTC+3).
    late_evening = make_request(now=datetime(2024, 1, 10, 22, 30, tzinfo=UTC))
    earlier = make_request(6000, now=datetime(2024, 1, 10, 12, 0, tzinfo=UTC))
    assert references(client.get("/requests/?from=2024-01-11&to=2024-01-11")) == [late_evening.reference]
    assert references(client.get("/requests/?to=2024-01-10")) == [earlier.reference]
    assert set(references(client.get("/requests/?from=2024-01-10"))) == {late_evening.reference, earlier.reference}


def test_a_backwards_date_range_is_refused(client, login_as):
    login_as("viewer")
    response = client.get("/requests/?from=2024-01-11&to=2024-01-10")
    assert response.status_code == 400 and "before" in response.get_data(as_text=True)


def test_the_list_filters_by_exact_and_bounded_amounts(client, login_as, make_request):
    login_as("viewer")
    small, middle, large = make_request(1000), make_request(5000), make_request(9000)
    assert references(client.get("/requests/?amount=5000")) == [middle.reference]
    assert set(references(client.get("/requests/?min=4000"))) == {middle.reference, large.reference}
    assert references(client.get("/requests/?min=2000&max=6000")) == [middle.reference]
    assert references(client.get("/requests/?max=1000")) == [small.reference]


def test_a_bad_amount_filter_is_a_clear_error(client, login_as, make_request):
    login_as("viewer")
    make_request()
    response = client.get("/requests/?amount=12abc")
    assert response.status_code == 400
    assert "is not a number (digits, with a point before the decimals" in response.get_data(as_text=True)


def test_the_amount_filter_reads_decimals_in_the_chosen_currency(client, login_as, make_request):
    login_as("viewer")
    usd = make_request(1250, currency="USD")
    make_request(1250)  # UGX 1,250: same minor units, other currency
    assert references(client.get("/requests/?amount=12.50&currency=usd")) == [usd.reference]


def test_the_text_search_finds_a_customer_by_name_or_phone(client, login_as, make_request):
    login_as("viewer")
    found = make_request(customer_name="Grace Nakato", customer_phone="+256772123456")
    make_request(6000, customer_name="John Okello", customer_phone="+256701999888")
    for query in ("Nakato", "nakato", "0772 123456", "+256772123456", "772123"):
        assert references(client.get("/requests/", query_string={"q": query})) == [found.reference], query


def test_the_text_search_finds_a_reference_case_insensitively(client, login_as, make_request):
    login_as("viewer")
    found = make_request(reference="SHOP-42_x")
    make_request(6000, reference="SHOP-43")
    assert references(client.get("/requests/?q=shop-42_")) == [found.reference]
    # LIKE wildcards are taken literally.
    assert references(client.get("/requests/?q=%25")) == []


def test_keyset_pagination_gives_the_next_page_without_duplicates(client, login_as, make_request):
    login_as("viewer")
    made = [make_request(1000 + i).reference for i in range(5)]
    seen, url = [], "/requests/?size=2&min=1000"
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += references_in(page)
        older = re.search(r'href="([^"]*after=[^"]*)"[^>]*>Older', page)
        url = older.group(1).replace("&amp;", "&") if older else None
        assert url is None or "min=1000" in url  # the filters travel with the page
    assert seen == list(reversed(made))


def references_in(page: str):
    return re.findall(r'<tr id="request-([A-Za-z0-9_-]+)"', page)


def test_an_htmx_request_gets_the_live_table_alone(client, login_as, make_request):
    login_as("viewer")
    made = make_request()
    response = client.get("/requests/?status=pending", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in body
    assert 'id="requests-table"' in body and made.reference in body
    assert 'hx-trigger="every 5s"' in body and 'hx-get="/requests/?status=pending"' in body
    full = client.get("/requests/")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]


def test_an_htmx_request_with_a_bad_filter_still_shows_the_error(client, login_as):
    login_as("viewer")
    response = client.get("/requests/?status=bogus", headers={"HX-Request": "true"})
    assert response.status_code == 200  # htmx swaps only 2xx
    assert "Choose one of pending" in response.get_data(as_text=True)


# ---------------------------------------------------------------- detail


def test_the_detail_shows_the_exact_amount_and_the_requested_one_when_moved(client, login_as, make_request, domain):
    login_as("viewer")
    domain(options.update, {"unique_amounts": True}, actor="test")
    make_request(5000)
    moved = make_request(5000)
    page = client.get(f"/requests/{moved.reference}").get_data(as_text=True)
    assert moved.amount_minor == 5001
    assert re.search(r'id="exact-amount">UGX 5,001<', page)
    assert "Requested UGX 5,000" in page


def test_the_detail_timeline_lists_the_events_of_the_request_and_its_payments(client, login_as, make_request, domain):
    user = login_as("viewer")
    made = make_request(7000, customer_phone="+256772123456")
    result = domain(ledger.ingest_payment, ledger.PaymentObservation(
        source="manual", source_ref="t-1", amount_minor=7000, currency="UGX", received_at=datetime.now(UTC),
        sender_phone="+256772123456", note=f"for {made.reference}"))
    assert result.payment.status == "confirmed"
    page = client.get(f"/requests/{made.reference}").get_data(as_text=True)
    actions = re.findall(r'data-action="([a-z_.]+)"', page)
    assert actions[-1] == "request.created"
    assert {"request.created", "payment.received", "payment.confirmed", "request.paid"} <= set(actions)
    assert f'href="/payments/{result.payment.id}"' in page
    assert 'id="request-status-badge">paid<' in page
    assert "hx-trigger" not in page.split('id="request-status"')[1].split(">")[0]  # ended: no more polling
    assert user.email  # the viewer could read it


def test_the_detail_lists_candidate_payments_in_review_with_a_link_to_the_queue(client, login_as, make_request, domain):
    login_as("viewer")
    first, second = make_request(8000), make_request(8000)
    result = domain(ledger.ingest_payment, ledger.PaymentObservation(
        source="manual", source_ref="t-2", amount_minor=8000, currency="UGX", received_at=datetime.now(UTC)))
    assert result.payment.status == "review"
    page = client.get(f"/requests/{first.reference}").get_data(as_text=True)
    assert f'id="candidate-{result.payment.id}"' in page and 'href="/review"' in page
    assert second.reference != first.reference


def test_an_unknown_reference_is_404(client, login_as):
    login_as("viewer")
    assert client.get("/requests/PW-NOPE99").status_code == 404


# ---------------------------------------------------------------- create


def form(auth, **fields):
    return {"csrf_token": auth.csrf_token("/requests/new"), "amount": "5000", "currency": "UGX", **fields}


def test_staff_create_a_request_and_are_told_the_exact_amount(client, auth, login_as, agent, domain):
    staff = login_as("staff")
    response = client.post("/requests/", data=form(
        auth, amount="12000", customer_name="Grace", customer_phone="0772 123456", agent="AG7",
        expires_in_minutes="30"), follow_redirects=True)
    assert response.status_code == 200
    made = domain(PaymentRequest.get)
    assert (made.amount_minor, made.customer_phone, made.agent_id, made.source) == (12000, "+256772123456", agent.id, "ui")
    assert made.expires_at - made.created_at == timedelta(minutes=30)
    assert f"Request {made.reference} created: the customer pays exactly UGX 12,000." in response.get_data(as_text=True)
    event = domain(Event.get, Event.subject == f"request:{made.reference}")
    assert event.actor == f"user:{staff.id}"


def test_the_create_flash_names_the_moved_amount(client, auth, login_as, make_request, domain):
    login_as("staff")
    domain(options.update, {"unique_amounts": True}, actor="test")
    make_request(5000)
    page = client.post("/requests/", data=form(auth), follow_redirects=True).get_data(as_text=True)
    assert "pays exactly UGX 5,001 (asked UGX 5,000" in page


BAD_CREATE_FORMS = [
    ({"amount": "50o0"}, "amount", "is not a number"),
    ({"amount": ""}, "amount", "Enter the amount"),
    ({"amount": "0"}, "amount", "more than zero"),
    ({"amount": "10.5"}, "amount", "more decimals than UGX allows"),
    ({"customer_phone": "12345"}, "customer_phone", "not a valid number"),
    ({"agent": "GHOST"}, "agent", "No agent has code &#39;GHOST&#39;"),
    ({"currency": "shillings"}, "currency", "three-letter ISO code"),
    ({"reference": "a b"}, "reference", "letters, digits"),
    ({"expires_in_minutes": "0"}, "expires_in_minutes", "Between 1 minute and 90 days"),
]


def test_a_bad_create_form_says_why_and_creates_nothing(client, auth, login_as, domain):
    login_as("staff")
    for fields, field, message in BAD_CREATE_FORMS:
        response = client.post("/requests/", data=form(auth, **fields))
        assert response.status_code == 400, fields
        page = response.get_data(as_text=True)
        error = re.search(rf'name="{field}"[^>]*>\s*<small class="error">([^<]*)<', page)
        assert error and message in error.group(1), (fields, error and error.group(1))
    assert count_requests(domain) == 0


def test_a_taken_reference_is_refused_with_409(client, auth, login_as, make_request, domain):
    login_as("staff")
    make_request(reference="SHOP-1")
    response = client.post("/requests/", data=form(auth, reference="SHOP-1"))
    assert response.status_code == 409 and "already used" in response.get_data(as_text=True)
    assert count_requests(domain) == 1


def test_no_unique_amount_left_is_shown_on_the_form(client, auth, login_as, make_request, domain):
    login_as("staff")
    domain(options.update, {"unique_amounts": True, "unique_amount_max_steps": 1}, actor="test")
    make_request(5000), make_request(5000)
    response = client.post("/requests/", data=form(auth))
    assert response.status_code == 409 and 'id="form-error"' in response.get_data(as_text=True)
    assert count_requests(domain) == 2


# ---------------------------------------------------------------- cancel and access


def test_staff_cancel_a_pending_request_and_a_second_cancel_says_why_not(client, auth, login_as, make_request, domain):
    staff = login_as("staff")
    made = make_request()
    token = auth.csrf_token(f"/requests/{made.reference}")
    response = client.post(f"/requests/{made.reference}/cancel", data={"csrf_token": token, "reason": "duplicate"},
                           follow_redirects=True)
    assert response.status_code == 200 and f"Request {made.reference} cancelled." in response.get_data(as_text=True)
    assert domain(PaymentRequest.get_by_id, made.id).status == RequestStatus.CANCELLED
    event = domain(Event.get, Event.action == "request.cancelled")
    assert event.actor == f"user:{staff.id}" and event.details == {"reason": "duplicate"}
    again = client.post(f"/requests/{made.reference}/cancel", data={"csrf_token": token})
    assert again.status_code == 409
    assert "only a pending request can be cancelled" in again.get_data(as_text=True)
    assert 'id="cancel-form"' not in again.get_data(as_text=True)


def test_viewers_cannot_create_or_cancel(client, auth, login_as, make_request, domain):
    login_as("viewer")
    made = make_request()
    token = auth.csrf_token("/requests/")
    assert client.get("/requests/new").status_code == 403
    assert client.post("/requests/", data={"csrf_token": token, "amount": "5000"}).status_code == 403
    assert client.post(f"/requests/{made.reference}/cancel", data={"csrf_token": token}).status_code == 403
    assert count_requests(domain) == 1 and domain(PaymentRequest.get_by_id, made.id).status == "pending"
    page = client.get(f"/requests/{made.reference}").get_data(as_text=True)
    assert 'id="cancel-form"' not in page and 'id="new-request"' not in client.get("/requests/").get_data(as_text=True)
