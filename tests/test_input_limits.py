"""Strict, cheap input: every hostile value is a clear 4xx naming the field, never a 500 or a stall.

The API, the staff forms and filters, the mail parser (and its CLI), the portal table and
the gateway's amount all hold input to the same bounds (webapp/domain/money.py, webapp/domain/input_bounds.py).
The cost ceilings count this process's CPU time (time.process_time), not the wall clock: what the
input costs, whatever else the machine runs at the time.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest
from webapp.api.inputs import MAX_META, encode_cursor

from jobs import iotec, portal_table
from jobs.email_text import MAX_MAIL_BYTES, read_mail
from jobs.emails import parse_message
from sandbox.mail import SMS_FORWARDER
from sandbox.mail_mime import plain, sms_forward
from webapp.domain import apikeys, money
from webapp.storage import db
from webapp.storage.models import IdempotencyRecord, Payment, PaymentRequest

BIG_ID = 2**63
REQUEST = {"amount": "5000", "currency": "UGX", "customer_name": "Jane Doe"}
WHEN = datetime(2026, 6, 14, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def api(app, client):
    with app.app_context(), db.database.connection_context():
        key = apikeys.create("hostile", "staff")[1]

    class Api:
        headers = {"Authorization": f"Bearer {key}"}

        def get(self, path, **kw):
            return client.get("/api/v1" + path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

        def post(self, path, body=None, *, raw: bytes | None = None, **kw):
            headers = {**self.headers, "Content-Type": "application/json", **kw.pop("headers", {})}
            data = raw if raw is not None else json.dumps(body if body is not None else {})
            return client.post("/api/v1" + path, data=data, headers=headers, **kw)

    return Api()


def stored(app, model) -> int:
    with app.app_context(), db.database.connection_context():
        return model.select().count()


def field_refused(response, field: str, words: str = "") -> str:
    """The 422 names `field` in details (the documented error format); returns the problem."""
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details", "timestamp"} and error["code"] == "validation_failed"
    assert field in error["details"], error
    assert words in error["details"][field], error["details"][field]
    return error["details"][field]


# ------------------------------------------------------------------ amounts


@pytest.mark.parametrize("amount, words", [
    ("1e999999", "not a decimal number"),
    ("1E5", "not a decimal number"),
    ("NaN", "not a decimal number"),
    ("Infinity", "not a decimal number"),
    ("-5", "negative"),
    ("5,000", "not a decimal number"),
    ("0x10", "not a decimal number"),
    ("５０００", "not a decimal number"),  # full-width digits
    (str(2**63), "above the maximum"),
    (2**63, "above the maximum"),
    ("1000000000000000", "above the maximum"),
    ("9" * 200, "too long"),
    (12.5, "more decimals"),  # a JSON number is read exactly, then held to the currency
])
def test_a_hostile_amount_is_refused_naming_it_in_microseconds(api, app, amount, words):
    started = time.process_time()
    response = api.post("/requests", {**REQUEST, "amount": amount})
    assert time.process_time() - started < 1.0
    field_refused(response, "amount", words)
    assert stored(app, PaymentRequest) == 0


@pytest.mark.parametrize("raw", [
    b'{"amount": 1e999999, "currency": "UGX"}',
    b'{"amount": ' + b"9" * 60000 + b', "currency": "UGX"}',
    b'{"amount": -0.0, "currency": "UGX"}',
])
def test_a_hostile_json_number_as_amount_is_refused_naming_it(api, app, raw):
    field_refused(api.post("/requests", raw=raw), "amount")
    assert stored(app, PaymentRequest) == 0


def test_the_maximum_amount_is_accepted_and_one_minor_unit_more_is_not(api):
    top = money.to_decimal_string(money.MAX_MINOR, "USD")
    assert top == "9999999999999.99"
    created = api.post("/requests", {**REQUEST, "currency": "USD", "amount": top})
    assert created.status_code == 201 and created.get_json()["amount"] == top
    field_refused(api.post("/requests", {**REQUEST, "currency": "USD", "amount": "10000000000000.00"}),
                  "amount", "above the maximum of 9999999999999.99 USD")


def test_the_currency_decides_the_decimals(api):
    assert api.post("/requests", {**REQUEST, "currency": "KWD", "amount": "12.345"}).get_json()["amount"] == "12.345"
    field_refused(api.post("/requests", {**REQUEST, "currency": "UGX", "amount": "12.5"}), "amount", "more decimals")
    assert api.post("/requests", {**REQUEST, "currency": "UGX", "amount": "12.000"}).get_json()["amount"] == "12"


@pytest.mark.parametrize("currency", ["XYZ", "XXX", "XAU", "ÜGX", "UG\u0000", "usdollars"])
def test_a_currency_not_in_iso_4217_is_refused(api, app, currency):
    field_refused(api.post("/requests", {**REQUEST, "currency": currency}), "currency")
    assert stored(app, PaymentRequest) == 0


@pytest.mark.parametrize("currency", ["UGX", "KES", "PKR", "USD", "EUR", "ITX", "ZWG"])
def test_the_currencies_we_support_are_kept(api, currency):
    assert api.post("/requests", {**REQUEST, "currency": currency.lower()}).status_code == 201


# ------------------------------------------------------------------ times, cursors, ids


@pytest.mark.parametrize("received_at", [
    "0001-01-01T00:00:00+03:00", "9999-12-31T23:59:59-05:00", "1999-12-31T23:59:59+00:00",
    "2026-06-14T12:00:00" + "0" * 10000,
])
def test_a_received_at_out_of_range_is_refused_naming_it(api, app, received_at):
    field_refused(api.post("/payments", {"source_ref": "bank-1", "amount": "5000", "received_at": received_at}),
                  "received_at")
    assert stored(app, Payment) == 0


@pytest.mark.parametrize("cursor", [
    encode_cursor(BIG_ID), encode_cursor(0), encode_cursor(-1), "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
    "!!!!", "%F0%9F%98%80", "A" * 5000, "MQ" + "=" * 50,
])
@pytest.mark.parametrize("path", ["/requests", "/payments", "/admin/unmatched-payments"])
def test_a_forged_cursor_is_a_422_naming_it(api, path, cursor):
    field_refused(api.get(f"{path}?cursor={cursor}"), "cursor")


def test_a_cursor_the_api_gave_out_still_works(api):
    for n in range(3):
        api.post("/payments", {"source_ref": f"bank-{n}", "amount": "100"})
    first = api.get("/payments?limit=2").get_json()
    rest = api.get(f"/payments?limit=2&cursor={first['next_cursor']}").get_json()
    assert len(first["data"]) == 2 and len(rest["data"]) == 1


@pytest.mark.parametrize("limit", ["99999999999999999999999999", "-1", "0", "1e3", "½"])
def test_a_bad_page_limit_is_a_422_naming_it(api, limit):
    field_refused(api.get(f"/payments?limit={limit}"), "limit")


def test_ids_past_a_64_bit_key_are_not_found(api, client, login_as):
    assert api.get(f"/payments/{BIG_ID}").status_code == 404
    assert api.get(f"/payments/{'9' * 5000}").status_code == 404
    assert api.post(f"/admin/payments/{BIG_ID}/link", {"reference": "PW-AAAAAA"}).status_code == 404
    login_as("viewer")
    assert client.get(f"/payments/{BIG_ID}").status_code == 404


def test_a_payment_id_past_a_64_bit_key_in_a_body_is_a_422(api, make_request):
    reference = make_request().reference
    for payment_id in (BIG_ID, 10**40, "9" * 100):
        field_refused(api.post(f"/admin/requests/{reference}/confirm", {"payment_id": payment_id}), "payment_id")


# ------------------------------------------------------------------ JSON shape, body, meta


def test_json_nested_thousands_deep_is_a_422_not_a_500(api, app):
    deep = b"[" * 5000 + b"]" * 5000
    field_refused(api.post("/requests", raw=deep), "body", "nested deeper")
    field_refused(api.post("/requests", raw=b'{"meta": ' + deep + b"}"), "body", "nested deeper")
    field_refused(api.post("/requests", raw=b'{"meta":' + b'{"a":' * 40 + b"1" + b"}" * 41), "meta", "nested deeper")
    # With an Idempotency-Key the body is checked before the idempotency record reads it.
    field_refused(api.post("/payments", raw=deep, headers={"Idempotency-Key": "deep-1"}), "body")
    assert stored(app, PaymentRequest) == stored(app, IdempotencyRecord) == 0


def test_a_body_over_the_limit_is_413_in_the_error_format(api, app):
    response = api.post("/requests", {**REQUEST, "meta": {"blob": "x" * 10_000_000}})
    assert response.status_code == 413
    body = response.get_json()
    assert body["success"] is False and body["error"]["code"] == "request_entity_too_large"
    assert stored(app, PaymentRequest) == 0


def test_meta_is_bounded_in_size_and_shape(api, app):
    field_refused(api.post("/requests", {**REQUEST, "meta": {"blob": "x" * (MAX_META + 1)}}), "meta", "bytes")
    field_refused(api.post("/requests", {**REQUEST, "meta": {"paywatch_gateway": {"collect": True}}}), "meta",
                  "Paywatch's own")
    field_refused(api.post("/requests", raw=b'{"amount": "5", "meta": {"a": 1e999}}'), "meta", "finite")
    field_refused(api.post("/requests", raw=b'{"amount": "5", "meta": {"a\\u0000": 1}}'), "meta")
    field_refused(api.post("/requests", {**REQUEST, "meta": {"k" * 101: 1}}), "meta", "100 characters")
    assert stored(app, PaymentRequest) == 0
    kept = api.post("/requests", raw=b'{"amount": "5", "meta": {"order": 17, "price": 12.50, "tags": ["a"]}}')
    assert kept.get_json()["meta"] == {"order": 17, "price": "12.50", "tags": ["a"]}


@pytest.mark.parametrize("field, value, words", [
    ("customer_name", "Jane\u0000Doe", "NUL"),
    ("customer_name", "Jane\u001b[31m", "U+001B"),
    ("customer_name", "Jane\nDoe", "U+000A"),
    ("customer_name", "x" * 201, "at most 200"),
    ("customer_name", "\ud800", "surrogate"),
    ("reference", "ABC\u0000", "NUL"),
])
def test_text_with_control_characters_or_too_long_is_refused_naming_it(api, app, field, value, words):
    field_refused(api.post("/requests", {**REQUEST, field: value}), field, words)
    assert stored(app, PaymentRequest) == 0


def test_a_note_keeps_its_line_breaks_but_no_other_control_character(api, app):
    body = {"source_ref": "sms-7", "amount": "5000"}
    assert api.post("/payments", {**body, "note": "line one\n\tline two"}).get_json()["note"] == "line one\n\tline two"
    field_refused(api.post("/payments", {**body, "source_ref": "sms-8", "note": "bell\u0007"}), "note", "U+0007")
    field_refused(api.post("/payments", {**body, "source_ref": "sms\u0000-9"}), "source_ref")
    assert stored(app, Payment) == 1


def test_query_strings_and_headers_with_a_nul_are_refused_naming_them(api):
    field_refused(api.get("/payments?source=%00"), "source")
    field_refused(api.get("/requests?status=paid%00"), "status")
    field_refused(api.get("/requests/PW-%00"), "path")
    field_refused(api.get("/payments?source=" + "s" * 101), "source", "at most 100")
    field_refused(api.post("/requests", REQUEST, headers={"Idempotency-Key": "key\u0001"}), "Idempotency-Key")


# ------------------------------------------------------------------ staff forms and filters


def error_next_to(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*>\s*<small class="error">([^<]*)<', page)
    assert found, f"no error shown next to {name}"
    return found.group(1)


def test_the_request_form_refuses_hostile_values_next_to_each_field(client, auth, login_as, app):
    login_as("staff")
    for fields, name, words in [
        ({"amount": "1e999999"}, "amount", "is not a number"),
        ({"amount": "9" * 100000}, "amount", "too long"),
        ({"amount": "10000000000000000"}, "amount", "above the maximum"),
        ({"currency": "XYZ"}, "currency", "not an ISO 4217"),
        ({"customer_name": "Jane\u001b"}, "customer_name", "control character"),
    ]:
        started = time.process_time()
        token = auth.csrf_token("/requests/new")
        response = client.post("/requests/", data={"csrf_token": token, "amount": "5000", "currency": "UGX", **fields})
        assert time.process_time() - started < 1.0
        assert response.status_code == 400, fields
        assert words in error_next_to(response.get_data(as_text=True), name), fields
    token = auth.csrf_token("/requests/new")
    nul = client.post("/requests/", data={"csrf_token": token, "amount": "5000", "currency": "UGX",
                                          "customer_name": "Ja\u0000ne"})
    assert nul.status_code == 400 and "NUL" in nul.get_data(as_text=True)
    assert stored(app, PaymentRequest) == 0


def test_the_payment_form_bounds_its_time_and_texts(client, auth, login_as, app):
    login_as("staff")
    for fields, name, words in [
        ({"received_at": "0001-01-01T00:00"}, "received_at", "between 2000-01-01"),
        ({"received_at": "1999-12-31T23:00"}, "received_at", "between 2000-01-01"),
        ({"received_at": "9999-12-31T23:59"}, "received_at", "in the future"),
        ({"note": "bell\u0007"}, "note", "control character"),
        ({"amount": "-5"}, "amount", "negative"),
    ]:
        token = auth.csrf_token("/payments/new")
        response = client.post("/payments/", data={"csrf_token": token, "amount": "5000", "currency": "UGX", **fields})
        assert response.status_code == 400, fields
        assert words in error_next_to(response.get_data(as_text=True), name), fields
    token = auth.csrf_token("/payments/new")
    ok = client.post("/payments/", data={"csrf_token": token, "amount": "5000", "currency": "UGX",
                                         "evidence": "SMS:\n\tYou have received UGX 5,000"})
    assert ok.status_code == 302
    assert stored(app, Payment) == 1


@pytest.mark.parametrize("query, name, words", [
    ("min=1e999999", "min", "is not a number"),
    ("amount=" + "9" * 5000, "amount", "too long"),
    ("from=0001-01-01", "from", "between 2000-01-01"),
    ("to=9999-12-31", "to", "between 2000-01-01"),
    ("currency=XYZ", "currency", "ISO 4217"),
    ("q=%1b%5b31m", "q", "control character"),
])
@pytest.mark.parametrize("page", ["/payments/", "/requests/"])
def test_list_filters_say_what_is_wrong_next_to_the_filter(client, login_as, page, query, name, words):
    login_as("viewer")
    response = client.get(f"{page}?{query}")
    assert response.status_code == 400
    assert words in error_next_to(response.get_data(as_text=True), name)


@pytest.mark.parametrize("query", [f"before={BIG_ID}", "before=" + "9" * 5000, "before=²", "size=-1"])
def test_a_forged_page_cursor_on_a_list_page_reads_the_first_page(client, login_as, query):
    login_as("viewer")
    assert client.get(f"/payments/?{query}").status_code == 200
    assert client.get(f"/requests/?{query}").status_code == 200


def test_the_audit_log_and_outbox_refuse_dates_out_of_range(client, login_as):
    login_as("admin")
    assert client.get("/audit/?to=9999-12-31").status_code == 400
    assert client.get("/audit/?from=0001-01-01").status_code == 400
    assert client.get("/notifications/?to=9999-12-31").status_code == 400
    assert client.get("/notifications/?from=0001-01-01").status_code == 400


# ------------------------------------------------------------------ mail, portal, gateway

NAYAPAY = "service@nayapay.com"  # a provider sender (jobs/providers/nayapay.toml)


def nested_mail(levels: int, sender: str = NAYAPAY, kind: str = "multipart") -> bytes:
    head = (f"From: {sender}\r\nSubject: Cha-Ching!\r\nMessage-ID: <deep-{kind}@nayapay.com>\r\n"
            "Date: Sun, 14 Jun 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n").encode()
    if kind == "rfc822":
        return head + b"Content-Type: message/rfc822\r\n\r\n" * levels + b"Content-Type: text/plain\r\n\r\nhi\r\n"
    body = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(levels))
    body += b"Content-Type: text/plain\r\n\r\nYou received Rs. 500\r\n"
    return head + body + b"".join(b"--b%d--\r\n" % i for i in reversed(range(levels)))


@pytest.mark.parametrize("kind", ["multipart", "rfc822"])
def test_a_mime_mail_nested_2000_deep_is_kept_as_unreadable_evidence(kind):
    started = time.process_time()
    parsed = parse_message(nested_mail(2000, kind=kind))
    assert time.process_time() - started < 1.0
    assert (parsed.kind, parsed.provider, parsed.amount_minor) == ("unparsed", "nayapay", None)
    assert "MIME parts" in parsed.reasons[-1] and parsed.source_ref == f"<deep-{kind}@nayapay.com>"
    assert read_mail(nested_mail(2000, kind=kind)).problem
    assert parse_message(nested_mail(2000, "friend@example.org", kind)).kind == "ignored"


def test_a_mail_over_the_size_limit_is_kept_unread():
    raw = plain(NAYAPAY, "Cha-Ching!", WHEN, "<big@nayapay.com>", "x" * (MAX_MAIL_BYTES + 1), cte="8bit")
    parsed = parse_message(raw)
    assert parsed.kind == "unparsed" and "over the 2 MiB" in parsed.reasons[-1]


def test_a_200000_digit_amount_in_a_mail_is_not_an_amount():
    text = f"You have received UGX {'9' * 200_000} from Grace Kato, 256772123456 on 2026-06-14 10:00:00. ID: 12345678901."
    started = time.process_time()
    parsed = parse_message(sms_forward("MTNMobMoney", text, WHEN, "<huge@relay.example>", "line"),
                           trusted_forwarders=[SMS_FORWARDER])
    assert time.process_time() - started < 2.0
    assert parsed.kind == "unparsed" and parsed.amount_minor is None
    assert any("not an amount" in reason for reason in parsed.reasons)


def test_the_parsers_cli_explains_a_hostile_mail_instead_of_crashing(runner, tmp_path):
    eml = tmp_path / "deep.eml"
    eml.write_bytes(nested_mail(2000))
    result = runner.invoke(args=["parsers", "test", str(eml)])
    assert result.exit_code == 0, result.output
    assert "kind:        unparsed" in result.output and "MIME parts" in result.output


def test_mail_text_never_carries_a_nul_or_a_lone_surrogate_to_the_database():
    raw = (b"From: " + NAYAPAY.encode() + b"\r\nSubject: Cha\xff\x00ing\r\nMessage-ID: <" + b"m" * 300 + b">\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\x00world\r\n")
    mail = read_mail(raw)
    texts = [mail.subject, *(text for _, text in mail.bodies)]
    assert not any(re.search(r"[\x00\ud800-\udfff]", text) for text in texts)
    parsed = parse_message(raw)
    assert len(parsed.source_ref) <= 255


def portal_config(**extra):
    return portal_table.PortalConfig.from_source({
        "base_url": "http://portal.example", "login": {"url": "/login", "form": "form", "fields": {
            "username": "u", "password": "p"}, "username_env": "U", "password_env": "P",
            "logged_in_selector": "a"}, "list": {"url": "/list", "rows": "tr"},
        "columns": {"external_id": "ID", "created_at": "Created", "amount": "Amount", "status": "Status"},
        "status_map": {"Paid": "paid"}, "currency": "UGX", "timezone": "Africa/Kampala", **extra})


@pytest.mark.parametrize("text", ["9" * 200_000, "UGX 1e999999", "XYZ 5,000", "1000000000000000"])
def test_a_portal_amount_is_read_by_the_same_bounded_rules(text):
    started = time.process_time()
    with pytest.raises(portal_table.Unparseable):
        portal_table.parse_amount(text, portal_config(), None)
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize("cell", ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "1990-01-01T00:00:00"])
def test_a_portal_time_out_of_range_makes_the_row_unparseable(cell):
    with pytest.raises(portal_table.Unparseable, match="between 2000-01-01"):
        portal_table.parse_time(cell, portal_config())


@pytest.mark.parametrize("amount, currency, minor", [
    (5000, "UGX", 5000), (5000.0, "UGX", 5000), (10.1, "USD", 1010), (4999.5, "UGX", None),
    (1e300, "UGX", None), (float("inf"), "UGX", None), (10**40, "UGX", None), (-5, "UGX", None),
    (True, "UGX", None), ("5000", "UGX", None), (None, "UGX", None),
])
def test_the_gateway_amount_is_exact_or_none(amount, currency, minor):
    body = {"id": "t-1", "status": "Success", "amount": amount}
    assert iotec.parse_collection(body).amount_minor(currency) == minor
