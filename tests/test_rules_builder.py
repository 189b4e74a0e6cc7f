"""Generic readings in the ledger (review, never auto-confirmed) and the rule builder (propose, preview,
save into the instance folder, re-read the waiting evidence), through the domain and the web routes."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from jobs import rules
from jobs.email_providers import ProviderError, installed_providers, line_tolerant, load_providers
from jobs.emails import parse_messages
from jobs.mailbox import _observation
from sandbox.heldout import trusted
from sandbox.mail_mime import SMS_FORWARDER, plain, sms_forward
from webapp.domain import ledger
from webapp.domain.ledger.money_in import GENERIC_HOLD
from webapp.storage.models import Event, Payment, PaymentStatus, Source

WHEN = datetime(2026, 7, 3, 6, 5, tzinfo=timezone.utc)
SWAHILI = ("UG12XYZ789 Imethibitishwa. Umepokea Ksh1,500.00 kutoka JANE WANJIKU 0712345678 tarehe 3/7/26 "
           "saa 9:01 AM. Salio jipya ni Ksh9,000.00.")
SWAHILI_2 = ("UG12XYZ790 Imethibitishwa. Umepokea Ksh2,750.50 kutoka PETER OTIENO 0722000111 tarehe 3/7/26 "
             "saa 9:04 AM. Salio jipya ni Ksh11,750.50.")
MARKS = {"amount": "1,500.00", "sender_name": "JANE WANJIKU", "sender_phone": "0712345678", "transaction_id": "UG12XYZ789",
         "date": "3/7/26"}


def _stored_unreadable(text: str, ref: str, source: str = "mbox") -> Payment:
    raw = sms_forward("MPESA", text, WHEN, ref, "line")
    parsed = parse_messages(raw, trusted_forwarders=trusted())[0]
    assert parsed.kind == "unparsed" and parsed.provider == "mpesa"
    return ledger.ingest_payment(_observation(source, parsed, raw, WHEN, readable=False)).payment


def _generic(amount="Ksh 4,200.00", phone="0712345678", ref="<g1@relay.example>"):
    text = f"Dear customer, {amount} has been credited to your wallet from PETER KAMAU {phone}. Ref QX12345678."
    raw = sms_forward("MPESA", text, WHEN, ref, "line")
    parsed = parse_messages(raw, trusted_forwarders=trusted())[0]
    assert parsed.generic and parsed.kind == "received"
    return _observation("mbox", parsed, raw, WHEN, readable=True)


def test_a_generic_reading_goes_to_review_even_when_a_request_matches_exactly(ctx, make_request):
    make_request(420000, currency="KES", customer_phone="+254712345678", customer_name="Peter Kamau")
    payment = ledger.ingest_payment(_generic()).payment
    assert (payment.status, payment.generic, payment.verified) == (PaymentStatus.REVIEW, True, False)
    assert GENERIC_HOLD in payment.reason
    assert "generic reader" in payment.reading and "PETER KAMAU" in payment.reading


def test_a_generic_reading_with_no_candidate_is_still_shown_in_review(ctx):
    payment = ledger.ingest_payment(_generic(amount="Ksh 77.00", ref="<g2@relay.example>")).payment
    assert payment.status == PaymentStatus.REVIEW
    assert payment.reason.startswith(GENERIC_HOLD)


def test_the_review_queue_shows_what_the_fallback_reader_read(app, client, login_as, domain):
    domain(lambda: ledger.ingest_payment(_generic(ref="<g3@relay.example>")))
    login_as("staff")
    page = client.get("/review/").get_data(as_text=True)
    assert "generic reading" in page and "PETER KAMAU" in page
    assert "Build a provider rule" in page


def test_a_proposed_rule_reads_other_messages_of_the_same_layout():
    pattern = rules.propose(SWAHILI, MARKS)
    found = re.search(pattern, SWAHILI_2, re.I)
    assert found and found["amount"] == "2,750.50" and found["sender_name"] == "PETER OTIENO"
    assert found["transaction_id"] == "UG12XYZ790"
    with pytest.raises(rules.RuleBuildError, match="not in the message"):
        rules.propose(SWAHILI, {"amount": "9,999.00"})
    with pytest.raises(rules.RuleBuildError, match="mark the amount"):
        rules.propose(SWAHILI, {"sender_name": "JANE WANJIKU"})


def test_preview_then_save_writes_a_provider_file_and_rereads_the_waiting_evidence(ctx, make_request, settings):
    first = _stored_unreadable(SWAHILI, "<s1@relay.example>")
    second = _stored_unreadable(SWAHILI_2, "<s2@relay.example>")
    request = make_request(150000, currency="KES", customer_phone="+254712345678", customer_name="Jane Wanjiku",
                           now=WHEN - timedelta(minutes=5))
    view = rules.builder_view(first.id, {**MARKS, "name": "mpesa-swahili"})
    assert view["base"] == "mpesa" and view["sms"] and view["sender"] == "MPESA"
    assert "error" not in view, view.get("error")
    rows = {row["payment"]: row for row in view["preview"]}
    assert rows[second.id]["amount_minor"] == 275050 and rows[second.id]["new"]
    assert not (settings.instance_path / "providers").exists()  # a preview writes nothing

    done = rules.builder_save(first.id, {**MARKS, "name": "mpesa-swahili"}, "user:1")
    assert done["reread"] == 2 and done["still_unread"] == 0
    mpesa = next(p for p in installed_providers() if p.name == "mpesa")
    assert mpesa.rules[0].name == "built-mpesa-swahili" and len(mpesa.rules) > 1  # tried first, built-ins kept
    text = (settings.instance_path / "providers" / "built-mpesa-swahili.toml").read_text()
    assert 'adds_to = \'mpesa\'' in text and "(?P<amount>" in text
    first, second = Payment.get_by_id(first.id), Payment.get_by_id(second.id)
    assert (first.parsed, first.amount_minor, first.transaction_id, first.sender_name) == \
        (True, 150000, "UG12XYZ789", "JANE WANJIKU")
    assert first.status == PaymentStatus.CONFIRMED and first.request_id == request.id, (first.reason, first.received_at)
    assert (second.amount_minor, second.status) == (275050, PaymentStatus.UNMATCHED)
    assert Event.select().where(Event.action == "payment.reread").count() == 2
    with pytest.raises(rules.RuleBuildError, match="exists already"):
        rules.builder_save(first.id, {**MARKS, "name": "mpesa-swahili"}, "user:1")


def test_the_builder_page_needs_staff_and_saving_needs_csrf(app, client, login_as, auth, domain, settings):
    payment = domain(_stored_unreadable, SWAHILI, "<s3@relay.example>")
    login_as("viewer")
    assert client.get(f"/rules/build/{payment.id}").status_code == 403
    auth.logout()
    login_as("staff")
    page = client.get(f"/rules/build/{payment.id}", query_string={**MARKS, "name": "sw"}).get_data(as_text=True)
    assert "Umepokea" in page and "(?P&lt;amount&gt;" in page
    assert client.post(f"/rules/build/{payment.id}", data={**MARKS, "name": "sw"}).status_code == 400
    token = auth.csrf_token(f"/rules/build/{payment.id}?amount=1%2C500.00&name=sw")
    answer = client.post(f"/rules/build/{payment.id}", data={**MARKS, "name": "sw", "csrf_token": token})
    assert answer.status_code == 302
    assert (settings.instance_path / "providers" / "built-sw.toml").exists()
    assert domain(lambda: Payment.get_by_id(payment.id).parsed)
    bad = client.post(f"/rules/build/{payment.id}", data={"amount": "nope", "name": "sw2", "csrf_token": token})
    assert bad.status_code == 422 and "Not saved" in bad.get_data(as_text=True)


def test_a_file_that_adds_to_a_provider_goes_first_and_an_unknown_base_is_refused(tmp_path):
    (tmp_path / "extra.toml").write_text(
        "adds_to = 'mtn_ug'\nsms_senders = ['MoMoUG']\n[[rules]]\nname = 'local'\nkind = 'received'\n"
        "body = ['Got UGX (?P<amount>\\d+)']\n")
    mtn = next(p for p in load_providers([tmp_path]) if p.name == "mtn_ug")
    assert mtn.rules[0].name == "local" and len(mtn.rules) > 1 and mtn.sends_sms_as("MoMoUG")
    (tmp_path / "extra.toml").write_text("adds_to = 'nobody'\n[[rules]]\nname = 'x'\nkind = 'received'\n"
                                         "body = ['(?P<amount>\\d+)']\n")
    with pytest.raises(ProviderError, match="adds_to names 'nobody'"):
        load_providers([tmp_path])


def test_a_literal_space_in_a_rule_also_matches_a_label_wrapped_over_lines():
    assert line_tolerant(r"Transaction ID\s*[^ ]+ x ?y") == r"Transaction[ \n]ID\s*[^ ]+[ \n]x ?y"


def _kept(text: str, ref: str, subject: str = "New SMS") -> Payment:
    """A trusted forwarder's mail no provider reads, kept as evidence as the mailbox keeps it."""
    raw = plain(SMS_FORWARDER, subject, WHEN, ref, text)
    parsed = parse_messages(raw, trusted_forwarders=trusted())[0]
    assert parsed.kind == "ignored"  # the mailbox files a trusted sender's such mail as unreadable
    parsed.kind = "unparsed"
    return ledger.ingest_payment(_observation("mbox", parsed, raw, WHEN, readable=False)).payment


def test_an_sms_sender_no_provider_claims_becomes_a_new_provider_but_a_forwarder_address_never(ctx, settings):
    Source.create(kind="mailbox", name="mbox", config={"trusted_senders": [SMS_FORWARDER]})
    sms = _kept("From: SHOPBANK\n\nCredit of UGX 45,000 from OKELLO JOHN. Ref 99887766.", "<k1@relay.example>")
    marks = {"amount": "45,000", "sender_name": "OKELLO JOHN", "transaction_id": "99887766", "name": "shopbank",
             "currency": "UGX"}
    done = rules.builder_save(sms.id, marks, "user:1")
    assert done["reread"] == 1
    shopbank = next(p for p in installed_providers() if p.name == "shopbank")
    assert shopbank.sms_senders == ("SHOPBANK",) and shopbank.senders == () and shopbank.currency == "UGX"
    assert Payment.get_by_id(sms.id).amount_minor == 45000
    odd = _kept("Credit of UGX 5,000 from ANN. Ref 11223344.", "<k2@relay.example>", subject="hello")
    view = rules.builder_view(odd.id, {"amount": "5,000", "name": "relay"})
    assert "forwarder" in view["error"] and "pattern" not in view
