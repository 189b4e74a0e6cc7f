"""The public payment page /pay/<token>: its link, what it shows, its live status without
JavaScript, the "I've paid" claim (matched / unmatched), its settings, and its rate limits."""
import re

import pytest

from tests.ledger_helpers import new_request, pay
from webapp.domain import apikeys, claims, message_texts, paypage
from webapp.storage import db
from webapp.storage.models import (
    Claim,
    ClaimStatus,
    Event,
    MatchCandidate,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RequestStatus,
)

METHODS = [{"kind": "mobile_money", "label": "MTN MoMo", "number": "0772000111", "account": "Acme Ltd",
            "instructions": "Send {amount} to {number} and write {reference} as the reason.", "qr": "{number}"}]


@pytest.fixture
def page_settings(domain):
    return domain(paypage.save_page_settings, "Acme Hotspot", "", METHODS, actor="test")


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _claim(client, token: str, code: str, phone: str = "", **headers):
    page = client.get(f"/pay/{token}").get_data(as_text=True)
    return client.post(f"/pay/{token}/claim", data={"csrf_token": _csrf(page), "transaction_id": code, "phone": phone},
                       headers=headers)


def test_every_request_gets_its_own_unguessable_token_and_the_api_reads_its_pay_url(app, client, domain):
    key = domain(apikeys.create, "shop", "staff")[1]
    response = client.post("/api/v1/requests", json={"amount": "5000", "currency": "UGX", "customer_name": "Jane"},
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    stored = domain(PaymentRequest.get, PaymentRequest.reference == body["reference"])
    assert len(stored.pay_token) >= 32 and body["reference"] not in stored.pay_token
    assert body["pay_url"] == f"http://localhost/pay/{stored.pay_token}"  # no PAYWATCH_PUBLIC_URL: the host asked
    other = domain(new_request)
    assert other.pay_token != stored.pay_token
    assert client.get(f"/pay/{stored.reference}").status_code == 404  # the reference alone opens nothing
    other_last = "y" if stored.pay_token.endswith("x") else "x"  # a token one character off (1 in 64 ends in x)
    assert client.get(f"/pay/{stored.pay_token[:-1]}{other_last}").status_code == 404


def test_pay_url_is_absolute_under_the_public_url_and_a_template_variable(environ, redis_conn, domain):
    from webapp import create_app
    from webapp.config import load_settings

    app = create_app(load_settings({**environ, "PAYWATCH_PUBLIC_URL": "https://pay.acme.example/"}))
    with app.app_context(), db.database.connection_context():
        db.upgrade()
        request = new_request()
        context = message_texts.context_of(request, None, app.config["PAYWATCH"].zone)
        text = message_texts.render_text("Pay here: {{ pay_url }}", context)
    assert text == f"Pay here: https://pay.acme.example/pay/{request.pay_token}"
    message_texts.check("{{ pay_url }}")  # staff may save a template that uses it
    with app.test_request_context():
        from webapp.api.shapes import request_json

        with db.database.connection_context():
            assert request_json(request)["pay_url"] == f"https://pay.acme.example/pay/{request.pay_token}"
    db.database.obj.close()


def test_the_page_shows_who_asks_the_exact_amount_the_reference_and_how_to_pay(client, domain, page_settings):
    request = domain(new_request, 50000)
    response = client.get(f"/pay/{request.pay_token}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    assert "Acme Hotspot" in page and "UGX 50,000" in page and request.reference in page
    assert "Send UGX 50,000 to 0772000111 and write " + request.reference in page
    assert '<svg' in page and 'class="qr"' in page and "Scan to pay: 0772000111" in page
    assert 'data-state="waiting"' in page and 'id="pay-countdown"' in page


def test_staff_find_the_payment_page_link_on_the_request_page(client, domain, login_as):
    request = domain(new_request, 5000)
    login_as("viewer")
    page = client.get(f"/requests/{request.reference}").get_data(as_text=True)
    assert f'href="http://localhost/pay/{request.pay_token}" id="pay-url"' in page


def test_without_javascript_the_page_refreshes_itself_and_offers_check_again_until_paid(client, domain):
    request = domain(new_request, 5000)
    page = client.get(f"/pay/{request.pay_token}").get_data(as_text=True)
    assert '<noscript><meta http-equiv="refresh"' in page
    assert f'href="/pay/{request.pay_token}" id="pay-check-again"' in page
    assert 'hx-trigger="every 3s"' in page
    assert client.get(f"/pay/{request.pay_token}/status?seen=waiting").status_code == 204  # unchanged: no swap
    domain(pay, 5000, note=request.reference)  # the reference in the note: confirmed through the ledger
    page = client.get(f"/pay/{request.pay_token}").get_data(as_text=True)
    assert 'data-state="paid"' in page and "Paid, thank you" in page
    assert "http-equiv=\"refresh\"" not in page and "hx-trigger" not in page  # ended: polling stops
    status = client.get(f"/pay/{request.pay_token}/status?seen=waiting")
    assert status.status_code == 200 and 'data-state="paid"' in status.get_data(as_text=True)
    assert "hx-get" not in status.get_data(as_text=True)


def test_a_claim_naming_a_payment_seen_puts_it_in_review_for_the_request_and_confirms_nothing(client, domain):
    request = domain(new_request, 5000)
    domain(new_request, 5000)  # two requests for the same amount: the payment alone is a tie
    seen = domain(pay, 5000, transaction_id="QK12-AB34CD").payment
    assert domain(Payment.get_by_id, seen.id).status in (PaymentStatus.REVIEW, PaymentStatus.UNMATCHED)
    response = _claim(client, request.pay_token, "qk12ab34cd", "0772123456")
    assert response.status_code == 303
    claim = domain(Claim.get, Claim.request == request.id)
    assert claim.status == ClaimStatus.MATCHED and claim.payment_id == seen.id and claim.phone == "+256772123456"
    payment = domain(Payment.get_by_id, seen.id)
    assert payment.status == PaymentStatus.REVIEW  # never confirmed by a claim
    candidate = domain(MatchCandidate.get, MatchCandidate.payment == seen.id, MatchCandidate.request == request.id)
    assert any(e["signal"] == "claim" for e in candidate.evidence)
    assert domain(PaymentRequest.get_by_id, request.id).status == RequestStatus.REVIEW
    assert "claim.received" in domain(lambda: [e.action for e in Event.select()])
    page = client.get(f"/pay/{request.pay_token}").get_data(as_text=True)
    assert "We are checking your payment now" in page and 'data-state="review"' in page


def test_a_claim_nothing_matches_waits_in_the_review_queue_and_the_sources_are_asked_again(
        client, domain, redis_conn, login_as, run_worker, app):
    from webapp.domain import sources

    domain(sources.save, {"kind": "mailbox", "name": "inbox", "config": {
        "host": "127.0.0.1", "username_env": "U", "password_env": "P"}}, actor="test")
    request = domain(new_request, 5000)
    assert _claim(client, request.pay_token, "RX99ZZ1234").status_code == 303
    claim = domain(Claim.get, Claim.request == request.id)
    assert claim.status == ClaimStatus.REVIEW and claim.payment_id is None
    details = " | ".join(e["detail"] for e in claim.evidence)
    assert "no payment seen with code RX99ZZ1234" in details and "asked again: mailbox inbox" in details
    queued = [job.description for job in _queued(redis_conn)]
    assert "mailbox_fetch" in queued and queued.count("claim_check") == 2  # checked again at 20 s and 2 min
    assert domain(lambda: [c.id for c in claims.open_claims()]) == [claim.id]
    login_as("staff")
    review = client.get("/review/").get_data(as_text=True)
    assert f'id="claim-{claim.id}"' in review and "no payment seen with code RX99ZZ1234" in review
    detail = client.get(f"/requests/{request.reference}")
    assert detail.status_code == 200 and "claim.received" in detail.get_data(as_text=True)  # on its timeline
    # The payment arrives later (the mailbox fetch brought it): the claim's next check finds it.
    other = domain(new_request, 5000)
    seen = domain(pay, 5000, transaction_id="RX99ZZ1234").payment
    redis_conn.flushdb()  # the mailbox pass (no server here) and the delayed checks: replaced by one check now
    with app.app_context():
        from webapp.plumbing import jobqueue

        jobqueue.enqueue("claim_check", claim.id)
    run_worker(queues=("default",))  # a real worker runs jobs.claims.check
    assert domain(Claim.get_by_id, claim.id).status == ClaimStatus.MATCHED
    assert domain(Payment.get_by_id, seen.id).status == PaymentStatus.REVIEW
    assert other.id != request.id
    assert f'id="claim-{claim.id}"' not in client.get("/review/").get_data(as_text=True)  # it left the claims list


def _queued(redis_conn):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    jobs = []
    for name in ("fast", "default", "slow"):
        queue = Queue(name, connection=redis_conn)
        jobs += queue.jobs
        jobs += [queue.fetch_job(i) for i in ScheduledJobRegistry(queue=queue).get_job_ids()]
    return [j for j in jobs if j is not None]


@pytest.mark.parametrize("code, phone, message", [
    ("", "", "enter the transaction code"),
    ("1234", "", "does not look like a transaction code"),
    ("QK12AB34CD", "12", "phone"),
])
def test_a_bad_claim_is_refused_naming_the_field_and_nothing_is_stored(client, domain, code, phone, message):
    request = domain(new_request, 5000)
    response = _claim(client, request.pay_token, code, phone)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).lower() or message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert domain(Claim.select().count) == 0


def test_a_paid_request_takes_no_claims(client, domain):
    request = domain(new_request, 5000)
    domain(pay, 5000, note=request.reference)
    page = client.get(f"/pay/{request.pay_token}").get_data(as_text=True)
    assert 'id="claim-form"' not in page
    with pytest.raises(claims.ClaimError, match="nothing to pay"):
        domain(lambda: claims.submit(PaymentRequest.get_by_id(request.id), "QK12AB34CD", None, region="UG"))


def test_claims_are_rate_limited_per_client(client, domain):
    request = domain(new_request, 5000)
    codes = [f"QK12AB34C{i}" for i in range(6)]
    statuses = [_claim(client, request.pay_token, code).status_code for code in codes]
    assert statuses == [303] * 5 + [429]  # PAYWATCH_CLAIM_RATE_LIMIT: 5 per 10 minutes
    assert domain(Claim.select().count) == 5
    other_client = client.application.test_client()
    page = other_client.get(f"/pay/{request.pay_token}", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    response = other_client.post(f"/pay/{request.pay_token}/claim", environ_base={"REMOTE_ADDR": "10.0.0.9"},
                                 data={"csrf_token": _csrf(page.get_data(as_text=True)), "transaction_id": "QK12AB34CZ"})
    assert response.status_code == 303  # another client has its own allowance


def test_the_page_is_rate_limited_per_client(environ, redis_conn, domain):
    from webapp import create_app
    from webapp.config import load_settings

    app = create_app(load_settings({**environ, "PAYWATCH_PAY_PAGE_RATE_LIMIT": "3 per minute"}))
    with app.app_context():
        db.upgrade()
    with app.app_context(), db.database.connection_context():
        token = new_request().pay_token
    client = app.test_client()
    statuses = [client.get(f"/pay/{token}").status_code for _ in range(3)] + [client.get(f"/pay/{token}/status").status_code]
    assert statuses == [200, 200, 200, 429]
    db.database.obj.close()


def test_admins_set_the_business_methods_and_logo_and_bad_values_are_named(client, login_as, auth, domain):
    import io

    login_as("admin")
    page = client.get("/settings/payment-page/").get_data(as_text=True)
    form = {"csrf_token": _csrf(page), "business_name": "Acme",
            "method-0-kind": "paybill", "method-0-label": "M-Pesa", "method-0-number": "247247",
            "method-0-account": "{reference}", "method-0-instructions": "Paybill 247247", "method-0-qr": "{bogus}"}
    response = client.post("/settings/payment-page/", data=form)
    assert response.status_code == 400 and "unknown placeholder {bogus}" in response.get_data(as_text=True)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    form.update({"method-0-qr": "{number}#{account}", "logo": (io.BytesIO(png), "logo.png", "image/png")})
    assert client.post("/settings/payment-page/", data=form, content_type="multipart/form-data").status_code == 302
    saved = domain(paypage.page_settings)
    assert saved["business_name"] == "Acme" and saved["logo"].startswith("data:image/png;base64,")
    assert saved["methods"][0]["qr"] == "{number}#{account}"
    request = domain(new_request, 5000)
    view = domain(paypage.view, domain(PaymentRequest.get_by_id, request.id))
    assert view.methods[0].qr_text == f"247247#{request.reference}"
    auth.logout()
    login_as("staff")
    assert client.get("/settings/payment-page/").status_code == 403


def test_the_migration_gives_requests_made_before_it_their_own_tokens(app):
    from playhouse.migrations import Runner

    with db.database.connection_context():
        runner = Runner(db.database.obj, str(db.MIGRATIONS))
        runner.down("0006_notification_delivery_check")  # back to before the payment page
        for reference in ("PW-OLD001", "PW-OLD002"):
            db.database.execute_sql(
                'INSERT INTO "payment_request" ("reference", "amount_minor", "requested_minor", "currency", '
                '"customer_name", "status", "source", "created_at", "expires_at", "meta") '
                f"VALUES ('{reference}', 500, 500, 'UGX', '', 'pending', 'ui', '2026-12-01 10:00:00', "
                "'2026-12-01 10:15:00', '{}')")
        runner.up()
        tokens = [r.pay_token for r in PaymentRequest.select().order_by(PaymentRequest.id)]
    assert len(tokens) == 2 and len(set(tokens)) == 2 and all(paypage.TOKEN_CHARS.match(t) for t in tokens)
