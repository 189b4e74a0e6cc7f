"""Linking payments by hand: suggested requests, the search, one-click Link, rejected payments re-linked."""
from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from webapp.domain import ledger, suggestions
from webapp.storage.models import Event, Payment, PaymentRequest, utcnow

HTMX = {"HX-Request": "true"}
PHONE = "+256712345678"


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _request(amount: int, reference: str, name: str = "", phone: str | None = None, *, now=None,
             expires_in=None, allow_partial=False):
    return ledger.create_request(ledger.NewRequest(
        amount, "UGX", customer_name=name, customer_phone=phone, reference=reference, source="ui",
        expires_in=expires_in, allow_partial=allow_partial), actor="test", now=now)


def _unmatched(amount: int | None = 9000, sender: str = "Carol Nambi", phone: str | None = PHONE, ref: str = "row-1"):
    # An hour before the requests below: too early for matching to pair them by itself.
    payment = ledger.ingest_payment(ledger.PaymentObservation(
        "portal", ref, amount, "UGX" if amount else None, utcnow() - timedelta(hours=1), sender_name=sender,
        sender_phone=phone, parsed=amount is not None)).payment
    assert payment.status == "unmatched"
    return payment


@pytest.fixture
def lonely(domain):
    """An unmatched UGX 9,000 from Carol Nambi (+256712345678) and requests that share something, or nothing."""

    def build():
        payment = _unmatched()
        _request(9000, "PW-BOTH", "Carol Nambi")  # same amount and same name
        _request(9000, "PW-EXACT", "Dan Opio")  # same amount
        _request(12000, "PW-PHONE", "Mama Carol's shop", PHONE)  # same phone (the name shares a word)
        _request(3000, "PW-NAME", "Nambi Carol")  # the same name, another amount
        _request(9500, "PW-NEAR", "Eve Nakato")  # 500 more than paid: near
        _request(20000, "PW-FAR", "Frank Okot")  # nothing in common
        _request(9000, "PW-OLD", "Gina", now=utcnow() - timedelta(days=40))  # outside the window
        gone = _request(9000, "PW-GONE", "Carol Nambi")
        ledger.cancel_request(gone.reference, actor="test")  # ended: nothing to pay
        return payment

    return domain(build)


def test_suggestions_rank_what_the_ledger_would_link_first_and_say_why(domain, lonely):
    found = domain(suggestions.suggest, lonely)
    assert [s.request.reference for s in found] == ["PW-BOTH", "PW-EXACT", "PW-PHONE", "PW-NAME", "PW-NEAR"]
    by_ref = {s.request.reference: s for s in found}
    assert by_ref["PW-BOTH"].reasons == ["same amount", "same name (Carol Nambi)"]
    assert by_ref["PW-PHONE"].reasons[0] == f"same phone {PHONE}"
    assert by_ref["PW-NEAR"].reasons == ["near amount: UGX 500 less than asked"]
    assert [s.linkable for s in found] == [True, True, False, False, False]
    assert "the ledger links the exact amount only" in by_ref["PW-NAME"].why_not


def test_an_installment_request_is_linkable_for_part_of_its_balance_and_an_expired_one_recently(domain):
    def build():
        payment = _unmatched(4000, "Hope Auma", None)
        _request(10000, "PW-FEES", "Hope Auma", allow_partial=True)
        late = _request(4000, "PW-LATE", "Ivan", now=utcnow() - timedelta(days=3), expires_in=timedelta(hours=1))
        ledger.expire_due(now=utcnow())
        assert PaymentRequest.get_by_id(late.id).status == "expired"
        return suggestions.suggest(payment)

    found = {s.request.reference: s for s in domain(build)}
    assert found["PW-FEES"].linkable and "installment" in found["PW-FEES"].reasons[0]
    assert found["PW-LATE"].linkable and found["PW-LATE"].reasons == ["same amount"]


def test_the_queue_offers_the_suggestions_with_a_one_click_link(client, auth, login_as, domain, lonely):
    login_as("staff")
    page = _soup(client.get("/review/"))
    item = page.find(id=f"review-item-{lonely.id}")
    rows = item.select(".suggestions li.suggestion")
    assert [li["data-reference"] for li in rows] == ["PW-BOTH", "PW-EXACT", "PW-PHONE", "PW-NAME", "PW-NEAR"]
    assert [bool(li.select_one("form.link-one")) for li in rows] == [True, True, False, False, False]
    assert "Cannot be linked" in rows[2].get_text()
    form = rows[0].select_one("form.link-one")
    assert form["hx-target"] == "#review-queue"
    data = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
    assert data["reference"] == "PW-BOTH" and data["csrf_token"]

    answer = client.post(form["action"], data=data, headers=HTMX)  # the click
    assert answer.status_code == 200
    queue = _soup(answer)
    assert not queue.find(id=f"review-item-{lonely.id}") and "PW-BOTH is paid" in queue.find(id="flashes").get_text()
    assert domain(lambda: (Payment.get_by_id(lonely.id).status, Payment.get_by_id(lonely.id).request.reference)) == (
        "confirmed", "PW-BOTH")
    event = domain(lambda: Event.get(Event.action == "payment.confirmed", Event.subject == f"payment:{lonely.id}"))
    assert event.details["how"] == "linked"


def test_the_search_finds_requests_by_reference_phone_or_name(client, login_as, domain, lonely):
    login_as("viewer")

    def search(text: str, **extra):
        response = client.get(f"/review/payments/{lonely.id}/search", query_string={"q": text, **extra}, headers=HTMX)
        assert response.status_code == 200
        return _soup(response)

    assert [li["data-reference"] for li in search("pw far").select("li.suggestion")] == ["PW-FAR"]
    assert [li["data-reference"] for li in search(PHONE).select("li.suggestion")] == ["PW-PHONE"]
    by_name = [li["data-reference"] for li in search("nambi").select("li.suggestion")]
    assert by_name[0] == "PW-BOTH" and set(by_name) == {"PW-BOTH", "PW-NAME", "PW-GONE"}
    gone = search("nambi").select_one("li.suggestion[data-reference=PW-GONE]")
    assert "PW-GONE is cancelled" in gone.get_text()
    assert "No request found for “zzz-nobody”" in search("zzz-nobody").get_text()
    assert not search("pw far").select("form"), "viewers get no Link button"
    assert client.get("/review/payments/999999/search?q=pw", headers=HTMX).status_code == 404


def test_the_search_answers_link_buttons_for_the_page_it_serves(client, login_as, lonely):
    login_as("staff")
    queue = _soup(client.get(f"/review/payments/{lonely.id}/search?q=PW-EXACT", headers=HTMX)).select_one("form.link-one")
    assert queue["action"] == f"/review/payments/{lonely.id}/link" and queue["hx-post"]
    page = _soup(client.get(f"/review/payments/{lonely.id}/search?q=PW-EXACT&on=payment", headers=HTMX))
    form = page.select_one("form.link-one")
    assert form["action"] == f"/payments/{lonely.id}/link" and not form.has_attr("hx-post")


@pytest.fixture
def rejected(domain):
    """A payment staff rejected for both its candidates: it left the review queue."""

    def build():
        _request(5000, "PW-ALICE1", "Alice Akello")
        _request(5000, "PW-BRIAN2", "Brian Okello")
        payment = ledger.ingest_payment(ledger.PaymentObservation(
            "portal", "row-5", 5000, "UGX", utcnow(), sender_name="Joseph Mukasa")).payment
        assert payment.status == "review"
        for reference in ("PW-ALICE1", "PW-BRIAN2"):
            ledger.reject(payment.id, reference, "not hers", actor="test")
        assert Payment.get_by_id(payment.id).status == "rejected"
        return payment

    return domain(build)


def test_a_rejected_payment_is_findable_and_relinked_from_its_page(client, auth, login_as, domain, rejected):
    login_as("staff")
    review = _soup(client.get("/review/"))
    assert not review.find(id=f"review-item-{rejected.id}")
    link = review.find(id="rejected-link")
    assert link.get_text() == "1 rejected payment" and link["href"] == "/payments/?status=rejected"
    listed = _soup(client.get(link["href"]))
    assert [tr["id"] for tr in listed.select("#payments-table tbody tr[id]")] == [f"payment-{rejected.id}"]

    page = _soup(client.get(f"/payments/{rejected.id}"))
    section = page.find(id="payment-linking")
    assert "Staff rejected this payment (not hers)" in section.get_text()
    assert not section.select("li.suggestion"), "pairs staff rejected are never suggested"
    domain(_request, 5000, "PW-CAROL3", "Carol Nambi")
    page = _soup(client.get(f"/payments/{rejected.id}"))
    assert [li["data-reference"] for li in page.select("#payment-linking li.suggestion")] == ["PW-CAROL3"]
    token = page.select_one("#payment-linking .link-form input[name=csrf_token]")["value"]

    refused = client.post(f"/payments/{rejected.id}/link", data={"reference": "PW-NOPE99", "csrf_token": token})
    assert refused.status_code == 404
    form = _soup(refused).select_one("#payment-linking")
    assert form.select_one(".link-form input[name=reference]")["value"] == "PW-NOPE99"
    assert form.select_one(".card-error").get_text() == "No request with reference PW-NOPE99."

    done = client.post(f"/payments/{rejected.id}/link", data={"reference": "PW-BRIAN2", "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/payments/{rejected.id}")
    after = _soup(client.get(f"/payments/{rejected.id}"))
    assert after.find(id="payment-status").get_text() == "confirmed" and not after.find(id="payment-linking")
    assert "PW-BRIAN2 is paid" in after.find(id="flashes").get_text()
    assert domain(lambda: PaymentRequest.get(PaymentRequest.reference == "PW-BRIAN2").status) == "paid"
    event = domain(lambda: Event.get(Event.action == "payment.confirmed", Event.subject == f"payment:{rejected.id}"))
    assert (event.details["how"], event.details["request"], event.actor.startswith("user:")) == (
        "linked after rejection", "PW-BRIAN2", True)


def test_linking_needs_staff_and_a_csrf_token(client, auth, login_as, domain, rejected, lonely):
    domain(_request, 5000, "PW-CAROL3", "Carol Nambi")
    login_as("viewer")
    page = _soup(client.get(f"/payments/{rejected.id}"))
    assert page.find(id="payment-linking") and not page.select("#payment-linking form[method=post]")
    token = auth.csrf_token("/review/")
    for url in (f"/payments/{rejected.id}/link", f"/review/payments/{lonely.id}/link"):
        assert client.post(url, data={"reference": "PW-CAROL3", "csrf_token": token}).status_code == 403, url
    client.post("/logout", data={"csrf_token": token})
    login_as("staff")
    for url in (f"/payments/{rejected.id}/link", f"/review/payments/{lonely.id}/link"):
        assert client.post(url, data={"reference": "PW-CAROL3"}).status_code == 400, url  # no CSRF token
    assert domain(lambda: sorted(p.status for p in Payment.select())) == ["rejected", "unmatched"]
    assert domain(lambda: PaymentRequest.get(PaymentRequest.reference == "PW-CAROL3").status) == "pending"


def test_past_the_first_unmatched_items_the_suggestions_load_on_a_click(client, login_as, domain):
    from webapp.web.review import SUGGEST_INLINE

    def build():
        payments = [_unmatched(100 + i, "Carol Nambi", None, ref=f"row-{i}") for i in range(SUGGEST_INLINE + 1)]
        _request(100 + SUGGEST_INLINE, "PW-LAST", "Carol Nambi")
        return payments

    payments = domain(build)
    login_as("staff")
    page = _soup(client.get("/review/"))
    first, last = (page.find(id=f"review-item-{p.id}") for p in (payments[0], payments[-1]))
    assert first.select_one("ul.suggestions") and not first.select_one(".suggestions-later")
    button = last.select_one(".suggestions-later button")
    assert not last.select_one("ul.suggestions") and button["hx-get"] == f"/review/payments/{payments[-1].id}/search"
    loaded = _soup(client.get(button["hx-get"], headers=HTMX))
    assert [li["data-reference"] for li in loaded.select("li.suggestion")][0] == "PW-LAST"
    assert loaded.select_one("li.suggestion form.link-one")
