"""Fees and invoices: requests with a due date and a balance, paid in installments found by who
paid (reference quoted, a phone known for the payer) — never by amount alone; the payer roster,
group requests, statements; races keep the balance right (SQLite and PostgreSQL)."""
from datetime import timedelta

import pytest

from tests.ledger_helpers import ago, fresh, new_request, observe, pay
from tests.test_ledger_races import run_pair, winners
from webapp.domain import apikeys, ledger, payers
from webapp.storage.models import Event, Notification, Payer, Payment, PaymentRequest, utcnow

FEE = 500_000
PARENT = "+256772555001"


def fee(payer=None, amount=FEE, **extra):
    return new_request(amount, phone=None, name="Amina N", due_at=utcnow() + timedelta(days=30), allow_partial=True,
                       payer_id=payer.id if payer else None, **extra)


@pytest.fixture
def pupil(ctx):
    return payers.save("ADM-0042", "Amina Nakato", [PARENT], "P5", actor="test")[0]


def test_installments_by_reference_add_up_to_paid_with_a_message_each(ctx):
    request = fee()
    first = pay(200_000, note=f"school fees {request.reference}")
    assert first.decision.action == "confirm" and first.payment.status == "confirmed"
    after_first = fresh(request)
    assert (after_first.status, after_first.paid_minor, after_first.balance_minor) == ("partial", 200_000, 300_000)
    pay(300_000, note=f"balance {request.reference}")
    done = fresh(request)
    assert (done.status, done.paid_minor, done.balance_minor) == ("paid", FEE, 0)
    kinds = [n.kind for n in Notification.select().where(Notification.request == request.id).order_by(Notification.id)]
    assert kinds == []  # no phone on this request: nothing to send, nothing queued
    events = [e.action for e in Event.select().where(Event.subject == f"request:{request.reference}")]
    assert events.count("request.installment") == 1 and events.count("request.paid") == 1


def test_an_installment_from_a_phone_known_for_the_payer_counts_and_tells_the_customer(ctx, pupil):
    request = new_request(FEE, phone=PARENT, name=pupil.name, due_at=utcnow() + timedelta(days=30),
                          allow_partial=True, payer_id=pupil.id)
    result = pay(200_000, phone=PARENT)
    assert result.payment.request_id == request.id and fresh(request).status == "partial"
    message = Notification.get(Notification.request == request.id, Notification.kind == "installment_received_customer")
    from webapp.domain import message_texts
    from webapp.config import settings

    text = message_texts.render_text(message_texts.current(message.kind)[0],
                                     message_texts.context_for(message, settings().zone))
    assert "received UGX 200,000" in text.replace("UGX\xa0", "UGX ") and "balance UGX 300,000" in text.replace(
        "UGX\xa0", "UGX ")


def test_money_that_moved_before_the_request_existed_is_not_an_installment_of_it(ctx, pupil):
    request = fee(pupil)
    result = pay(100_000, phone=PARENT, received_at=ago(days=2))
    assert result.payment.request_id != request.id and fresh(request).paid_minor == 0


def test_amount_alone_never_counts_toward_an_installment_request(ctx, pupil):
    request = fee(pupil)
    result = pay(200_000, phone="+256700999888", name="Amina Nakato")  # not a known phone, no reference
    assert result.payment.status != "confirmed" and result.payment.request_id != request.id
    assert fresh(request).paid_minor == 0 and fresh(request).status == "pending"


def test_over_payment_goes_to_review_flagged_never_kept(ctx):
    request = fee()
    pay(400_000, note=request.reference)
    result = pay(200_000, note=request.reference)
    assert result.payment.status == "review" and "over-payment" in result.payment.reason
    assert fresh(request).paid_minor == 400_000 and fresh(request).status == "partial"
    with pytest.raises(ledger.LedgerError):  # staff cannot push it onto the request either
        ledger.confirm(result.payment.id, request.reference, actor="user:1")


def test_two_equal_installment_requests_for_one_payer_go_to_review(ctx, pupil):
    fee(pupil), fee(pupil)
    result = pay(100_000, phone=PARENT)
    assert result.payment.status == "review" and "installment requests fit" in result.payment.reason


def test_staff_link_an_installment_by_hand(ctx):
    request = fee()
    unmatched = pay(150_000)
    assert unmatched.payment.status == "unmatched"
    ledger.link(unmatched.payment.id, request.reference, actor="user:1")
    assert fresh(request).paid_minor == 150_000 and fresh(request).status == "partial"


def test_a_request_with_a_due_date_never_expires(ctx):
    request = new_request(FEE, due_at=ago(days=3), allow_partial=True, now=ago(days=40))
    assert ledger.expire_due() == 0 and fresh(request).status == "pending"
    from webapp.domain.ledger.installments import overdue

    assert overdue(fresh(request), utcnow())


def test_two_installments_at_once_keep_the_balance_right(ctx, environ):
    request = fee()
    outcomes = run_pair(environ, [
        ("ingest_payment", (observe(200_000, ref="inst-a", note=request.reference),)),
        ("ingest_payment", (observe(100_000, ref="inst-b", note=request.reference),)),
    ])
    assert len(winners(outcomes)) == 2
    row = fresh(request)
    confirmed = [p.amount_minor for p in Payment.select().where(Payment.request == request.id,
                                                                Payment.status == "confirmed")]
    assert row.paid_minor == sum(confirmed) and row.paid_minor in (300_000, 200_000, 100_000)
    if len(confirmed) < 2:  # the loser of a lost race is never dropped: it waits in review
        assert Payment.select().where(Payment.status == "review").count() == 1


def test_the_api_creates_a_fee_for_a_payer_and_reads_its_balance(client, domain):
    domain(payers.save, "ADM-0042", "Amina Nakato", [PARENT], "P5", actor="test")
    _, key = domain(apikeys.create, "school", "staff", actor="test")
    headers = {"Authorization": f"Bearer {key}"}
    body = client.post("/api/v1/requests", headers=headers, json={
        "amount": "500000", "currency": "UGX", "payer_code": "ADM-0042", "due_at": "2027-01-15T00:00:00+03:00",
        "allow_partial": True}).get_json()
    assert body["payer"] == "ADM-0042" and body["allow_partial"] is True and body["balance"] == "500000"
    assert body["due_at"] == "2027-01-14T21:00:00+00:00" and body["customer"]["phone"] == PARENT
    domain(pay, 200_000, phone=PARENT)
    read = client.get(f"/api/v1/requests/{body['reference']}", headers=headers).get_json()
    assert (read["status"], read["paid_amount"], read["balance"]) == ("partial", "200000", "300000")
    payer = client.get("/api/v1/payers/ADM-0042", headers=headers).get_json()
    assert payer["balance"] == "300000" and [r["reference"] for r in payer["requests"]] == [body["reference"]]
    bad = client.post("/api/v1/requests", headers=headers, json={"amount": "1", "payer_code": "NOPE"})
    assert bad.status_code == 422 and "payer_code" in bad.get_json()["error"]["message"]
    made = client.post("/api/v1/payers", headers=headers, json={"code": "ADM-7", "name": "Brian O",
                                                                 "phones": ["0772 555002"], "group": "P6"})
    assert made.status_code == 201 and made.get_json()["phones"] == ["+256772555002"]


def test_the_roster_imports_with_a_report_and_a_group_gets_its_requests_once(ctx):
    report = payers.import_csv("code,name,phones,group\nA1,Amina N,0772555001,P5\nA2,Brian O,not-a-phone,P5\n"
                               "A3,Carol K,0772555003; 0701555003,P5\nA1,Again,0772555009,P5\n", actor="test")
    assert (report.created, [n for n, _ in report.rejected]) == (2, [3, 5])
    assert Payer.get(Payer.code == "A3").phones == ["+256772555003", "+256701555003"]
    due = utcnow() + timedelta(days=40)
    first = payers.request_for_group("P5", FEE, "UGX", due, label="Term 1 fees", actor="test")
    again = payers.request_for_group("P5", FEE, "UGX", due, label="Term 1 fees", actor="test")
    assert len(first.created) == 2 and again.created == [] and len(again.skipped) == 2


def test_a_statement_after_three_installments(ctx, pupil):
    request = fee(pupil, meta={"label": "Term 1 fees"})
    for amount in (100_000, 150_000, 50_000):
        pay(amount, phone=PARENT)
    sheet = payers.statement(pupil)
    assert [(line.kind, line.charge_minor, line.paid_minor) for line in sheet.lines] == [
        ("request", FEE, 0), ("payment", 0, 100_000), ("payment", 0, 150_000), ("payment", 0, 50_000)]
    assert (sheet.owed_minor, sheet.paid_minor, sheet.balance_minor) == (FEE, 300_000, 200_000)
    assert PaymentRequest.get_by_id(request.id).balance_minor == 200_000


def test_reminder_rules_pick_payers_by_due_date_balance_group_and_silence(ctx):
    from webapp.domain import reminders

    p5 = payers.save("A1", "Amina N", ["+256772555001"], "P5", actor="test")[0]
    p6 = payers.save("B1", "Brian O", ["+256772555002"], "P6", actor="test")[0]
    soon = new_request(FEE, phone="+256772555001", due_at=utcnow() + timedelta(days=2), allow_partial=True,
                       payer_id=p5.id)
    later = new_request(FEE, phone="+256772555002", due_at=utcnow() + timedelta(days=20), allow_partial=True,
                        payer_id=p6.id)
    late = new_request(FEE, phone="+256772555003", due_at=ago(days=5), allow_partial=True, now=ago(days=30))
    pay(450_000, phone="+256772555001")  # soon: balance 50,000, paid today

    def picked(**filter_):
        rule = reminders.save({"name": "fees", "cron": "0 9 * * 1", "filter": filter_,
                               "template": "{{ reference }}: balance {{ balance }}, due {{ due_at }}"}, actor="test")
        return {p.request.reference: p.text for p in reminders.plan(rule)}

    assert set(picked(due_in_days=3)) == {soon.reference}
    assert set(picked(overdue_days=1)) == {late.reference}
    assert set(picked(balance_min="100000")) == {later.reference, late.reference}
    assert set(picked(group="P6")) == {later.reference}
    assert set(picked(no_payment_days=7)) == {later.reference, late.reference}
    text = picked(due_in_days=3)[soon.reference]
    assert "balance UGX" in text.replace("\xa0", " ") and "50,000" in text
    with pytest.raises(reminders.RuleError, match="overdue_days"):
        picked(overdue_days="soon")


def test_the_payer_pages_import_make_group_requests_and_show_a_statement(client, auth, login_as, domain, tmp_path,
                                                                        runner):
    login_as("staff")
    token = {"csrf_token": auth.csrf_token("/payers/")}
    page = client.post("/payers/import", data={**token, "lines": "code,name,phones,group\nP1,Amina N,0772555001,P5\n"
                                                                  "P2,Brian O,bad,P5\n"})
    assert page.status_code == 200 and "line 3: phones: &#39;bad&#39; is not a phone number" in page.get_data(as_text=True)
    made = client.post("/payers/requests", data={**token, "group": "P5", "label": "Term 1 fees", "amount": "500,000",
                                                 "due": "2027-01-15"})
    assert "1 request(s) created for P5" in made.get_data(as_text=True)
    request = domain(lambda: PaymentRequest.get(PaymentRequest.payer.is_null(False)))
    assert request.due_at.isoformat() == "2027-01-15T20:59:00+00:00"  # 23:59 in Kampala
    domain(pay, 200_000, phone="+256772555001")
    detail = client.get("/payers/P1").get_data(as_text=True)
    assert 'id="payer-balance">UGX' in detail and "300,000" in detail and "Term 1 fees" in detail
    csv_text = client.get("/payers/P1/statement.csv").get_data(as_text=True).splitlines()
    assert csv_text[0] == "date,what,reference,charge,paid,balance,currency"
    assert csv_text[1].endswith(f"Term 1 fees,{request.reference},500000,,500000,UGX")
    assert csv_text[2].endswith(",200000,300000,UGX")
    assert client.post("/payers/import", data={"lines": "x"}).status_code == 400  # no CSRF token
    roster = tmp_path / "roster.csv"
    roster.write_text("code,name,phones,group\nP3,Carol K,0772555003,P6\nP4,,0772555004,P6\n")
    result = runner.invoke(args=["payers", "import", str(roster)])
    assert result.exit_code == 0 and "imported 1" in result.output and "line 3: name: required" in result.output


def test_the_dashboard_shows_collected_against_due_and_the_overdue_total(client, login_as, domain):
    def seed():
        term = new_request(FEE, phone=None, due_at=utcnow() + timedelta(days=10), allow_partial=True,
                           meta={"label": "Term 1 fees"})
        late = new_request(FEE, phone=None, due_at=ago(days=2), allow_partial=True, meta={"label": "Term 1 fees"},
                           now=ago(days=20))
        pay(200_000, note=term.reference)
        pay(100_000, note=late.reference)

    domain(seed)
    login_as("viewer")
    html = client.get("/").get_data(as_text=True).replace("\xa0", " ")
    section = html.split('id="fees"')[1].split("</section>")[0]
    assert "Term 1 fees" in section and "UGX 1,000,000" in section and "UGX 300,000" in section
    assert "(30 %)" in section and "UGX 400,000" in section  # the late one's balance is overdue
