"""What staff taught, through the API calls and the learned-payers page (/review/learned, edited by staff only)."""
from __future__ import annotations

from bs4 import BeautifulSoup

from tests.ledger_helpers import new_request, pay
from webapp.domain import ledger
from webapp.storage.models import Event, PayerAlias


def _teach(domain):
    def build():
        john = new_request(5000, name="John Bosco Ocen", phone="+256772000001")
        new_request(5000, name="Peter Lwanga", phone="+256772000002")
        payment = pay(5000, name="OKOT JAMES").payment
        ledger.confirm(payment.id, john.reference, actor="user:1")
        return PayerAlias.get(), john

    return domain(build)


def test_staff_see_what_was_learned_and_withdraw_restore_and_forget_it(client, auth, login_as, domain):
    alias, john = _teach(domain)
    login_as("staff")
    page = BeautifulSoup(client.get("/review/learned/").get_data(as_text=True), "html.parser")
    row = page.select_one(f"#alias-{alias.id}")
    assert "OKOT JAMES" in row.text and "John Bosco Ocen" in row.text and "learning" in row.text
    token = auth.csrf_token("/review/learned/")
    response = client.post(f"/review/learned/{alias.id}/withdraw", data={"csrf_token": token})
    assert response.status_code == 302
    assert domain(lambda: PayerAlias.get_by_id(alias.id).rejected) == 1
    response = client.post(f"/review/learned/{alias.id}/restore", data={"csrf_token": token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "learning" in response.get_data(as_text=True)
    assert client.post(f"/review/learned/{alias.id}/promote", data={"csrf_token": token}).status_code == 422
    assert client.post(f"/review/learned/{alias.id}/forget", data={"csrf_token": token}).status_code == 302
    assert domain(lambda: PayerAlias.select().count()) == 0
    assert client.post(f"/review/learned/{alias.id}/forget", data={"csrf_token": token}).status_code == 404
    audited = domain(lambda: [e.action for e in Event.select().where(Event.subject == f"payer_alias:{alias.id}")
                              .order_by(Event.id)])
    assert audited == ["payer_alias.confirmed", "payer_alias.withdraw", "payer_alias.restore", "payer_alias.forget"]


def test_the_request_page_shows_what_was_learned_about_its_customer(client, login_as, domain):
    alias, john = _teach(domain)
    login_as("viewer")
    page = BeautifulSoup(client.get(f"/requests/{john.reference}").get_data(as_text=True), "html.parser")
    assert "OKOT JAMES" in page.select_one("#request-aliases").text
    found = client.get("/review/learned/?q=+256772000001").get_data(as_text=True)
    assert f"alias-{alias.id}" in found
    assert f"alias-{alias.id}" not in client.get("/review/learned/?q=nobody").get_data(as_text=True)


def test_viewers_may_look_but_not_edit_and_posts_need_csrf(client, auth, login_as, domain):
    alias, _ = _teach(domain)
    login_as("viewer")
    page = client.get("/review/learned/").get_data(as_text=True)
    assert f"alias-{alias.id}-forget" not in page
    token = auth.csrf_token("/review/learned/")
    assert client.post(f"/review/learned/{alias.id}/forget", data={"csrf_token": token}).status_code == 403
    auth.logout()
    login_as("staff")
    assert client.post(f"/review/learned/{alias.id}/forget").status_code == 400
    assert domain(lambda: PayerAlias.select().count()) == 1


def test_the_api_confirm_and_link_calls_teach_too(app, client, domain):
    from webapp.domain import apikeys

    key = domain(lambda: apikeys.create("learning", "staff")[1])
    headers = {"Authorization": f"Bearer {key}"}

    def post(path, body):
        response = client.post("/api/v1" + path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return response.get_json()

    def owe(name, phone, amount):
        return post("/requests", {"amount": str(amount), "currency": "UGX", "customer_name": name,
                                  "customer_phone": phone})["reference"]

    john = owe("John Bosco Ocen", "+256772000001", 5000)
    owe("Peter Lwanga", "+256772000002", 5000)
    paid = post("/payments", {"source_ref": "a-1", "amount": "5000", "currency": "UGX", "sender_name": "OKOT JAMES"})
    assert paid["status"] == "review"
    post(f"/admin/requests/{john}/confirm", {"payment_id": paid["id"]})
    # A payment that arrives before its request is unmatched; staff link it.
    early = post("/payments", {"source_ref": "a-2", "amount": "7000", "currency": "UGX", "sender_name": "OKOT JAMES"})
    assert early["status"] == "unmatched"
    john = owe("John Bosco Ocen", "+256772000001", 7000)
    owe("Peter Lwanga", "+256772000002", 7000)
    assert post(f"/admin/payments/{early['id']}/link", {"reference": john})["status"] == "confirmed"
    assert domain(lambda: PayerAlias.get().confirmed) == 2
    john = owe("John Bosco Ocen", "+256772000001", 9000)
    owe("Peter Lwanga", "+256772000002", 9000)
    third = post("/payments", {"source_ref": "a-3", "amount": "9000", "currency": "UGX", "sender_name": "OKOT JAMES"})
    assert third["status"] == "confirmed" and third["request"] == john
