"""SMS posted by a phone: POST /hooks/sms/<source> in each forwarder's format, its authentication,
reading with the provider rules, idempotency, and one payment for an SMS that also comes by mail."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from jobs import sms as sms_job
from sandbox import sms_forwarder as phone
from tests.conftest import wait_for
from tests.test_mailbox import fetch, imap, imap_env, make_source  # noqa: F401 (fixtures)
from webapp.domain import ledger, sources
from webapp.storage import db
from webapp.storage.models import Event, InboundSms, Payment, PaymentRequest, PaymentSighting, Source

KEY = "phone-signing-key-0123456789-abcdefghijklmnop"
PHONE = "+256772123456"
EAT = timezone(timedelta(hours=3))


def mtn_text(amount: int, txn: str = "48213577201", when: str = "2026-12-06 10:15:30") -> str:
    return phone.mtn_received(amount, transaction_id=txn, when=when)


FAYSAL = "PKR 5,000.00 received from ALI KHAN A/C *1234 in FBL A/C *5678 on 05-Dec-26 at 02:32 PM"


def in_db(app, func):
    with app.app_context(), db.database.connection_context():
        return func()


@pytest.fixture
def sms_env(environ, monkeypatch):
    monkeypatch.setenv("PHONE_SMS_KEY", KEY)
    environ["PHONE_SMS_KEY"] = KEY  # for worker processes
    return environ


@pytest.fixture
def make_sms_source(app, sms_env):
    def make(fmt: str = "generic", name: str = "phone", **config) -> Source:
        spec = {"kind": "sms", "name": name, "interval_s": 900,
                "config": {"format": fmt, "secret_env": "PHONE_SMS_KEY", **config}}
        return in_db(app, lambda: sources.save(spec, actor="test")[0])
    return make


def post(client, name: str, built: tuple[bytes, dict]):
    body, headers = built
    return client.post(f"/hooks/sms/{name}", data=body, headers=headers)


def ingest_all(app) -> list[dict]:
    """Run the job of every stored, unread SMS inline (the worker's job, in this process)."""
    ids = in_db(app, lambda: [r.id for r in InboundSms.select().where(InboundSms.status == "new")])
    with app.app_context():
        return [sms_job.ingest(i) for i in ids]


@pytest.mark.parametrize("fmt", ["capcom6", "httpsms", "generic"])
def test_each_forwarder_format_is_stored_once_and_read_by_the_provider_rules(app, client, make_sms_source, fmt):
    make_sms_source(fmt)
    built = phone.FORMATS[fmt](KEY, "MTNMobMoney", mtn_text(15000), message_id="m-1",
                               received_at=datetime(2026, 12, 6, 7, 16, tzinfo=timezone.utc))
    first = post(client, "phone", built)
    assert first.status_code == 202, first.json
    assert first.json["stored"] and not first.json["duplicate"]
    again = post(client, "phone", built)  # the app retries: nothing new
    assert again.status_code == 200 and again.json["duplicate"]
    assert in_db(app, InboundSms.select().count) == 1
    [result] = ingest_all(app)
    assert result["outcome"] == "received", result
    payment = in_db(app, lambda: Payment.get(Payment.source == "phone"))
    assert (payment.amount_minor, payment.currency, payment.transaction_id) == (15000, "UGX", "48213577201")
    assert payment.sender_name == "Grace Kato" and payment.sender_phone == PHONE and not payment.verified
    # The time in the SMS text (Kampala) wins over the phone's clock.
    assert payment.received_at == datetime(2026, 12, 6, 10, 15, 30, tzinfo=EAT)
    assert json.loads(payment.raw) == json.loads(built[0])  # the posted body is the evidence
    assert ingest_all(app) == []
    with app.app_context():
        assert sms_job.ingest(result["id"])["skipped"]  # a second run changes nothing
    assert in_db(app, Payment.select().count) == 1


def test_without_a_time_in_the_text_the_phones_receipt_time_is_used(app, client, make_sms_source):
    make_sms_source("capcom6")
    phone_time = datetime(2026, 12, 6, 9, 0, 5, tzinfo=EAT)
    text = "PKR 5,000.00 received from ALI KHAN A/C *1234 in FBL A/C *5678 via RAAST"  # no date in the text
    post(client, "phone", phone.capcom6(KEY, "FBL", FAYSAL, received_at=phone_time))
    post(client, "phone", phone.capcom6(KEY, "FBL", text, received_at=phone_time))
    outcomes = sorted(r["outcome"] for r in ingest_all(app))
    assert outcomes == ["received", "received"]  # the undated one is read too (a rule or the fallback reader)
    dated = in_db(app, lambda: Payment.get(~Payment.raw.contains("via RAAST")))
    assert dated.received_at == datetime(2026, 12, 5, 14, 32, tzinfo=timezone(timedelta(hours=5)))
    undated = in_db(app, lambda: Payment.get(Payment.raw.contains("via RAAST")))
    assert undated.amount_minor == 500_000 and undated.received_at == phone_time


@pytest.mark.parametrize("fmt, spoil, message", [
    ("generic", lambda b, h: (b, {"Content-Type": "application/json"}), "not signed"),
    ("generic", lambda b, h: (b, {**h, "X-Signature": "0" * 64}), "does not match"),
    ("generic", lambda b, h: (b + b" ", h), "does not match"),
    ("capcom6", lambda b, h: phone.capcom6(KEY, "MTNMobMoney", "x", stamp=int(h["X-Timestamp"]) - 301), "window"),
    ("capcom6", lambda b, h: phone.capcom6("another-signing-key-0123456789-abcdefghijkl", "MTNMobMoney", "x"), "does not match"),
    ("httpsms", lambda b, h: (b, {"Content-Type": "application/json"}), "Bearer"),
    ("httpsms", lambda b, h: phone.httpsms("another-signing-key-0123456789-abcdefghijkl", "MTNMobMoney", "x"), "JWT is refused"),
    ("httpsms", lambda b, h: phone.httpsms(KEY, "MTNMobMoney", "x", issued=datetime.now().timestamp() - 400),
     "window"),
])
def test_unsigned_badly_signed_or_stale_posts_are_refused_and_nothing_is_stored(app, client, make_sms_source,
                                                                                 fmt, spoil, message):
    make_sms_source(fmt)
    body, headers = phone.FORMATS[fmt](KEY, "MTNMobMoney", mtn_text(5000))
    response = post(client, "phone", spoil(body, headers))
    assert response.status_code == 401 and message in response.json["error"]["message"], response.json
    assert in_db(app, InboundSms.select().count) == 0


def test_a_source_without_its_secret_accepts_nothing(app, client, make_sms_source, monkeypatch):
    make_sms_source("generic")
    monkeypatch.delenv("PHONE_SMS_KEY")
    response = post(client, "phone", phone.generic(KEY, "MTNMobMoney", mtn_text(5000)))
    assert response.status_code == 503 and "PHONE_SMS_KEY" in response.json["error"]["message"]
    assert in_db(app, InboundSms.select().count) == 0


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"from": "MTNMobMoney"}).encode(), "text"),
    (json.dumps({"from": "MTNMobMoney", "text": "hi", "received_at": "yesterday"}).encode(), "ISO 8601"),
    (json.dumps({"from": "MTNMobMoney", "text": "hi", "received_at": "2026-12-06T10:00:00"}).encode(), "offset"),
    (json.dumps({"from": "MTNMobMoney", "text": "x" * 8001}).encode(), "over 8000"),
])
def test_unreadable_posts_get_a_clear_400_and_nothing_is_stored(app, client, make_sms_source, body, message):
    make_sms_source("generic")
    response = post(client, "phone", (body, phone._signed(body, KEY, None)))
    assert response.status_code == 400 and message in response.json["error"]["message"], response.json
    assert in_db(app, InboundSms.select().count) == 0


def test_too_big_unknown_or_other_kind_of_source_is_refused(app, client, make_sms_source):
    make_sms_source("generic")
    huge = json.dumps({"from": "MTNMobMoney", "text": "x", "pad": "y" * 70000}).encode()
    assert post(client, "phone", (huge, phone._signed(huge, KEY, None))).status_code == 413
    assert post(client, "nobody", phone.generic(KEY, "MTNMobMoney", "x")).status_code == 404
    in_db(app, lambda: sources.save({"kind": "gateway", "name": "gw", "config": {
        "provider": "iotec", "auth_url": "http://x", "api_url": "http://x", "client_id_env": "A",
        "client_secret_env": "B"}}, actor="test"))
    assert post(client, "gw", phone.generic(KEY, "MTNMobMoney", "x")).status_code == 404
    assert in_db(app, InboundSms.select().count) == 0


def test_a_bad_sms_source_file_is_refused_naming_the_problem(ctx):
    base = {"kind": "sms", "name": "phone", "config": {"format": "capcom6", "secret_env": "K"}}
    for config, message in (({"format": "telegram", "secret_env": "K"}, "format must be one of"),
                            ({"format": "generic"}, "config is missing secret_env"),
                            ({"format": "generic", "secret_env": "K", "sender_ids": "MPESA"}, "sender_ids"),
                            ({"format": "generic", "secret_env": "K", "secret": "x"}, "holds a secret")):
        with pytest.raises(sources.SourceError, match=message):
            sources.save({**base, "config": config}, actor="test")
    assert sources.save(base, actor="test")[1]


def test_the_sender_id_decides_who_may_be_read(app, client, make_sms_source):
    make_sms_source("generic", sender_ids=["ShopBank"])
    post(client, "phone", phone.generic(KEY, "+256700111222", mtn_text(7000)))  # a person, copying MTN's words
    post(client, "phone", phone.generic(KEY, "ShopBank", "Your a/c was credited with UGX 7,000 by J. Doe"))
    outcomes = {r["outcome"] for r in ingest_all(app)}
    assert outcomes == {"ignored", "unparsed"}
    dropped = in_db(app, lambda: InboundSms.get(InboundSms.sender == "+256700111222"))
    assert dropped.status == "ignored" and dropped.text == "" and dropped.raw == ""  # a person's SMS is not kept
    kept = in_db(app, lambda: Payment.get(Payment.source == "phone"))
    assert kept.parsed is False and "credited with UGX 7,000" in kept.raw  # shown in review as unreadable
    assert in_db(app, Payment.select().count) == 1


def test_sender_ids_can_name_the_provider_that_reads_them(app, client, make_sms_source):
    make_sms_source("generic", sender_ids={"MoMo-UG": "mtn_ug"})
    post(client, "phone", phone.generic(KEY, "MoMo-UG", mtn_text(9000)))
    assert [r["outcome"] for r in ingest_all(app)] == ["received"]
    assert in_db(app, lambda: Payment.get(Payment.source == "phone").amount_minor) == 9000


def test_pings_count_as_contact_and_httpsms_offline_raises_an_alarm(app, client, make_sms_source):
    make_sms_source("capcom6")
    make_sms_source("httpsms", name="phone2")
    in_db(app, lambda: sources.check_silence(datetime.now(timezone.utc) + timedelta(hours=1)))
    assert "silent" in in_db(app, lambda: sources.get("phone").state["alarms"])
    assert post(client, "phone", phone.capcom6_ping(KEY)).status_code == 200
    state = in_db(app, lambda: sources.get("phone").state)
    assert state["last_contact_at"] and "silent" not in state["alarms"]
    offline = phone.httpsms(KEY, "", "", event="phone.heartbeat.offline")
    assert post(client, "phone2", offline).status_code == 200
    assert "phone_offline" in in_db(app, lambda: sources.get("phone2").state["alarms"])
    post(client, "phone2", phone.httpsms(KEY, "", "", event="phone.heartbeat.online"))
    assert "phone_offline" not in in_db(app, lambda: sources.get("phone2").state["alarms"])
    assert in_db(app, InboundSms.select().count) == 0


def test_an_sms_with_a_transaction_id_posted_and_mailed_is_one_payment(app, client, make_sms_source, imap,
                                                                        make_source, fetch):
    from sandbox.imap import append
    from sandbox.mail_mime import SMS_FORWARDER, sms_forward
    from tests.test_mailbox import PASSWORD, USER

    make_sms_source("capcom6")
    text = mtn_text(12000, txn="48213577999")
    post(client, "phone", phone.capcom6(KEY, "MTNMobMoney", text))
    ingest_all(app)
    source_id = make_source(trusted_senders=[SMS_FORWARDER])
    append(imap, USER, PASSWORD, "INBOX", sms_forward("MTNMobMoney", text, datetime.now(timezone.utc),
                                                      "<fwd-1@relay.example>", "line"))
    assert fetch(source_id)["kinds"] == {"received": 1, "duplicate": 1}  # read, and known money
    payment = in_db(app, lambda: Payment.get())
    assert in_db(app, Payment.select().count) == 1 and payment.source == "phone"
    assert in_db(app, lambda: PaymentSighting.get(PaymentSighting.payment == payment.id).source) == "shop-mail"


@pytest.mark.parametrize("style", ["line", "json", "subject"])
def test_an_sms_without_a_transaction_id_mailed_then_posted_is_one_payment(app, client, make_sms_source, imap,
                                                                           make_source, fetch, style):
    """A Faysal SMS names no transaction: its text (sender id and words) is the key, both ways."""
    from sandbox.imap import append
    from sandbox.mail_mime import SMS_FORWARDER, sms_forward
    from tests.test_mailbox import PASSWORD, USER

    make_sms_source("httpsms")
    source_id = make_source(trusted_senders=[SMS_FORWARDER])
    append(imap, USER, PASSWORD, "INBOX", sms_forward("FBL", FAYSAL, datetime.now(timezone.utc),
                                                      "<fwd-2@relay.example>", style))
    assert fetch(source_id)["kinds"] == {"received": 1}
    post(client, "phone", phone.httpsms(KEY, "FBL", FAYSAL.replace(" on ", "  on ")))  # spacing may differ
    assert [r["outcome"] for r in ingest_all(app)] == ["duplicate"]
    payment = in_db(app, lambda: Payment.get())
    assert in_db(app, Payment.select().count) == 1 and payment.transaction_id is None
    assert payment.source == "shop-mail" and payment.txn_norm.startswith("SMS#")
    assert in_db(app, lambda: PaymentSighting.get(PaymentSighting.payment == payment.id).source) == "phone"
    # Another Faysal SMS (other words) is other money.
    post(client, "phone", phone.httpsms(KEY, "FBL", FAYSAL.replace("02:32", "02:33")))
    assert [r["outcome"] for r in ingest_all(app)] == ["received"]


def test_a_stored_sms_whose_job_redis_lost_is_read_by_the_sweep(app, client, make_sms_source, redis_conn,
                                                                run_worker):
    make_sms_source("generic")
    assert post(client, "phone", phone.generic(KEY, "MTNMobMoney", mtn_text(8000))).status_code == 202
    redis_conn.flushdb()  # the job is gone; the row is the record
    row = in_db(app, lambda: InboundSms.get())
    in_db(app, lambda: InboundSms.update(created_at=row.created_at - timedelta(seconds=11)).execute())
    with app.app_context():
        assert sms_job.sweep() == {"requeued": 1}
        assert sms_job.sweep() == {"requeued": 0}  # its job is waiting: not twice
    run_worker(queues=("default",))
    assert in_db(app, lambda: InboundSms.get_by_id(row.id).outcome) == "received"
    assert in_db(app, lambda: Event.select().where(Event.action == "sms.received").count()) == 1


def test_an_sms_posted_pays_the_request_and_the_customer_hears_on_whatsapp(whatsapp, app, client, make_sms_source,
                                                                           worker):
    make_sms_source("capcom6")
    request = in_db(app, lambda: ledger.create_request(ledger.NewRequest(
        amount_minor=21000, currency="UGX", customer_name="Grace Kato", customer_phone=PHONE), actor="test"))
    now = datetime.now(EAT).strftime("%Y-%m-%d %H:%M:%S")
    assert post(client, "phone", phone.capcom6(KEY, "MTNMobMoney", mtn_text(21000, when=now))).status_code == 202
    wait_for(lambda: in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid", timeout=30,
             message="the request to be paid from the SMS")
    wait_for(lambda: whatsapp.messages(PHONE), timeout=30, message="the confirmation on the sandbox WhatsApp")


def test_the_readme_example_source_is_accepted_as_it_stands(ctx):
    import re

    from webapp.config import ROOT

    section = (ROOT / "README.md").read_text().split("## SMS sources", 1)[1].split("\n## ", 1)[0]
    spec = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    source, created = sources.save(spec, actor="test")
    assert created and source.kind == "sms" and source.config["format"] == "capcom6"
    assert sms_job.providers_for(source.config)[0].name == "mtn_ug"
    assert "MoMoUG" in sms_job.providers_for(source.config)[0].sms_senders


def test_an_httpsms_token_without_iat_must_expire_within_the_hour(app, client, make_sms_source):
    import time

    import jwt

    make_sms_source("httpsms")
    body, _ = phone.httpsms(KEY, "MTNMobMoney", mtn_text(4000))
    for exp, status in ((time.time() + 600, 202), (time.time() + 86400, 401), (time.time() - 120, 401)):
        token = jwt.encode({"iss": "api.httpsms.com", "exp": int(exp)}, KEY, algorithm="HS256")
        response = post(client, "phone", (body, {"Content-Type": "application/json",
                                                 "Authorization": f"Bearer {token}"}))
        assert response.status_code == status, (exp, response.json)
    assert in_db(app, InboundSms.select().count) == 1
