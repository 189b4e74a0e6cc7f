"""A showcase database: realistic, wordy data that makes every staff page show something.

Used by the browser width tests (tests/browser/test_widths.py: long names, long messages and
many filters are what make a page overflow) and by the screenshots tool
(docs/screenshots/take.py). Call `seed(now)` inside an app context with a database connection;
it goes through the domain like staff and the jobs would, and returns what it made, so a caller
can open one page of each kind (a request, a payment, an agent, a rule, a payer …).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from webapp.domain import agents, apikeys, ledger, payers, reminders, sources, vouchers, webhooks
from webapp.storage.models import Notification, PaymentRequest, Role, WebhookEndpoint

CUSTOMERS = [
    ("Nakawunde Christine Margaret Ssekandi-Mukasa", "+256772123401"),
    ("Okello Brian", "+256701234502"),
    ("Grace Achieng Oduya-Wanyama", "+256752345603"),
    ("Mugisha Emmanuel", "+256782456704"),
    ("Namutebi Sarah Nalwoga", "+256712567805"),
    ("Kato Joseph", "+256772678906"),
    ("Atwine Rebecca Tumusiime-Kyomuhendo", "+256703789007"),
    ("Ssemakula Ivan", "+256774890108"),
]
AGENTS = [("Amina Nakato Nabukeera (Kampala Central, Owino Market stall 14)", "+256772000101", "AG-KLA-OWINO-014"),
          ("Brian Okello", "+256772000102", "AG7"),
          ("Christopher Ssekandi", "+256772000103", "AG-ENTEBBE-AIRPORT-RD")]
LONG_NOTE = ("Payment for invoice 2024/11/0347 school fees second term plus uniform and transport, "
             "sent by mother on behalf of the family; please confirm receipt by WhatsApp")


@dataclass
class Showcase:
    """What seed() made; ids and keys for the pages that take one."""

    requests: list[PaymentRequest] = field(default_factory=list)
    paid: PaymentRequest | None = None
    review_payment_id: int | None = None
    unmatched_payment_id: int | None = None
    agent_id: int | None = None
    payer_code: str = ""
    rule_id: int | None = None
    endpoint_id: int | None = None
    voucher_pool: str = ""


def _requests(now: datetime, agent_ids: list[int], made: Showcase) -> None:
    for i, (name, phone) in enumerate(CUSTOMERS):
        request = ledger.create_request(ledger.NewRequest(
            amount_minor=[50_000, 1_250_000, 35_000, 7_500, 480_000, 35_000, 9_999_000, 15_000][i], currency="UGX",
            customer_name=name, customer_phone=phone, agent_id=agent_ids[i % len(agent_ids)] if i % 3 else None,
            source="ui", external_id=f"INV-2024-11-{347 + i:04d}-TERM2-UNIFORM" if i % 2 else None,
            meta={"note": LONG_NOTE} if i == 0 else {},
            expires_in=timedelta(minutes=20) if i == 1 else timedelta(hours=4)),
            actor="showcase", now=now - timedelta(minutes=90 - 7 * i))
        made.requests.append(request)


def _ingest(observation: ledger.PaymentObservation) -> ledger.IngestResult:
    """Money read half a minute after it moved, as a mailbox or portal pass would."""
    return ledger.ingest_payment(observation, now=observation.received_at + timedelta(seconds=30))


def _payments(now: datetime, made: Showcase) -> None:
    first, second, third = made.requests[0], made.requests[1], made.requests[2]
    # Quotes its reference: confirmed by itself.
    _ingest(ledger.PaymentObservation(
        "mailbox", "showcase-1", first.amount_minor, "UGX", now - timedelta(minutes=80),
        sender_name=first.customer_name.upper(), sender_phone=first.customer_phone,
        note=f"{LONG_NOTE} ref {first.reference}", transaction_id="QK12ABC3451", provider="mtn_ug",
        raw=f"You have received UGX {first.amount_minor} from {first.customer_name.upper()} ({first.customer_phone}). "
            f"Reason: {LONG_NOTE} ref {first.reference}. Transaction ID: QK12ABC3451."))
    made.paid = PaymentRequest.get_by_id(first.id)
    # Quotes its reference, but the money moved after the request expired: review, flagged late.
    review = _ingest(ledger.PaymentObservation(
        "portal", "showcase-2", second.amount_minor, "UGX", now - timedelta(minutes=40),
        sender_name="OKELLO B.", note=f"school fees term 2 {second.reference}",
        transaction_id="MP241106.1532.X71209", provider="airtel_ug"))
    made.review_payment_id = review.payment.id
    # Two open requests of this amount and a name like one of them: review, naming both.
    _ingest(ledger.PaymentObservation(
        "sms", "showcase-3", third.amount_minor, "UGX", now - timedelta(minutes=30),
        sender_name="GRACE ACHIENG ODUYA-WANYAMA", note="for the order", transaction_id="TX-99812734551",
        provider="mtn_ug"))
    unmatched = _ingest(ledger.PaymentObservation(
        "mailbox", "showcase-4", 1_234_500, "UGX", now - timedelta(minutes=20),
        sender_name="BWAMBALE KASEREKA MUHINDO-KAMBALE ENTERPRISES LIMITED", sender_phone="+256772999888",
        note=LONG_NOTE, transaction_id="QK99ZZZ0001", provider="mtn_ug",
        raw=("From: MTN MoMo <notifications@mtn.co.ug>\nSubject: Payment received\n\n" + LONG_NOTE + " ") * 3))
    made.unmatched_payment_id = unmatched.payment.id
    _ingest(ledger.PaymentObservation(
        "gateway", "showcase-5", 77_000, "UGX", now - timedelta(minutes=10), sender_name="UNKNOWN SENDER",
        note="", transaction_id="IOTEC-7f3c9a1e-55b2-4d0e-9a61-0f6a3c2b8e11", provider="iotec"))


def _notifications(now: datetime, made: Showcase) -> None:
    statuses = [("sent", None), ("failed", "WhatsApp answered 500: the session is not connected "
                                           "(phone offline since 09:41; reconnect it on the WhatsApp session page)"),
                ("sent", None), ("pending", None), ("cancelled", "the request was paid before the alert was due")]
    for i, request in enumerate(made.requests[:5]):
        status, error = statuses[i]
        Notification.create(
            kind="payment_received" if status == "sent" else "agent_alert", phone=request.customer_phone,
            body=(f"Hello {request.customer_name}, we received UGX {request.amount_minor:,} for {request.reference}. "
                  f"{LONG_NOTE}. Thank you for paying on time — the Paywatch demo shop, Kampala Road plot 14."),
            request=request.id, status=status, due_at=now - timedelta(minutes=60 - i),
            attempts=3 if status == "failed" else 1, last_error=error,
            sent_at=now - timedelta(minutes=59 - i) if status == "sent" else None,
            ack=3 if status == "sent" else None, dedupe_key=f"showcase:{i}",
            created_at=now - timedelta(minutes=60 - i))


def _sources(now: datetime) -> None:
    mailbox = sources.save({"kind": "mailbox", "name": "shop-mail-notifications-mtn-airtel", "interval_s": 60,
                            "config": {"host": "imap.mail-provider-of-the-shop.example", "port": 993, "ssl": True,
                                       "username_env": "SHOP_IMAP_USER", "password_env": "SHOP_IMAP_PASSWORD",
                                       "folder": "INBOX/Payments/Mobile money", "processed_folder": "Processed",
                                       "senders": ["notifications@mtn.co.ug", "no-reply@airtel.co.ug"]}},
                           actor="showcase")[0]
    sources.record_pass(mailbox.id, ok=True, now=now - timedelta(minutes=2), last_contact_at=now - timedelta(minutes=2),
                        last_mail_at=now - timedelta(minutes=20),
                        progress={"running": True, "done": 640, "total": 1500,
                                  "started_at": (now - timedelta(minutes=3)).isoformat()},
                        counts={"received": 1204, "duplicate": 37, "not_money": 412, "unparsed": 3, "ignored": 58})
    portal = sources.save({"kind": "portal", "name": "acme-portal", "interval_s": 300, "config": {
        "base_url": "https://merchant-portal.acme-payments.example/merchant/dashboard",
        "login": {"url": "/login", "fields": {"username": "email", "password": "pass"}, "username_env": "ACME_USER",
                  "password_env": "ACME_PASSWORD"},
        "list": {"url": "/transactions?status=all&per_page=100", "row": "table#tx tbody tr"},
        "columns": {"id": "Transaction ID", "amount": "Amount (UGX)", "sender": "Customer name", "time": "Date"},
        "status_map": {"Successful": "paid", "Failed": "failed"}}}, actor="showcase")[0]
    sources.record_pass(portal.id, ok=False, now=now - timedelta(minutes=7),
                        error="the portal refused the password for merchant-account-kampala-central@acme.example "
                              "(HTTP 401 at https://merchant-portal.acme-payments.example/login)")
    sources.raise_alarm(portal.id, "login_refused", "the portal refused the login: check ACME_USER / ACME_PASSWORD "
                        "(the password may have expired; the portal asks for a new one every 90 days)", now=now)
    gateway = sources.save({"kind": "gateway", "name": "iotec", "interval_s": 60, "config": {
        "provider": "iotec", "auth_url": "https://id.iotec.io/connect/token", "api_url": "https://pay.iotec.io/api",
        "client_id_env": "IOTEC_CLIENT_ID", "client_secret_env": "IOTEC_CLIENT_SECRET", "wallet_id": "w-5521"}},
        actor="showcase")[0]
    sources.record_pass(gateway.id, ok=True, now=now - timedelta(seconds=40), last_contact_at=now - timedelta(seconds=40))
    sources.save({"kind": "sms", "name": "shop-phone", "enabled": False, "config": {
        "format": "capcom6", "secret_env": "SHOP_PHONE_SECRET", "sender_ids": ["MTN MoMo", "AirtelMoney"]}},
        actor="showcase")


def seed(now: datetime, *, admin_id: int | None = None) -> Showcase:
    """Fill an empty database with a day's worth of realistic, wordy data; returns what it made."""
    made = Showcase()
    agent_ids = [agents.create_agent(name, phone, code, actor="showcase").id for name, phone, code in AGENTS]
    made.agent_id = agent_ids[0]
    made.payer_code = payers.save("FAM-NAKAWUNDE-0347", "Nakawunde Christine Margaret Ssekandi-Mukasa",
                                  ["+256772123401", "+256701234599"], "Senior three, stream B (boarding)",
                                  actor="showcase")[0].code
    _requests(now, agent_ids, made)
    _payments(now, made)
    _notifications(now, made)
    _sources(now)
    made.rule_id = reminders.save({
        "name": "Weekly reminder to families with a balance over 100,000 (senior three and four)",
        "cron": "0 9 * * 1", "filter": {"min_pending_minutes": 60, "amount_min": "100000", "group": "Senior three"},
        "template": "Hello {{ customer_name }}, {{ amount }} is still due for {{ reference }}: {{ pay_url }}"},
        actor="showcase").id
    # Stored as it is (a made-up host that resolves nowhere) and disabled: nothing is ever sent to it.
    made.endpoint_id = WebhookEndpoint.create(
        url="https://erp.shop-of-the-demo.example/integrations/paywatch/webhooks/receive?tenant=kampala-central",
        secret=webhooks.new_secret(), events=[], is_active=False,
        description="The shop's ERP (marks invoices paid); owner: accounts team, ext. 214").id
    made.voucher_pool = "wifi-day-pass-kampala-central"
    vouchers.import_codes(made.voucher_pool, [f"WIFI-{i:04d}-KLA-CENTRAL\n" for i in range(12)], actor="showcase")
    apikeys.create("ERP integration (accounts team, Kampala Central branch)", Role.STAFF, created_by=admin_id,
                   actor="showcase")
    return made
