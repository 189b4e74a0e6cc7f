"""Mailbox fetch (jobs/mailbox.py) against a real IMAP server (pymap, sandbox/imap.py)."""
from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from jobs import mailbox
from sandbox.imap import append, connect, start_imap
from sandbox.mail import SMS_FORWARDER, mpesa_received, mtn_payment, nayapay_received
from sandbox.mail_mime import plain
from tests.conftest import wait_for
from webapp.domain import ledger, sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Event, Notification, Payment, PaymentRequest, Source, utcnow

USER, PASSWORD = "shop", "imap-secret"
PHONE = "+256772123456"


@pytest.fixture
def imap():
    server = start_imap(users={USER: PASSWORD})
    yield server
    server.stop()


@pytest.fixture
def imap_env(environ, monkeypatch):
    """The mailbox credentials, for this process and for the processes a test starts."""
    values = {"SHOP_IMAP_USER": USER, "SHOP_IMAP_PASSWORD": PASSWORD}
    environ.update(values)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def source_spec(server, name: str = "shop-mail", **config) -> dict:
    return {"kind": "mailbox", "name": name, "interval_s": 60, "config": {
        "host": server.host, "port": server.port, "ssl": False, "username_env": "SHOP_IMAP_USER",
        "password_env": "SHOP_IMAP_PASSWORD", "folder": "INBOX", "trusted_senders": [SMS_FORWARDER],
        **config}}


@pytest.fixture
def make_source(app, imap, imap_env):
    def make(**config) -> int:
        with app.app_context(), db.database.connection_context():
            return sources.save(source_spec(imap, **config), actor="test")[0].id
    return make


@pytest.fixture
def fetch(app):
    """Run one pass in this process (the job body, in this test's app)."""
    def run(source_id: int) -> dict:
        with app.app_context(), db.database.connection_context():
            return mailbox.fetch.__wrapped__(source_id)
    return run


def in_db(app, func):
    with app.app_context(), db.database.connection_context():
        return func()


def a_request(app, amount: int = 5000):
    return in_db(app, lambda: ledger.create_request(ledger.NewRequest(
        amount_minor=amount, currency="UGX", customer_name="Grace Kato", customer_phone=PHONE), actor="test"))


def flags(server, folder: str = "INBOX") -> dict:
    client = connect(server, USER, PASSWORD)
    try:
        client.select_folder(folder, readonly=True)
        return {uid: set(f) for uid, f in client.get_flags(client.search(["ALL"])).items()}
    finally:
        client.logout()


def test_a_payment_mail_is_matched_confirmed_and_marked_seen(app, imap, make_source, fetch):
    source_id = make_source()
    request = a_request(app)
    append(imap, USER, PASSWORD, "INBOX", mtn_payment(5000, sender_name="Grace Kato", sender_phone=PHONE).raw)

    summary = fetch(source_id)

    assert summary["kinds"] == {"received": 1} and summary["messages"] == 1
    payment = in_db(app, lambda: Payment.get(Payment.source == "shop-mail"))
    assert (payment.status, payment.request_id, payment.verified) == ("confirmed", request.id, False)
    assert in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid"
    assert in_db(app, lambda: Notification.select().where(
        Notification.request == request.id, Notification.kind == "payment_confirmed_customer").count()) == 1
    assert all(b"\\Seen" in f for f in flags(imap).values())
    state = in_db(app, lambda: Source.get_by_id(source_id).state)
    assert state["counts"] == {"received": 1} and state["last_contact_at"] and state["last_mail_at"]
    assert fetch(source_id)["messages"] == 0  # the cursor moved on


def test_a_crash_between_ingest_and_mark_seen_doubles_nothing(app, imap, make_source, fetch):
    source_id = make_source()
    append(imap, USER, PASSWORD, "INBOX", mtn_payment(7000, sender_name="Omar Nair", sender_phone=PHONE).raw)
    before = in_db(app, lambda: Source.get_by_id(source_id).cursor)
    fetch(source_id)
    # The crash: the payment is committed, but the mail is still unseen and the cursor unmoved.
    in_db(app, lambda: Source.update(cursor=before).where(Source.id == source_id).execute())
    client = connect(imap, USER, PASSWORD)
    client.select_folder("INBOX")
    client.remove_flags(client.search(["ALL"]), [b"\\Seen"])
    client.logout()

    summary = fetch(source_id)

    assert summary["messages"] == 1
    assert in_db(app, lambda: Payment.select().count()) == 1
    assert in_db(app, lambda: Source.get_by_id(source_id).state["counts"]) == {"received": 1, "duplicate": 1}
    assert all(b"\\Seen" in f for f in flags(imap).values())


def test_mail_moved_back_from_the_processed_folder_is_not_counted_twice(app, imap, make_source, fetch):
    source_id = make_source(processed_folder="Paywatch/Done")
    append(imap, USER, PASSWORD, "INBOX", mtn_payment(9000, sender_name="Dina Iyer", sender_phone=PHONE).raw)
    fetch(source_id)
    assert flags(imap) == {} and len(flags(imap, "Paywatch/Done")) == 1
    client = connect(imap, USER, PASSWORD)
    client.select_folder("Paywatch/Done")
    client.move(client.search(["ALL"]), "INBOX")  # back, under a new UID, as after a crash mid-move
    client.logout()

    assert fetch(source_id)["messages"] == 1
    assert in_db(app, lambda: Payment.select().count()) == 1
    assert flags(imap) == {} and len(flags(imap, "Paywatch/Done")) == 1


def test_a_uidvalidity_change_rereads_the_folder_without_doubling(app, imap, make_source, fetch):
    source_id = make_source(folder="Payments")
    first = mtn_payment(5000, sender_name="Juma Kato", sender_phone=PHONE).raw
    append(imap, USER, PASSWORD, "Payments", first)
    assert fetch(source_id)["kinds"] == {"received": 1}
    client = connect(imap, USER, PASSWORD)
    client.delete_folder("Payments")
    client.create_folder("Payments")  # a new UIDVALIDITY; UIDs start again
    client.logout()
    append(imap, USER, PASSWORD, "Payments", first)
    append(imap, USER, PASSWORD, "Payments", mtn_payment(6000, sender_name="Sana Baig", sender_phone=PHONE).raw)

    summary = fetch(source_id)

    assert summary["uidvalidity_changed"] and summary["messages"] == 2
    assert sorted(in_db(app, lambda: [p.amount_minor for p in Payment.select()])) == [5000, 6000]


def test_unreadable_mail_from_a_trusted_sender_is_kept_as_evidence(app, imap, make_source, fetch):
    source_id = make_source()
    text = "From: MTNMobMoney\n\nY'ello! Your MoMo statement for October is ready. Dial *165#."
    raw = plain(SMS_FORWARDER, "New SMS", utcnow(), "<odd-1@relay.example>", text)
    append(imap, USER, PASSWORD, "INBOX", raw)
    append(imap, USER, PASSWORD, "INBOX", plain(SMS_FORWARDER, "hello", utcnow(), "<odd-2@relay.example>",
                                                "nothing that looks like an SMS"))

    assert fetch(source_id)["kinds"] == {"unparsed": 2}

    kept = in_db(app, lambda: list(Payment.select().order_by(Payment.id)))
    assert [(p.parsed, p.amount_minor, p.currency, p.verified) for p in kept] == [(False, None, None, False)] * 2
    assert "statement for October" in kept[0].raw and kept[0].source_ref == "<odd-1@relay.example>"
    assert all(b"\\Seen" in f for f in flags(imap).values())


def test_mail_from_unknown_senders_is_ignored_counted_and_left_unread(app, imap, make_source, fetch):
    source_id = make_source()
    append(imap, USER, PASSWORD, "INBOX", plain("friend@example.org", "lunch?", utcnow(), "<l@x>", "hi"))
    append(imap, USER, PASSWORD, "INBOX", plain("mpesa@phish.example", "You have received Ksh 9,000",
                                                utcnow(), "<p@x>", "TK3 Confirmed. You have received"))

    assert fetch(source_id)["kinds"] == {"ignored": 2}
    assert in_db(app, lambda: Payment.select().count()) == 0
    assert all(b"\\Seen" not in f for f in flags(imap).values())
    assert in_db(app, lambda: Source.get_by_id(source_id).state["counts"]) == {"ignored": 2}


def test_a_backlog_is_read_in_batches_with_progress(app, imap, make_source, fetch):
    source_id = make_source(batch_size=3)
    rng = random.Random(5)
    for n in range(7):
        append(imap, USER, PASSWORD, "INBOX",
               mtn_payment(1000 + n, sender_name="Irene Otieno", sender_phone=PHONE, rng=rng).raw)

    summary = fetch(source_id)

    assert (summary["messages"], summary["batches"]) == (7, 3)
    state = in_db(app, lambda: Source.get_by_id(source_id).state)
    assert state["progress"]["done"] == state["progress"]["total"] == 7 and not state["progress"]["running"]
    assert in_db(app, lambda: Source.get_by_id(source_id).cursor["last_uid"]) == max(flags(imap))
    assert in_db(app, lambda: Payment.select().count()) == 7


def test_a_reversal_sends_the_original_payment_to_review(app, imap, make_source, fetch):
    source_id = make_source()
    request = a_request(app, 8000)
    append(imap, USER, PASSWORD, "INBOX", mtn_payment(8000, sender_name="Grace Kato", sender_phone=PHONE,
                                                      transaction_id="55512345678").raw)
    fetch(source_id)
    text = ("From: MTNMobMoney\n\nY'ello. Your transaction of UGX 8,000 from Grace Kato has been reversed. "
            "ID: 55512345678. Your new balance: UGX 100.")
    append(imap, USER, PASSWORD, "INBOX", plain(SMS_FORWARDER, "New SMS", utcnow(), "<rev@relay.example>", text))

    assert fetch(source_id)["kinds"] == {"reversal": 1}

    payment = in_db(app, lambda: Payment.get(Payment.transaction_id == "55512345678"))
    assert payment.status == "review" and payment.reason.startswith("reversed at the provider")
    assert in_db(app, lambda: PaymentRequest.get_by_id(request.id).flag) == "payment_reversed"
    assert in_db(app, lambda: Event.select().where(Event.action == "payment.reversed").count()) == 1


def test_two_forwards_of_one_transaction_pay_one_of_two_requests_for_the_same_customer(app, imap, make_source,
                                                                                         fetch):
    source_id = make_source()
    first, second = a_request(app, 8000), a_request(app, 8000)
    when = utcnow()
    for _ in range(2):  # the same SMS forwarded twice (two Message-IDs), one MTN transaction
        append(imap, USER, PASSWORD, "INBOX", mtn_payment(8000, sender_name="Grace Kato", sender_phone=PHONE,
                                                          when=when, transaction_id="55512345678").raw)

    assert fetch(source_id)["kinds"] == {"received": 2, "duplicate": 1}

    assert in_db(app, lambda: Payment.select().count()) == 1
    statuses = in_db(app, lambda: sorted(PaymentRequest.get_by_id(r.id).status for r in (first, second)))
    assert statuses == ["review", "review"]  # one payment, two equal candidates: staff pick one
    assert in_db(app, lambda: Source.get_by_id(source_id).state["counts"]) == {"received": 2, "duplicate": 1}


def test_a_reversal_read_before_its_payment_is_kept_and_applied_when_the_payment_arrives(
        app, imap, make_source, fetch):
    source_id = make_source()
    request = a_request(app, 8000)
    text = ("From: MTNMobMoney\n\nY'ello. Your transaction of UGX 8,000 from Grace Kato has been reversed. "
            "ID: 55512345678. Your new balance: UGX 100.")
    append(imap, USER, PASSWORD, "INBOX", plain(SMS_FORWARDER, "New SMS", utcnow(), "<rev@relay.example>", text))
    assert fetch(source_id)["kinds"] == {"reversal": 1, "reversal_pending": 1}

    append(imap, USER, PASSWORD, "INBOX", mtn_payment(8000, sender_name="Grace Kato", sender_phone=PHONE,
                                                      transaction_id="55512345678").raw)
    fetch(source_id)

    payment = in_db(app, lambda: Payment.get(Payment.transaction_id == "55512345678"))
    assert payment.status == "review" and payment.reason.startswith("reversed at the provider")
    assert in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "review"  # never paid by itself


def test_flag_reversal_is_idempotent_and_says_when_nothing_matches(app):
    def run():
        payment = ledger.ingest_payment(ledger.PaymentObservation(
            source="shop-mail", source_ref="<x@y>", amount_minor=100, currency="UGX",
            received_at=utcnow(), transaction_id="T-1")).payment
        first = ledger.flag_reversal("shop-mail", "T-1")
        second = ledger.flag_reversal("shop-mail", "T-1")
        assert first.status == second.status == "review" and payment.status == "unmatched"
        assert ledger.flag_reversal("shop-mail", "T-unknown") is None
        assert ledger.flag_reversal("other-source", "T-1") is None
        assert Event.select().where(Event.action == "payment.reversed").count() == 1
    in_db(app, run)


def test_only_named_providers_are_used_and_a_providers_dir_adds_one(app, imap, make_source, fetch, tmp_path):
    (tmp_path / "shopbank.toml").write_text(SHOPBANK_TOML)
    source_id = make_source(providers=["nayapay", "shopbank"], providers_dir=str(tmp_path))
    append(imap, USER, PASSWORD, "INBOX", nayapay_received(random.Random(2)).raw)
    append(imap, USER, PASSWORD, "INBOX", mpesa_received(random.Random(3)).raw)  # M-Pesa not named
    append(imap, USER, PASSWORD, "INBOX", plain("alerts@shopbank.example", "Credit alert", utcnow(),
                                                "<sb-1@shopbank.example>", "Credit of UGX 12,500 from ALI. Ref 998877"))

    assert fetch(source_id)["kinds"] == {"received": 2, "unparsed": 1}
    read = in_db(app, lambda: {(p.currency, p.amount_minor, p.transaction_id) for p in Payment.select()})
    assert ("UGX", 12500, "998877") in read and (None, None, None) in read


def test_a_refused_login_is_recorded_with_an_alarm(app, make_source, fetch, monkeypatch):
    source_id = make_source()
    monkeypatch.setenv("SHOP_IMAP_PASSWORD", "wrong")

    summary = fetch(source_id)

    assert not summary["ok"] and "login refused" in summary["error"]
    source = in_db(app, lambda: Source.get_by_id(source_id))
    assert "login" in source.state["alarms"] and "login refused" in source.last_error


def test_parsers_test_shows_what_was_read_and_why(app, runner, tmp_path):
    eml = tmp_path / "mtn.eml"
    eml.write_bytes(mtn_payment(5000, sender_name="Grace Kato", sender_phone=PHONE,
                                when=utcnow() - timedelta(minutes=1)).raw)

    untrusted = runner.invoke(args=["parsers", "test", str(eml)])
    trusted = runner.invoke(args=["parsers", "test", str(eml), "--trust", SMS_FORWARDER])

    assert untrusted.exit_code == 0 and "kind:        ignored" in untrusted.output
    assert trusted.exit_code == 0, trusted.output
    assert "kind:        received" in trusted.output and "amount:      5000 UGX" in trusted.output
    assert "why:" in trusted.output


SHOPBANK_TOML = r'''
name = "shopbank"
label = "Shop Bank"
currency = "UGX"
region = "UG"
timezone = "Africa/Kampala"
senders = ["alerts@shopbank.example"]

[[rules]]
name = "credit"
kind = "received"
subject = ['Credit alert']
body = ['Credit of UGX\s*(?P<amount>[\d,]+) from (?P<sender_name>[A-Z ]+)\. Ref (?P<transaction_id>\d+)']
'''


def test_the_readme_example_source_is_complete(app, imap_env):
    """The JSON in README's "Mailbox sources" section is accepted as it stands."""
    import json
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Mailbox sources", 1)[1].split("\n## ", 1)[0]
    spec = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    assert set(spec["config"]) >= {"host", "port", "ssl", "username_env", "password_env", "folder",
                                   "processed_folder", "idle", "providers", "trusted_senders"}
    cfg = mailbox.mailbox_config(spec["config"], with_secrets=False)
    assert mailbox.parsers_for(cfg)
    assert in_db(app, lambda: sources.save(spec, actor="test")[1])
    import tomllib

    from jobs.email_providers import provider_from_dict

    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    assert provider_from_dict(tomllib.loads(example)).name == "shopbank"


def test_a_mail_nested_too_deep_is_kept_as_unreadable_evidence_and_the_pass_goes_on(app, imap, make_source,
                                                                                      fetch):
    source_id = make_source()
    head = (f"From: {SMS_FORWARDER}\r\nSubject: New SMS\r\nMessage-ID: <deep@relay.example>\r\n"
            "MIME-Version: 1.0\r\n").encode()
    # 150 levels: past our bounds (100 parts), within what the sandbox IMAP server (pymap) can store.
    levels = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(150))
    deep = head + levels + b"Content-Type: text/plain\r\n\r\nhi\r\n" + b"".join(
        b"--b%d--\r\n" % i for i in reversed(range(150)))
    append(imap, USER, PASSWORD, "INBOX", deep)
    append(imap, USER, PASSWORD, "INBOX", mtn_payment(5000, sender_name="Grace Kato", sender_phone=PHONE).raw)

    assert fetch(source_id)["kinds"] == {"unparsed": 1, "received": 1}
    kept = in_db(app, lambda: Payment.get(Payment.source_ref == "<deep@relay.example>"))
    assert (kept.parsed, kept.amount_minor) == (False, None) and kept.raw.startswith("From:")
    assert all(b"\\Seen" in f for f in flags(imap).values())


def test_joined_sms_are_each_a_payment_and_the_fallback_reader_files_or_reviews_the_rest(app, imap, make_source,
                                                                                        fetch):
    source_id = make_source()
    joined = ("From: MPESA\n\nTG11AAA111 Confirmed.You have received Ksh1,000.00 from ANN WERU 0711222333 on 3/7/26 "
              "at 9:01 AM New M-PESA balance is Ksh5,000.00.\n---\nTG11AAA112 Confirmed.You have received "
              "Ksh2,500.50 from BEN OTIENO 0722333444 on 3/7/26 at 9:05 AM New M-PESA balance is Ksh7,500.50.")
    append(imap, USER, PASSWORD, "INBOX", plain(SMS_FORWARDER, "New SMS", utcnow(), "<two@relay.example>", joined))
    odd = "From: MPESA\n\nDear customer, Ksh 4,200.00 has been credited to your wallet from PETER KAMAU. Ref QX1234567."
    append(imap, USER, PASSWORD, "INBOX", plain(SMS_FORWARDER, "New SMS", utcnow(), "<odd@relay.example>", odd))
    atm = "From: MPESA\n\nKsh 3,000.00 ATM withdrawal from your wallet at KICC branch."
    append(imap, USER, PASSWORD, "INBOX", plain(SMS_FORWARDER, "New SMS", utcnow(), "<atm@relay.example>", atm))

    assert fetch(source_id)["kinds"] == {"received": 3, "not_money": 1}

    kept = in_db(app, lambda: list(Payment.select().order_by(Payment.id)))
    assert [(p.source_ref, p.amount_minor, p.generic, p.status) for p in kept] == [
        ("<two@relay.example>#1", 100000, False, "unmatched"), ("<two@relay.example>#2", 250050, False, "unmatched"),
        ("<odd@relay.example>", 420000, True, "review")]
    assert "PETER KAMAU" in kept[2].reading
    assert all(b"\\Seen" in f for f in flags(imap).values())


def test_a_pass_asked_for_while_one_runs_is_made_by_the_running_one(app, imap, make_source, fetch):
    """One pass per mailbox at a time, and no worker waits for the lock: the second request
    returns at once and the running pass makes one more pass after its own."""
    import threading

    from sandbox.tcp_proxy import TcpProxy

    proxy = TcpProxy(imap.host, imap.port).start()
    try:
        source_id = make_source(port=proxy.port)
        requests = [a_request(app, amount) for amount in (31000, 32000)]
        append(imap, USER, PASSWORD, "INBOX", mtn_payment(31000, sender_name="Grace Kato", sender_phone=PHONE).raw)
        proxy.hold()  # the first pass stalls on the server's greeting, holding the source's lock
        done: dict = {}
        running = threading.Thread(target=lambda: done.update(first=fetch(source_id)))
        running.start()
        lock = f"paywatch:mailbox:{source_id}:lock"
        wait_for(lambda: in_db(app, lambda: jobqueue.redis_connection().exists(lock)), timeout=20,
                 message="the first pass to hold the lock")
        append(imap, USER, PASSWORD, "INBOX", mtn_payment(32000, sender_name="Grace Kato", sender_phone=PHONE).raw)

        second = fetch(source_id)

        assert "coalesced" in second and running.is_alive()
        assert in_db(app, lambda: PaymentRequest.get_by_id(requests[1].id).status) == "pending"
        proxy.resume()
        running.join(timeout=60)
        assert not running.is_alive() and done["first"]["passes"] == 2, done
        assert [in_db(app, lambda r=r: PaymentRequest.get_by_id(r.id).status) for r in requests] == ["paid", "paid"]
    finally:
        proxy.resume()
        proxy.stop()


def test_a_kept_connection_the_server_dropped_is_replaced_within_the_pass(app, imap, make_source, fetch):
    source_id = make_source()
    assert fetch(source_id)["ok"]  # logged in; the connection is kept for the next pass
    imap.restart(down_s=0.2)  # every connection drops; the mail stays
    request = a_request(app, 41000)
    append(imap, USER, PASSWORD, "INBOX", mtn_payment(41000, sender_name="Grace Kato", sender_phone=PHONE).raw)

    summary = fetch(source_id)

    assert summary["ok"] and summary["kinds"] == {"received": 1}
    assert in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid"
    assert not in_db(app, lambda: Source.get_by_id(source_id).last_error)
