"""The request page shows what Paywatch sent about the request: its WhatsApp messages (status, acks,
retry), its webhook deliveries, the payment page link, and its timeline."""
import re
from datetime import datetime, timezone

from playhouse.migrations import Runner

from webapp.domain import ledger
from webapp.storage import db
from webapp.storage.models import Notification, Payment, PaymentRequest, WebhookDelivery, WebhookEndpoint, utcnow

UTC = timezone.utc
MIGRATION = "0075_webhook_delivery_request"


def _message(request, key, status, *, ack=None, sent_at=None, error=None, phone="+256772123456"):
    return Notification.create(kind="pending_alert_customer", phone=phone, body=f"Hello {key}", request=request,
                               status=status, ack=ack, sent_at=sent_at, last_error=error, dedupe_key=key,
                               due_at=datetime(2026, 3, 1, 21, 30, tzinfo=UTC), attempts=3 if error else 1)


def _row(page: str, row_id: str) -> str:
    return page.split(f'id="{row_id}"')[1].split("</tr>")[0]


def test_the_page_lists_the_requests_messages_with_status_acks_and_local_times(client, login_as, make_request, domain):
    mine, other = make_request(customer_phone="+256772123456"), make_request(6000)

    def seed():
        sent_at = datetime(2026, 3, 1, 21, 31, tzinfo=UTC)  # 00:31 on 2 March in Kampala
        return (_message(mine.id, "read", "sent", ack=3, sent_at=sent_at),
                _message(mine.id, "server", "sent", ack=1, sent_at=sent_at),
                _message(mine.id, "failed", "failed", error="the phone is not on WhatsApp"),
                _message(other.id, "theirs", "failed"))

    read, server, failed, theirs = domain(seed)
    login_as("viewer")
    page = client.get(f"/requests/{mine.reference}").get_data(as_text=True)
    section = page.split('id="request-messages"')[1].split("</section>")[0]
    shown = re.findall(r'<tr id="message-(\d+)"', section)
    assert shown[:3] == [str(failed.id), str(server.id), str(read.id)]  # newest first
    # Every message about this request (the ledger's own included), none of another's.
    assert sorted(map(int, shown)) == domain(lambda: sorted(
        n.id for n in Notification.select().where(Notification.request == mine.id)))
    assert f'id="message-{theirs.id}"' not in section
    row = _row(section, f"message-{read.id}")
    assert "pending alert customer" in row and "+256772123456" in row and 'class="ack ack-3">read<' in row
    assert "2026-03-02 00:31" in row and "Hello read" in row  # the configured zone (Kampala, UTC+3)
    assert 'class="ack ack-1">sent<' in _row(section, f"message-{server.id}")
    failed_row = _row(section, f"message-{failed.id}")
    assert "the phone is not on WhatsApp" in failed_row and "<td>3</td>" in failed_row
    assert "Retry" not in section  # viewers do not retry
    assert f'href="/notifications/?reference={mine.reference}"' in section


def test_staff_retry_a_failed_message_from_the_request_page(client, auth, login_as, make_request, domain):
    mine, other = make_request(customer_phone="+256772123456"), make_request(6000)
    failed, sent, theirs = domain(lambda: (_message(mine.id, "f", "failed", error="timeout"),
                                           _message(mine.id, "s", "sent", ack=2, sent_at=utcnow()),
                                           _message(other.id, "t", "failed")))
    login_as("staff")
    page = client.get(f"/requests/{mine.reference}").get_data(as_text=True)
    assert f'id="retry-message-{failed.id}"' in page and f'id="retry-message-{sent.id}"' not in page
    token = auth.csrf_token(f"/requests/{mine.reference}")

    response = client.post(f"/requests/{mine.reference}/messages/{failed.id}/retry", data={"csrf_token": token})
    assert response.status_code == 302 and response.location.endswith(f"/requests/{mine.reference}#request-messages")
    again = domain(Notification.get_by_id, failed.id)
    assert again.status == "pending" and again.attempts == 0
    page = client.get(f"/requests/{mine.reference}").get_data(as_text=True)
    assert "queued again" in page
    # The retry is in the request's timeline, by the staff member, on that message.
    retried = page.split('id="timeline"')[1].split('data-action="notification.retried"')[1].split("</li>")[0]
    assert f"on notification:{failed.id}" in retried
    # A message that is not failed, or of another request, is not retried here.
    assert client.post(f"/requests/{mine.reference}/messages/{sent.id}/retry",
                       data={"csrf_token": token}).status_code == 409
    assert client.post(f"/requests/{mine.reference}/messages/{theirs.id}/retry",
                       data={"csrf_token": token}).status_code == 404
    assert domain(Notification.get_by_id, theirs.id).status == "failed"
    assert client.post(f"/requests/{mine.reference}/messages/{failed.id}/retry").status_code == 400  # no CSRF token


def test_viewers_cannot_retry(client, auth, login_as, make_request, domain):
    mine = make_request()
    failed = domain(_message, mine.id, "f", "failed")
    login_as("viewer")
    token = auth.csrf_token(f"/requests/{mine.reference}")
    assert client.post(f"/requests/{mine.reference}/messages/{failed.id}/retry",
                       data={"csrf_token": token}).status_code == 403
    assert domain(Notification.get_by_id, failed.id).status == "failed"


def test_webhook_deliveries_show_once_an_endpoint_listens(client, auth, login_as, make_request, domain):
    before = make_request(4000)
    login_as("admin")
    assert 'id="request-webhooks"' not in client.get(f"/requests/{before.reference}").get_data(as_text=True)
    endpoint = domain(WebhookEndpoint.create, url="https://hooks.example.com/paywatch?token=s3cret", secret="whsec_x",
                      description="")
    request = make_request(5000)
    domain(ledger.cancel_request, request.reference, actor="test")
    deliveries = domain(lambda: list(WebhookDelivery.select().where(WebhookDelivery.request == request.id)
                                     .order_by(WebhookDelivery.id)))
    assert [d.event for d in deliveries] == ["request.created", "request.cancelled"]

    page = client.get(f"/requests/{request.reference}").get_data(as_text=True)
    section = page.split('id="request-webhooks"')[1].split("</section>")[0]
    assert re.findall(r'<tr id="delivery-(\d+)"', section) == [str(d.id) for d in reversed(deliveries)]
    row = _row(section, f"delivery-{deliveries[0].id}")
    assert "<code>request.created</code>" in row and "pending" in row and "<td>0</td>" in row
    assert f'href="/settings/webhooks/{endpoint.id}">hooks.example.com</a>' in row and "s3cret" not in page
    # Viewers read the host, without the admin's link.
    auth.logout()
    login_as("viewer")
    viewer_page = client.get(f"/requests/{request.reference}").get_data(as_text=True)
    assert "hooks.example.com" in viewer_page and "/settings/webhooks/" not in viewer_page


def test_the_page_offers_the_payment_link_to_copy_and_its_timeline(client, login_as, make_request, domain):
    request = make_request()
    domain(ledger.cancel_request, request.reference, actor="test", reason="typo")
    login_as("viewer")
    page = client.get(f"/requests/{request.reference}").get_data(as_text=True)
    link = f"http://localhost/pay/{request.pay_token}"
    link_section = page.split('id="pay-link"')[1].split("</section>")[0]
    assert f'value="{link}" id="pay-url-text"' in link_section
    assert 'data-copy="#pay-url-text"' in link_section and f'href="{link}" id="pay-url"' in link_section
    timeline = page.split('id="timeline"')[1].split("</section>")[0]
    assert re.findall(r'data-action="([\w.]+)"', timeline) == ["request.cancelled", "request.created"]
    assert "No WhatsApp message about this request." in page
    assert page.count("<dt>Paid</dt>") == 0 and page.count("<dt>Flag</dt>") == 0


def test_the_migration_links_existing_deliveries_to_their_requests(app, domain):
    def seed():
        endpoint = WebhookEndpoint.create(url="https://hooks.example.com/", secret="whsec_x")
        now = utcnow()
        first = PaymentRequest.create(reference="PW-ONE", amount_minor=1, requested_minor=1, currency="UGX",
                                      expires_at=now)
        second = PaymentRequest.create(reference="PW-TWO", amount_minor=2, requested_minor=2, currency="UGX",
                                       expires_at=now)
        payment = Payment.create(source="mailbox", source_ref="m1", amount_minor=2, currency="UGX", received_at=now,
                                 request=second, status="confirmed")
        return endpoint, first, second, payment

    endpoint, first, second, payment = domain(seed)
    keys = {"a": f"request.created:request:{first.id}:{endpoint.id}",
            "b": f"claim.received:request:PW-TWO:claim:7:{endpoint.id}",
            "c": f"payment.reversed:payment:{payment.id}:{endpoint.id}",
            "d": f"request.paid:request:999999:{endpoint.id}",  # a request since deleted
            "e": f"payment.received:payment:424242:{endpoint.id}"}

    def migrate_back_and_forth():
        runner = Runner(db.database.obj, str(db.MIGRATIONS))
        runner.down(MIGRATION)
        for key, dedupe in keys.items():
            db.database.execute_sql(
                'INSERT INTO "webhook_delivery" ("endpoint_id", "event", "event_id", "payload", "status", "attempts", '
                '"next_attempt_at", "dedupe_key", "created_at") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)'
                .replace("%s", db.database.param),
                [endpoint.id, dedupe.split(":")[0], key, "{}", "delivered", 1, datetime(2026, 1, 1),
                 dedupe, datetime(2026, 1, 1)])
        runner.up()
        return dict(WebhookDelivery.select(WebhookDelivery.event_id, WebhookDelivery.request).tuples())

    linked = domain(migrate_back_and_forth)
    assert linked == {"a": first.id, "b": second.id, "c": second.id, "d": None, "e": None}
