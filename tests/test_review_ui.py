"""The review queue: what staff see for each payment, and confirm / reject / link through it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from webapp.domain import ledger
from webapp.storage.models import MatchCandidate, Notification, Payment, PaymentRequest, RejectedPair, utcnow

HTMX = {"HX-Request": "true"}


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _request(amount: int, name: str, reference: str, source: str = "ui"):
    return ledger.create_request(ledger.NewRequest(amount, "UGX", customer_name=name, reference=reference, source=source))


def _payment(ref: str, amount: int | None, sender: str = "", *, raw: str = "", note: str = "",
             at=None, phone: str | None = "+256712345678") -> Payment:
    observation = ledger.PaymentObservation(
        "portal", ref, amount, "UGX" if amount else None, at or utcnow(), sender_name=sender,
        sender_phone=phone,
        note=note, raw=raw, parsed=amount is not None,
    )
    return ledger.ingest_payment(observation).payment


@pytest.fixture
def in_review(domain):
    """Two open UGX 5,000 requests; a payment from Alice's source (15 points): review, Alice first."""

    def build():
        _request(5000, "Alice Akello", "PW-ALICE1", source="portal")
        _request(5000, "Brian Okello", "PW-BRIAN2")
        return _payment("row-1", 5000, "Joseph Mukasa", note="school fees")

    payment = domain(build)
    assert payment.status == "review"
    return payment


@pytest.fixture
def unmatched(domain):
    def build():
        # Received an hour before the requests the tests create: too early to be matched to
        # them by itself (a request looks back only as far as the clock skew), so staff link it.
        early = utcnow() - timedelta(hours=1)
        return (_payment("row-2", 9000, "Carol Nambi", at=early),
                _payment("row-3", None, raw="Yuo hav recieved ??? frm 07...", at=early))

    payment, unreadable = domain(build)
    assert (payment.status, unreadable.status, unreadable.parsed) == ("unmatched", "unmatched", False)
    return payment, unreadable


def _status(domain, reference: str) -> str:
    return domain(lambda: PaymentRequest.get(PaymentRequest.reference == reference).status)


def _payment_now(domain, payment_id: int) -> Payment:
    return domain(Payment.get_by_id, payment_id)


def _shown(node) -> list[tuple[str, int, str]]:
    return [(li.select_one(".signal-name").get_text(), int(li.select_one(".points").get_text()),
             li.select_one(".detail").get_text()) for li in node.select(".signal")]


def test_a_card_shows_the_decisive_signal_and_what_scored_and_hides_the_zeros(client, login_as, domain, in_review):
    login_as("viewer")
    page = _soup(client.get("/review/"))
    item = page.find(id=f"review-item-{in_review.id}")
    assert "UGX 5,000" in item.get_text() and "Joseph Mukasa" in item.get_text() and "school fees" in item.get_text()
    cards = item.select(".evidence-card")
    assert [c["data-reference"] for c in cards] == ["PW-ALICE1", "PW-BRIAN2"]  # best score first
    rows = domain(lambda: {c.request.reference: c for c in MatchCandidate.select().where(MatchCandidate.payment == in_review.id)})
    assert not page.select(".evidence-card table"), "no table of signals"
    for card in cards:
        candidate = rows[card["data-reference"]]
        scored = sorted((e for e in candidate.evidence if e["points"]), key=lambda e: -e["points"])
        zeros = [(e["signal"], 0, e["detail"]) for e in candidate.evidence if not e["points"]]
        # Every signal is shown once: the scored ones on the card, the zeros only inside "why not".
        assert _shown(card.select_one("details.why-not")) == zeros
        outside = [s for s in _shown(card) if s not in zeros]
        assert outside == [(e["signal"], e["points"], e["detail"]) for e in scored]
        assert card.select_one(".total").get_text() == str(candidate.score)
    alice, brian = cards
    assert (alice.select_one(".decisive")["data-signal"], alice.select_one(".decisive .points").get_text()) == ("source", "+15")
    assert "No signal scored" in brian.select_one(".decisive").get_text()
    assert not item.select("form[method=post]"), "viewers see no actions"


def test_the_decisive_signal_is_the_one_that_scored_most_and_the_others_follow(client, login_as, domain):
    def build():
        _request(5000, "Joseph Mukasa", "PW-JOE1", source="portal")  # name 35 + source 15
        _request(5000, "Joseph Mukasa", "PW-JOE2")  # name 35: too close to confirm either
        return _payment("row-7", 5000, "Joseph Mukasa")

    payment = domain(build)
    assert payment.status == "review"
    login_as("viewer")
    card = _soup(client.get("/review/")).select(f"#review-item-{payment.id} .evidence-card")[0]
    assert card["data-reference"] == "PW-JOE1"
    decisive = card.select_one(".decisive")
    assert decisive["data-signal"] == "name" and decisive.select_one(".points").get_text() == "+35"
    assert [(li["data-signal"], li.select_one(".points").get_text()) for li in card.select(".scored-signals li")] == [
        ("source", "+15")]
    assert "Why not more: 7 signals scored 0" in card.select_one("details.why-not summary").get_text()


def test_unmatched_and_unreadable_payments_are_in_the_queue_oldest_first(client, login_as, in_review, unmatched):
    login_as("staff")
    page = _soup(client.get("/review/"))
    payment, unreadable = unmatched
    ids = [int(a["data-payment"]) for a in page.select("#review-queue .review-item")]
    assert ids == [payment.id, unreadable.id, in_review.id]  # received an hour earlier (see `unmatched`)
    plain = page.find(id=f"review-item-{payment.id}")
    assert plain["data-kind"] == "unmatched" and "UGX 9,000" in plain.get_text()
    assert "no open request for UGX 9,000" in plain.select_one(".reason").get_text()
    assert plain.select_one(".link-form input[name=reference]")
    garbled = page.find(id=f"review-item-{unreadable.id}")
    assert garbled["data-kind"] == "unreadable" and "amount unreadable" in garbled.get_text()
    assert garbled.select_one("pre.raw").get_text() == "Yuo hav recieved ??? frm 07..."


def test_staff_confirm_a_candidate_the_request_is_paid_and_the_item_leaves(client, auth, login_as, domain, in_review):
    user = login_as("staff")
    token = auth.csrf_token("/review/")
    response = client.post(f"/review/payments/{in_review.id}/confirm", data={"reference": "PW-ALICE1", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/review/")
    payment = _payment_now(domain, in_review.id)
    assert (payment.status, payment.verified_by_id) == ("confirmed", user.id)
    assert _status(domain, "PW-ALICE1") == "paid"
    assert _status(domain, "PW-BRIAN2") == "pending"  # no payment in review names it any more
    page = client.get("/review/").get_data(as_text=True)
    assert f"review-item-{in_review.id}" not in page and "PW-ALICE1 is paid" in page


def _card(page, payment_id: int, reference: str):
    return page.select_one(f"#review-item-{payment_id} .evidence-card[data-reference={reference}]")


def test_a_rejection_needs_a_reason_and_changes_nothing_without_one(client, auth, login_as, domain, in_review):
    login_as("staff")
    token = auth.csrf_token("/review/")
    response = client.post(f"/review/payments/{in_review.id}/reject",
                           data={"reference": "PW-ALICE1", "reason": "  ", "csrf_token": token})
    assert response.status_code == 422
    page = _soup(response)
    assert _card(page, in_review.id, "PW-ALICE1").select_one(".card-error").get_text() == "A rejection needs a reason."
    assert not _card(page, in_review.id, "PW-BRIAN2").select_one(".card-error")
    assert "A rejection needs a reason" in page.find(id="flashes").get_text()  # a plain form: also on top
    assert _payment_now(domain, in_review.id).status == "review"
    assert _status(domain, "PW-ALICE1") == "review"
    assert domain(lambda: (RejectedPair.select().count(), MatchCandidate.select().count())) == (0, 2)


def test_a_refused_action_answers_the_item_with_the_error_on_its_card_and_the_typing_kept(
        client, auth, login_as, domain):
    def build():
        for reference, phone in (("PW-ALICE1", "+256712345678"), ("PW-BRIAN2", "+256772000002")):
            ledger.create_request(ledger.NewRequest(5000, "UGX", reference=reference, customer_phone=phone))
        return _payment("row-8", 5000, phone="+256701999999")

    stranger = domain(build)
    login_as("staff")
    token = auth.csrf_token("/review/")
    headers = {**HTMX, "X-CSRFToken": token}
    response = client.post(f"/review/payments/{stranger.id}/reject", headers=headers, data={
        "reference": "PW-BRIAN2", "reason": "checked the slip", "notify_customer": "1", "message": "Hello"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == f"#review-item-{stranger.id}"
    assert response.headers["HX-Reswap"] == "outerHTML"
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<article id="review-item-{stranger.id}"') and "flashes" not in body
    card = _card(_soup(response), stranger.id, "PW-BRIAN2")
    assert "someone else's money" in card.select_one(".card-error").get_text()
    assert card.select_one("details.reject").has_attr("open")
    assert card.select_one("input[name=reason]")["value"] == "checked the slip"
    assert not _card(_soup(response), stranger.id, "PW-ALICE1").select_one(".card-error")
    assert _payment_now(domain, stranger.id).status == "review"


def test_the_reject_form_offers_to_tell_the_customer_only_about_their_own_money(client, auth, login_as, domain):
    def build():
        for reference, phone in (("PW-ALICE1", "+256712345678"), ("PW-BRIAN2", "+256772000002")):
            ledger.create_request(ledger.NewRequest(5000, "UGX", reference=reference, customer_phone=phone))
        return _payment("row-8", 5000, phone="+256701999999"), _payment("row-9", 5000, phone=None)

    stranger, unknown = domain(build)
    login_as("staff")
    page = _soup(client.get("/review/"))
    for card in page.find(id=f"review-item-{stranger.id}").select(".evidence-card"):
        assert not card.select_one("input[name=notify_customer]")
        assert "someone else's money" in card.select_one(".not-told").get_text()
    alice = [c for c in page.find(id=f"review-item-{unknown.id}").select(".evidence-card")
             if c["data-reference"] == "PW-ALICE1"][0]
    assert alice.select_one("input[name=notify_customer]")
    assert "could not accept your payment of UGX 5,000 for PW-ALICE1" in alice.select_one("textarea").get_text()

    token = auth.csrf_token("/review/")
    response = client.post(f"/review/payments/{unknown.id}/reject", data={
        "reference": "PW-ALICE1", "reason": "paid for her sister's booking", "notify_customer": "1",
        "message": "Hello Alice, this payment was for another booking; we will call you.", "csrf_token": token})
    assert response.status_code == 302
    row = domain(lambda: Notification.get(Notification.kind == "payment_rejected_customer"))
    assert row.phone == "+256712345678"
    assert row.context == {"template": "Hello Alice, this payment was for another booking; we will call you."}
    refused = client.post(f"/review/payments/{stranger.id}/reject", data={
        "reference": "PW-ALICE1", "reason": "a stranger", "notify_customer": "1", "csrf_token": token})
    assert refused.status_code == 422
    assert "someone else's money" in _card(_soup(refused), stranger.id, "PW-ALICE1").select_one(".card-error").get_text()


def test_a_rejection_with_a_reason_frees_the_request_and_is_remembered(client, auth, login_as, domain, in_review):
    login_as("staff")
    token = auth.csrf_token("/review/")
    response = client.post(f"/review/payments/{in_review.id}/reject",
                           data={"reference": "PW-ALICE1", "reason": "another Alice paid", "csrf_token": token})
    assert response.status_code == 302
    assert _status(domain, "PW-ALICE1") == "pending"
    assert domain(lambda: [(r.payment_id, r.request.reference) for r in RejectedPair.select()]) == [(in_review.id, "PW-ALICE1")]
    page = _soup(client.get("/review/"))
    assert [c["data-reference"] for c in page.find(id=f"review-item-{in_review.id}").select(".evidence-card")] == ["PW-BRIAN2"]
    assert "does not pay PW-ALICE1" in page.find(id="flashes").get_text()


def test_staff_link_an_unmatched_payment_and_a_different_amount_is_refused(client, auth, login_as, domain, unmatched):
    login_as("staff")
    payment, _ = unmatched
    domain(_request, 9000, "Carol Nambi", "PW-CAROL3")
    domain(_request, 7000, "Dan Opio", "PW-DAN4")
    token = auth.csrf_token("/review/")
    refused = client.post(f"/review/payments/{payment.id}/link", data={"reference": "PW-DAN4"},
                          headers={**HTMX, "X-CSRFToken": token})
    assert refused.status_code == 422 and refused.headers["HX-Retarget"] == f"#review-item-{payment.id}"
    item = _soup(refused).find(id=f"review-item-{payment.id}")
    assert "PW-DAN4 asks 7000 UGX" in item.select_one(".linking .card-error").get_text()
    assert item.select_one(".link-form input[name=reference]")["value"] == "PW-DAN4"  # what was typed is kept
    assert (_payment_now(domain, payment.id).status, _status(domain, "PW-DAN4")) == ("unmatched", "pending")
    empty = client.post(f"/review/payments/{payment.id}/link", data={"reference": " "}, headers={**HTMX, "X-CSRFToken": token})
    assert empty.status_code == 422 and "Type the reference" in _soup(empty).select_one(".card-error").get_text()

    linked = client.post(f"/review/payments/{payment.id}/link", data={"reference": "pw carol3", "csrf_token": token})
    assert linked.status_code == 302
    assert _payment_now(domain, payment.id).status == "confirmed"
    assert _status(domain, "PW-CAROL3") == "paid"
    assert "PW-CAROL3 is paid" in _soup(client.get("/review/")).find(id="flashes").get_text()


def test_viewers_may_look_but_not_act(client, auth, login_as, domain, in_review, unmatched):
    login_as("viewer")
    token = auth.csrf_token("/review/")
    for action, data in (("confirm", {"reference": "PW-ALICE1"}), ("reject", {"reference": "PW-ALICE1", "reason": "no"}),
                         ("link", {"reference": "PW-ALICE1"})):
        target = unmatched[0].id if action == "link" else in_review.id
        response = client.post(f"/review/payments/{target}/{action}", data={**data, "csrf_token": token})
        assert response.status_code == 403, action
    assert _status(domain, "PW-ALICE1") == "review"
    assert domain(lambda: sorted(p.status for p in Payment.select())) == ["review", "unmatched", "unmatched"]


def test_the_counts_badge_counts_requests_payments_and_unmatched(client, login_as, in_review, unmatched):
    login_as("viewer")
    response = client.get("/review/counts", headers=HTMX)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    badge = _soup(response).find(id="review-count")
    assert (badge["data-requests"], badge["data-payments"], badge["data-unmatched"]) == ("2", "1", "2")
    assert badge.get_text() == "3" and badge["hx-trigger"] == "every 10s"
    assert client.get("/review/counts").status_code == 302  # a plain visit goes to the queue


def test_htmx_gets_the_queue_partial_and_decisions_answer_with_it(client, auth, login_as, domain, in_review, unmatched):
    login_as("staff")
    token = auth.csrf_token("/review/")
    response = client.get("/review/", headers=HTMX)
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith("<section id=\"review-queue\"") and "<html" not in body
    version = _soup(response).find(id="review-queue")["data-version"]
    assert client.get(f"/review/queue?v={version}", headers=HTMX).status_code == 204  # nothing changed
    assert client.get("/review/queue?v=stale", headers=HTMX).status_code == 200

    headers = {**HTMX, "X-CSRFToken": token}
    refused = client.post(f"/review/payments/{in_review.id}/confirm", data={"reference": "PW-NOPE99"}, headers=headers)
    assert refused.status_code == 404 and refused.headers["HX-Retarget"] == f"#review-item-{in_review.id}"
    assert "No request with reference PW-NOPE99." in refused.get_data(as_text=True)
    gone = client.post(f"/review/payments/{unmatched[0].id}/confirm", data={"reference": "PW-ALICE1"}, headers=headers)
    assert gone.status_code == 422 and "HX-Retarget" in gone.headers  # still queued: its item, error on it

    done = client.post(f"/review/payments/{in_review.id}/confirm", data={"reference": "PW-BRIAN2"}, headers=headers)
    assert done.status_code == 200
    queue = _soup(done)
    assert queue.find(id="review-queue") and not queue.find(id=f"review-item-{in_review.id}")
    assert "PW-BRIAN2 is paid" in queue.find(id="flashes").get_text()
    assert queue.find(id="review-queue")["data-version"] != version
    assert _status(domain, "PW-BRIAN2") == "paid" and _status(domain, "PW-ALICE1") == "pending"
