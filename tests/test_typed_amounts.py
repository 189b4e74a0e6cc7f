"""Amounts as staff type them: "5,000", "5 000", "5,000.50" — and what could be read two ways is refused, naming why."""
import re

import pytest

from webapp.domain import money
from webapp.storage.models import Payment, PaymentRequest, Rule

NNBSP, NBSP, THIN = "\u202f", "\u00a0", "\u2009"

ACCEPTED = [
    ("5000", "UGX", 5000),
    ("5,000", "UGX", 5000),
    ("5 000", "UGX", 5000),
    (f"5{NBSP}000", "UGX", 5000),
    (f"5{NNBSP}000", "UGX", 5000),  # what a phone's keyboard or a French-locale sheet pastes
    (f"1{THIN}250{THIN}000", "UGX", 1250000),
    (f"1 250{NBSP}000", "UGX", 1250000),  # spaces of several kinds are one separator
    ("12,345,678", "UGX", 12345678),
    (" 5,000 ", "UGX", 5000),
    ("5,000.", "UGX", 5000),
    ("5.00", "UGX", 5),  # UGX has no decimals, but zeros after the point say nothing more
    ("5,000.50", "USD", 500050),
    ("5 000.5", "USD", 500050),
    ("0.75", "USD", 75),
    ("5.000", "KWD", 5000),  # KWD has three decimals: not ambiguous
    ("1,234.567", "KWD", 1234567),
    ("5,00,000", "INR", 50000000),  # lakh grouping, where it is written so
    ("1,00,00,000.50", "INR", 1000000050),
    ("12,50,000", "PKR", 125000000),
]


@pytest.mark.parametrize("text, currency, minor", ACCEPTED)
def test_typed_amounts_are_read_in_minor_units(text, currency, minor):
    assert money.parse_typed(text, currency) == minor


REFUSED = [
    ("5.000", "UGX", "is ambiguous: UGX has no decimals, so the point may group thousands. Write 5000 or 5,000"),
    ("5.000", "USD", "is ambiguous: a point before three digits may group thousands"),
    ("5,50", "USD", "looks like a decimal comma: use a point before the decimals (5.50)"),
    ("50,00", "UGX", "looks like a decimal comma"),
    ("1.000.000", "UGX", "has more than one point"),
    ("5,000 000", "UGX", "mixes commas and spaces"),
    ("1,2345", "UGX", "misplaced separators: thousands go in groups of three digits"),
    ("50,0000", "UGX", "misplaced separators"),
    (",500", "UGX", "misplaced separators"),
    ("5,00,000", "UGX", "misplaced separators"),  # lakh grouping only in South Asian currencies
    ("5,000.5,0", "USD", "separators after the point"),
    (".5", "USD", "needs a digit before the point (0.5)"),
    ("-5,000", "UGX", "is negative"),
    ("five", "UGX", "is not a number (digits, with a point before the decimals"),
    ("5e3", "UGX", "is not a number"),
    ("５０００", "UGX", "is not a number"),
    ("5000.5", "UGX", "'5000.5' has more decimals than UGX allows (0)"),
    ("5,000.555", "USD", "'5,000.555' has more decimals than USD allows (2)"),
    ("1,000,000,000,000,000", "UGX", "above the maximum"),
    ("9" * 41, "UGX", "too long"),
]


@pytest.mark.parametrize("text, currency, problem", REFUSED)
def test_what_could_be_read_two_ways_is_refused_naming_the_problem(text, currency, problem):
    with pytest.raises(money.MoneyError) as refused:
        money.parse_typed(text, currency)
    assert problem in str(refused.value)


def test_the_api_keeps_plain_decimal_notation():
    with pytest.raises(money.MoneyError, match="not a decimal number"):
        money.to_minor("5,000", "UGX")


# ---------------------------------------------------------------- every form that takes an amount


def _error(page: str, field: str) -> str:
    found = re.search(rf'name="{field}"[^>]*>\s*<small class="error">([^<]*)<', page)
    return found.group(1) if found else ""


def test_the_new_request_form_takes_5_000_and_explains_an_ambiguous_amount(client, auth, login_as, domain):
    login_as("staff")
    token = auth.csrf_token("/requests/new")
    refused = client.post("/requests/", data={"csrf_token": token, "amount": "5.000", "currency": "UGX"})
    assert refused.status_code == 400
    assert "Write 5000 or 5,000" in _error(refused.get_data(as_text=True), "amount")
    assert 'value="5.000"' in refused.get_data(as_text=True)  # what was typed stays in the field
    created = client.post("/requests/", data={"csrf_token": token, "amount": f"5{NNBSP}000", "currency": "UGX"})
    assert created.status_code == 302
    assert domain(lambda: [r.amount_minor for r in PaymentRequest.select()]) == [5000]


def test_the_record_payment_form_takes_grouped_decimals(client, auth, login_as, domain):
    login_as("staff")
    token = auth.csrf_token("/payments/new")
    response = client.post("/payments/", data={"csrf_token": token, "amount": "1,250.50", "currency": "USD",
                                               "sender_name": "Jane"})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert domain(lambda: [(p.amount_minor, p.currency) for p in Payment.select()]) == [(125050, "USD")]


def test_the_list_filters_take_grouped_amounts(client, login_as, make_request):
    login_as("viewer")
    big, small = make_request(25000), make_request(5000)
    page = client.get("/requests/?min=10 000").get_data(as_text=True)
    assert big.reference in page and small.reference not in page
    refused = client.get("/requests/?max=10,00")
    assert refused.status_code == 400 and "looks like a decimal comma" in refused.get_data(as_text=True)


def test_the_reminder_rule_form_stores_typed_amounts_as_decimals(client, auth, login_as, domain):
    login_as("staff")
    rule = {"csrf_token": auth.csrf_token("/notifications/rules/new"), "name": "Big ones", "cron": "0 9 * * *",
            "min_pending": "", "min_pending_unit": "days", "currency": "", "agent_code": "", "enabled": "1",
            "template": "Reminder: {{ reference }}", "amount_min": "50,000", "balance_min": "1 000"}
    assert client.post("/notifications/rules", data=rule).status_code == 302
    assert domain(lambda: Rule.get().filter) == {"amount_min": "50000", "balance_min": "1000"}
    refused = client.post("/notifications/rules", data={**rule, "name": "Other", "amount_max": "5.000"})
    assert refused.status_code == 400 and "ambiguous" in refused.get_data(as_text=True)


def test_the_group_requests_form_names_a_bad_amount(client, auth, login_as, domain):
    login_as("staff")
    token = auth.csrf_token("/payers/")
    page = client.post("/payers/requests", data={"csrf_token": token, "group": "P5", "label": "Term 1",
                                                 "amount": "500.000", "due": "2027-01-15"})
    assert page.status_code == 422 and "ambiguous" in page.get_data(as_text=True)
