"""The JSON API: keys, shapes, validation, idempotency, review calls, and the error format everywhere."""
from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain import apikeys
from webapp.storage import db
from webapp.storage.models import ApiKey, MatchCandidate, Payment, PaymentRequest, utcnow


@pytest.fixture
def key(app):
    with app.app_context(), db.database.connection_context():
        return apikeys.create("integration", "staff")[1]


@pytest.fixture
def api(client, key):
    class Api:
        headers = {"Authorization": f"Bearer {key}"}

        def get(self, path, **kw):
            return client.get("/api/v1" + path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

        def post(self, path, body=None, **kw):
            return client.post("/api/v1" + path, json=body if body is not None else {},
                               headers={**self.headers, **kw.pop("headers", {})}, **kw)

    return Api()


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message", "details", "timestamp"}
    assert body["error"]["code"] == code
    assert datetime.fromisoformat(body["error"]["timestamp"]).utcoffset() is not None
    return body["error"]


REQUEST = {"amount": "5000", "currency": "UGX", "customer_name": "Jane Doe", "customer_phone": "0772123456"}


# ------------------------------------------------------------------ keys and errors


def test_calls_without_a_key_get_401_in_the_error_format(client):
    assert_error(client.get("/api/v1/requests"), 401, "unauthorized")
    assert_error(client.get("/api/v1/requests", headers={"Authorization": "Bearer pw_nope_nope"}), 401, "unauthorized")


def test_a_revoked_key_stops_working(app, api):
    assert api.get("/requests").status_code == 200
    with app.app_context(), db.database.connection_context():
        apikeys.revoke(ApiKey.get().id, actor="test")
    assert_error(api.get("/requests"), 401, "unauthorized")


def test_only_a_hash_of_the_key_is_stored_and_its_use_is_recorded(app, api, key):
    api.get("/requests")
    with app.app_context(), db.database.connection_context():
        row = ApiKey.get()
    assert key not in row.hash and row.hash != key and row.last_used_at is not None


def test_unknown_urls_and_methods_answer_in_the_error_format(api):
    assert_error(api.get("/nothing-here"), 404, "not_found")
    assert_error(api.get("/payments/999"), 404, "not_found")
    assert_error(api.post("/requests/PW-ABCDEF"), 405, "method_not_allowed")


def test_a_server_error_answers_in_the_error_format(app, api):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context(), db.database.connection_context():
        db.database.execute_sql('DROP TABLE "payment" CASCADE' if "postgres" in app.config["PAYWATCH"].database_url
                                else 'DROP TABLE "payment"')
    error = assert_error(api.get("/payments"), 500, "internal_server_error")
    assert "payment" not in error["message"].lower() or "table" not in error["message"].lower()


def test_bad_json_is_a_clear_400(api, client):
    response = client.post("/api/v1/requests", data="{not json", headers={**api.headers, "Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")


# ------------------------------------------------------------------ requests


def test_creating_a_request_returns_it_with_decimal_amounts_and_iso_times(api):
    response = api.post("/requests", REQUEST)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending" and body["reference"].startswith("PW-")
    assert body["amount"] == "5000" and body["currency"] == "UGX"
    assert body["customer"] == {"name": "Jane Doe", "phone": "+256772123456"}
    assert body["agent"] is None and body["voucher"] is None and body["payments"] == []
    created, expires = datetime.fromisoformat(body["created_at"]), datetime.fromisoformat(body["expires_at"])
    assert expires - created == timedelta(minutes=15) and created.utcoffset() is not None
    assert api.get(f"/requests/{body['reference']}").get_json()["reference"] == body["reference"]


def test_two_decimal_currencies_travel_with_two_decimals(api):
    body = api.post("/requests", {**REQUEST, "currency": "PKR", "amount": "1250.5"}).get_json()
    assert body["amount"] == "1250.50"


@pytest.mark.parametrize("change, field, message", [
    ({"amount": "12.345", "currency": "USD"}, "amount", "more decimals"),
    ({"amount": "-5"}, "amount", "negative"),
    ({"amount": "five"}, "amount", "not a decimal"),
    ({"amount": None}, "amount", "required"),
    ({"amount": "0"}, "amount", "more than zero"),
    ({"currency": "US"}, "currency", "three-letter"),
    ({"customer_phone": "12"}, "customer_phone", "not a valid phone"),
    ({"agent_code": "NOBODY"}, "agent_code", "no agent"),
    ({"expires_in_minutes": 0}, "expires_in_minutes", "between"),
    ({"reference": "a b"}, "reference", "letters"),
    ({"meta": [1, 2]}, "meta", "JSON object"),
])
def test_bad_request_fields_are_refused_naming_the_field(api, app, change, field, message):
    error = assert_error(api.post("/requests", {**REQUEST, **change}), 422, "validation_failed")
    assert field in error["details"] and message in error["details"][field]
    with app.app_context(), db.database.connection_context():
        assert PaymentRequest.select().count() == 0


def test_an_idempotent_retry_returns_the_first_response(api, app):
    first = api.post("/requests", REQUEST, headers={"Idempotency-Key": "order-1"})
    again = api.post("/requests", REQUEST, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with app.app_context(), db.database.connection_context():
        assert PaymentRequest.select().count() == 1


def test_reusing_an_idempotency_key_with_another_body_is_409(api):
    api.post("/requests", REQUEST, headers={"Idempotency-Key": "order-2"})
    response = api.post("/requests", {**REQUEST, "amount": "6000"}, headers={"Idempotency-Key": "order-2"})
    assert_error(response, 409, "idempotency_key_reused")


def test_a_refused_request_replays_its_refusal(api):
    bad = {**REQUEST, "amount": "nope"}
    first = api.post("/requests", bad, headers={"Idempotency-Key": "order-3"})
    again = api.post("/requests", bad, headers={"Idempotency-Key": "order-3"})
    assert first.status_code == again.status_code == 422 and again.get_json() == first.get_json()


def test_a_taken_reference_is_409(api):
    api.post("/requests", {**REQUEST, "reference": "INV-100"})
    assert_error(api.post("/requests", {**REQUEST, "reference": "INV-100"}), 409, "reference_taken")


def test_a_request_for_an_unknown_gateway_is_refused_naming_it(api):
    error = assert_error(api.post("/requests", {**REQUEST, "gateway": "hotspot"}), 422, "validation_failed")
    assert "no enabled gateway source named 'hotspot'" in error["message"]


def test_requests_list_pages_with_a_cursor_and_filters_by_status(api):
    references = [api.post("/requests", REQUEST).get_json()["reference"] for _ in range(5)]
    first = api.get("/requests?limit=2").get_json()
    second = api.get(f"/requests?limit=2&cursor={first['next_cursor']}").get_json()
    third = api.get(f"/requests?limit=2&cursor={second['next_cursor']}").get_json()
    seen = [r["reference"] for page in (first, second, third) for r in page["data"]]
    assert seen == list(reversed(references)) and third["has_more"] is False
    assert api.get("/requests?status=paid").get_json()["data"] == []
    assert_error(api.get("/requests?status=bogus"), 422, "validation_failed")


# ------------------------------------------------------------------ payments


def test_a_reported_payment_returns_its_match_outcome(api):
    reference = api.post("/requests", REQUEST).get_json()["reference"]
    response = api.post("/payments", {"source_ref": "bank-1", "amount": "5000", "currency": "UGX",
                                      "sender_name": "DOE JANE", "sender_phone": "+256 772 123456"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "confirmed" and body["request"] == reference and body["confidence"] >= 60
    assert body["parsed"] is True and {"phone", "name"} <= {e["signal"] for e in body["evidence"]}
    assert api.get(f"/requests/{reference}").get_json()["status"] == "paid"
    assert api.get(f"/payments/{body['id']}").get_json()["request"] == reference


def test_a_payment_retry_with_the_same_source_ref_returns_the_first_response(api, app):
    body = {"source_ref": "bank-2", "amount": "5000", "currency": "UGX"}
    first, again = api.post("/payments", body), api.post("/payments", body)
    assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
    with app.app_context(), db.database.connection_context():
        assert Payment.select().count() == 1
    assert_error(api.post("/payments", {**body, "amount": "7000"}), 409, "idempotency_key_reused")


@pytest.mark.parametrize("change, field", [
    ({"source_ref": None}, "source_ref"),
    ({"amount": 12.5}, "amount"),
    ({"received_at": "2026-11-22 10:00"}, "received_at"),
    ({"received_at": "yesterday"}, "received_at"),
    ({"sender_phone": "hello"}, "sender_phone"),
])
def test_bad_payment_fields_are_refused_naming_the_field(api, change, field):
    body = {"source_ref": "bank-3", "amount": "5000", "currency": "UGX", **change}
    error = assert_error(api.post("/payments", body), 422, "validation_failed")
    assert field in error["details"]


def test_a_masked_sender_phone_is_kept_as_evidence(api):
    body = api.post("/payments", {"source_ref": "sms-1", "amount": "5000", "currency": "UGX",
                                  "sender_phone": "0772***456"}).get_json()
    assert body["sender_phone"] == "0772***456"


def test_payments_list_filters_by_status_and_source(api):
    api.post("/payments", {"source_ref": "x-1", "amount": "100", "currency": "UGX"})
    assert [p["source_ref"] for p in api.get("/payments?status=unmatched&source=api").get_json()["data"]] == ["x-1"]
    assert api.get("/payments?status=confirmed").get_json()["data"] == []


# ------------------------------------------------------------------ review calls


def review_case(api):
    one = api.post("/requests", {**REQUEST, "customer_phone": "+256772000001"}).get_json()["reference"]
    two = api.post("/requests", {**REQUEST, "customer_phone": "+256772000002"}).get_json()["reference"]
    payment = api.post("/payments", {"source_ref": "tie-1", "amount": "5000", "currency": "UGX"}).get_json()
    assert payment["status"] == "review"
    return one, two, payment


def test_the_review_queues_list_requests_with_candidates_and_unmatched_payments(api):
    one, two, payment = review_case(api)
    api.post("/payments", {"source_ref": "lost-1", "amount": "123", "currency": "UGX"})
    pending = api.get("/admin/pending-verifications").get_json()["data"]
    assert {r["reference"] for r in pending} == {one, two}
    candidate = pending[0]["candidates"][0]
    assert candidate["payment"]["id"] == payment["id"] and {"amount", "window"} <= {e["signal"] for e in candidate["evidence"]}
    assert [p["source_ref"] for p in api.get("/admin/unmatched-payments").get_json()["data"]] == ["lost-1"]
    detail = api.get(f"/admin/requests/{one}").get_json()
    assert detail["customer"]["phone"] == "+256772000001" and detail["candidates"][0]["score"] >= 0


def test_pending_verifications_pages_newest_first_like_the_other_lists(api, domain):
    """Requests in review, `limit` a page, newest first; `next_cursor` leads to the next page, each request
    with its own candidates; the late payments come with the first page."""
    def seed():
        now = utcnow()
        for i in range(5):
            waiting = PaymentRequest.create(reference=f"PW-PG{i}", amount_minor=7000 + i, requested_minor=7000 + i,
                                            currency="UGX", status="review", expires_at=now + timedelta(hours=1))
            doubtful = Payment.create(source="portal", source_ref=f"pg-{i}", amount_minor=7000 + i, currency="UGX",
                                      received_at=now, status="review", late=i < 3)
            MatchCandidate.create(payment=doubtful, request=waiting, score=40 + i, evidence=[])

    domain(seed)
    first = api.get("/admin/pending-verifications?limit=2").get_json()
    assert [r["reference"] for r in first["data"]] == ["PW-PG4", "PW-PG3"] and first["has_more"] is True
    assert [r["candidates"][0]["payment"]["source_ref"] for r in first["data"]] == ["pg-4", "pg-3"]
    assert [p["source_ref"] for p in first["late_payments"]] == ["pg-2", "pg-1"]  # the newest `limit` late ones
    second = api.get(f"/admin/pending-verifications?limit=2&cursor={first['next_cursor']}").get_json()
    assert [r["reference"] for r in second["data"]] == ["PW-PG2", "PW-PG1"] and second["late_payments"] == []
    last = api.get(f"/admin/pending-verifications?limit=2&cursor={second['next_cursor']}").get_json()
    assert [r["reference"] for r in last["data"]] == ["PW-PG0"] and last["has_more"] is False
    assert last["next_cursor"] is None and last["data"][0]["candidates"][0]["score"] == 40
    whole = api.get("/admin/pending-verifications").get_json()  # 50 a page unless asked
    assert len(whole["data"]) == 5 and whole["has_more"] is False and len(whole["late_payments"]) == 3
    assert_error(api.get("/admin/pending-verifications?limit=201"), 422, "validation_failed")
    assert_error(api.get("/admin/pending-verifications?cursor=nonsense"), 422, "validation_failed")


def test_confirm_through_the_api_pays_the_request(api):
    one, two, payment = review_case(api)
    body = api.post(f"/admin/requests/{two}/confirm").get_json()
    assert body["status"] == "paid" and body["confirmed_payment"] == payment["id"]
    assert api.get(f"/requests/{one}").get_json()["status"] == "pending"
    assert_error(api.post(f"/admin/requests/{two}/confirm"), 409, "nothing_to_review")


def test_reject_through_the_api_needs_a_reason_and_reopens_the_request(api):
    one, two, payment = review_case(api)
    assert_error(api.post(f"/admin/requests/{one}/reject", {}), 422, "validation_failed")
    body = api.post(f"/admin/requests/{one}/reject", {"reason": "different customer"}).get_json()
    assert body["status"] == "pending" and body["rejected_payment"]["status"] == "review"


def test_reject_tells_the_customer_only_when_asked_and_never_the_reason(api, app):
    from webapp.storage.models import Notification

    one, two, payment = review_case(api)
    api.post(f"/admin/requests/{one}/reject", {"reason": "Wrong customer — amount coincidence"})
    error = assert_error(api.post(f"/admin/requests/{two}/reject", {"reason": "short", "message": "Hi"}),
                         422, "validation_failed")
    assert "message" in error["details"]
    error = assert_error(api.post(f"/admin/requests/{two}/reject", {"reason": "short", "notify_customer": "yes"}),
                         422, "validation_failed")
    assert "notify_customer" in error["details"]
    body = api.post(f"/admin/requests/{two}/reject", {"reason": "short by 500", "notify_customer": True,
                                                      "message": "Your transfer was 500 short; please call us."})
    assert body.status_code == 200, body.get_json()
    with app.app_context(), db.database.connection_context():
        [row] = Notification.select().where(Notification.kind == "payment_rejected_customer")
        assert row.phone == "+256772000002" and row.context == {"template": "Your transfer was 500 short; please call us."}


def test_reject_refuses_to_tell_a_customer_about_a_strangers_money(api):
    one = api.post("/requests", {**REQUEST, "customer_phone": "+256772000001"}).get_json()["reference"]
    api.post("/requests", {**REQUEST, "customer_phone": "+256772000002"})
    stranger = api.post("/payments", {"source_ref": "s-1", "amount": "5000", "currency": "UGX",
                                      "sender_phone": "+256701999999"}).get_json()
    assert stranger["status"] == "review"
    error = assert_error(api.post(f"/admin/requests/{one}/reject", {
        "reason": "stranger", "notify_customer": True, "payment_id": stranger["id"]}), 422, "not_the_customers_money")
    assert "+256701999999" in error["message"]


def test_the_same_transaction_reported_twice_is_one_payment_and_says_so(api):
    first = api.post("/payments", {"source_ref": "bank-9", "amount": "5000", "currency": "UGX",
                                   "transaction_id": "QK12ABC345", "provider": "mpesa"})
    again = api.post("/payments", {"source_ref": "bank-10", "amount": "5000", "currency": "UGX",
                                   "transaction_id": "QK12-ABC-345"})
    assert first.status_code == 201 and again.status_code == 200
    body = again.get_json()
    assert body["id"] == first.get_json()["id"] and body["sighting"] is True
    assert body["provider"] == "mpesa"
    assert [s["source_ref"] for s in api.get(f"/payments/{body['id']}").get_json()["also_seen"]] == ["bank-10"]


def test_link_through_the_api(api):
    reference = api.post("/requests", {**REQUEST, "customer_phone": "+256772000009"}).get_json()["reference"]
    lost = api.post("/payments", {"source_ref": "lost-2", "amount": "4000", "currency": "UGX"}).get_json()
    assert_error(api.post(f"/admin/payments/{lost['id']}/link", {"reference": reference}), 422, "amount_mismatch")
    assert_error(api.post(f"/admin/payments/{lost['id']}/link", {"reference": "PW-NOPE99"}), 404, "not_found")
    assert_error(api.post("/admin/payments/999999/link", {"reference": reference}), 404, "not_found")


def test_received_at_is_read_with_its_offset(api):
    body = api.post("/payments", {"source_ref": "tz-1", "amount": "100", "currency": "UGX",
                                  "received_at": "2026-11-22T15:00:00+03:00"}).get_json()
    assert datetime.fromisoformat(body["received_at"]) == datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_api_health_reports_each_part(api):
    body = api.get("/health").get_json()
    assert {"database", "redis", "workers", "scheduler"} <= set(body)
