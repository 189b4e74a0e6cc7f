"""The learned-payers page (/review/learned): what staff taught, shown, and edited by staff only."""
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
