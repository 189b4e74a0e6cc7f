"""Realistic provider notification mail for tests, the demo and benchmarks.

One function per provider and kind, e.g. `mpesa_received(rng)`; each returns a
`Sample`: the raw bytes plus what a correct parser extracts (`expected`: kind,
amount_minor, currency, transaction_id, sender_name, and for reversals
reversed_transaction_id). Names, amounts and ids are invented; wording and MIME
shapes follow shared/providers.md. Deterministic for a given random.Random.
Samples that arrive through a forwarder name it in `forwarder`: a parser must
be told to trust that address. This module never imports webapp or jobs.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Callable

from sandbox import mail_world as world  # India and global providers
from sandbox.mail_mime import DIGITS as _DIGITS
from sandbox.mail_mime import FIRST as _FIRST
from sandbox.mail_mime import (
    FORWARDER,
    SMS_FORWARDER,
    Sample,
    alternative,
    esc,
    html_page,
    message_id,
    moment,
    sms_forward,
)
from sandbox.mail_mime import UPPER as _UPPER
from sandbox.mail_mime import code as _code
from sandbox.mail_mime import expect as _expect
from sandbox.mail_mime import grouped as _grouped
from sandbox.mail_mime import money as _money
from sandbox.mail_mime import person as _name

# --- M-Pesa (KE, SMS) ---------------------------------------------------------

def _mpesa_when(rng: random.Random) -> tuple[str, str]:
    t = moment(rng)
    return f"{t.day}/{t.month}/{t:%y}", t.strftime("%I:%M %p").lstrip("0")


def mpesa_received(rng: random.Random) -> Sample:
    code, amount, name = _code(rng, _UPPER, 10), _money(rng, 50, 90000), _name(rng, True)
    day, clock = _mpesa_when(rng)
    phone = f"07{_code(rng, _DIGITS, 8)}"
    text = (f"{code} Confirmed.You have received Ksh{_grouped(amount)} from {name} {phone} "
            f"on {day} at {clock}  New M-PESA balance is Ksh{_grouped(amount * 3)}. "
            "Separate personal and business funds through Pochi la Biashara on *334#.")
    raw = sms_forward("MPESA", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("mpesa/received", raw, _expect("received", amount_minor=amount, currency="KES",
                  transaction_id=code, sender_name=name), SMS_FORWARDER)


def mpesa_till_received(rng: random.Random) -> Sample:
    code, amount, name = _code(rng, _UPPER, 10), _money(rng, 20, 5000, whole=True), _name(rng)
    day, clock = _mpesa_when(rng)
    text = (f"{code} Confirmed.on {day} at {clock}Ksh{_grouped(amount)} received from "
            f"2547{_code(rng, _DIGITS, 8)} {name}. New Account balance is "
            f"Ksh{_grouped(amount * 7)}. Transaction cost, Ksh0.00.")
    raw = sms_forward("M-PESA", text, moment(rng), message_id(rng, "relay.example"), "json")
    return Sample("mpesa/till_received", raw, _expect("received", amount_minor=amount,
                  currency="KES", transaction_id=code, sender_name=name), SMS_FORWARDER)


def mpesa_sent(rng: random.Random) -> Sample:
    code, amount = _code(rng, _UPPER, 10), _money(rng, 50, 9000)
    day, clock = _mpesa_when(rng)
    text = (f"{code} Confirmed. Ksh{_grouped(amount)} sent to {_name(rng, True)} "
            f"07{_code(rng, _DIGITS, 8)} on {day} at {clock}. New M-PESA balance is "
            f"Ksh{_grouped(amount * 2)}. Transaction cost, Ksh13.00. Amount you can transact "
            "within the day is 499,000.00.")
    raw = sms_forward("MPESA", text, moment(rng), message_id(rng, "relay.example"), "subject")
    return Sample("mpesa/sent", raw, _expect("not_money"), SMS_FORWARDER)


def mpesa_reversal(rng: random.Random) -> Sample:
    code, original, amount = _code(rng, _UPPER, 10), _code(rng, _UPPER, 10), _money(rng, 50, 9000)
    day, clock = _mpesa_when(rng)
    text = (f"{code} confirmed. Reversal of transaction {original} has been successfully "
            f"reversed  on {day}  at {clock} and Ksh{_grouped(amount)} is debited from your "
            f"M-PESA account. New M-PESA account balance is Ksh{_grouped(amount)}.")
    raw = sms_forward("MPESA", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("mpesa/reversal", raw, _expect("reversal", amount_minor=amount, currency="KES",
                  reversed_transaction_id=original), SMS_FORWARDER)


# --- MTN and Airtel Uganda (SMS) -------------------------------------------------

def mtn_received(rng: random.Random) -> Sample:
    amount, name, tid = rng.randrange(1000, 900000), _name(rng, True), _code(rng, _DIGITS, 11)
    comma = rng.random() < 0.5
    text = (f"You have received UGX {_grouped(amount, 0) if comma else amount} from {name}, "
            f"2567{_code(rng, _DIGITS, 8)} on {moment(rng):%Y-%m-%d %H:%M:%S}. Reason: rent. "
            f"Your new balance: UGX {amount * 2}. Fee was UGX 0. ID: {tid}.")
    raw = sms_forward("MTNMobMoney", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("mtn_ug/received", raw, _expect("received", amount_minor=amount, currency="UGX",
                  transaction_id=tid, sender_name=name), SMS_FORWARDER)


def mtn_sent(rng: random.Random) -> Sample:
    amount = rng.randrange(1000, 90000)
    text = (f"You have sent UGX {amount} to {_name(rng, True)}, 2567{_code(rng, _DIGITS, 8)} "
            f"on {moment(rng):%Y-%m-%d %H:%M:%S}. Your new balance: UGX 1200. "
            f"ID: {_code(rng, _DIGITS, 11)}.")
    raw = sms_forward("MTNMobMoney", text, moment(rng), message_id(rng, "relay.example"), "json")
    return Sample("mtn_ug/sent", raw, _expect("not_money"), SMS_FORWARDER)


def airtel_received(rng: random.Random) -> Sample:
    amount, tid, name = rng.randrange(1000, 500000), _code(rng, _DIGITS, 12), _name(rng, True)
    text = (f"RECEIVED. TID {tid}. UGX {_grouped(amount, 0)} from 7{_code(rng, _DIGITS, 8)}, "
            f"{name}. Bal UGX {_grouped(amount * 3, 0)}.")
    raw = sms_forward("AirtelMoney", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("airtel_ug/received", raw, _expect("received", amount_minor=amount,
                  currency="UGX", transaction_id=tid, sender_name=name), SMS_FORWARDER)


def airtel_reversal(rng: random.Random) -> Sample:
    amount, tid = rng.randrange(1000, 500000), _code(rng, _DIGITS, 12)
    text = f"REVERSED. TID {tid}. UGX {_grouped(amount, 0)} has been reversed. Bal UGX 5,000."
    raw = sms_forward("Airtel Money", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("airtel_ug/reversal", raw, _expect("reversal", amount_minor=amount,
                  currency="UGX", reversed_transaction_id=tid), SMS_FORWARDER)


def mtn_payment(amount: int, *, sender_name: str, sender_phone: str, when: datetime | None = None,
                transaction_id: str | None = None, reason: str = "payment",
                rng: random.Random | None = None) -> Sample:
    """An MTN MoMo (Uganda) "You have received" SMS, forwarded now: for live tests and the demo.

    `amount` in UGX (no minor unit); `sender_phone` like "+256772123456" or "0772123456";
    `when` (aware, default now) is written in Kampala time as MTN does. A fresh Message-ID
    each call, so every call is a new payment.
    """
    rng = rng or random.Random()
    when = (when or datetime.now(timezone.utc)).astimezone(_EAT)
    digits = "".join(ch for ch in sender_phone if ch.isdigit())
    shown = "256" + digits[-9:]
    tid = transaction_id or _code(rng, _DIGITS, 11)
    text = (f"You have received UGX {_grouped(amount, 0)} from {sender_name}, {shown} on "
            f"{when:%Y-%m-%d %H:%M:%S}. Reason: {reason}. Your new balance: UGX {amount * 2}. "
            f"Fee was UGX 0. ID: {tid}.")
    raw = sms_forward("MTNMobMoney", text, when, message_id(rng, "relay.example"), "line")
    return Sample("mtn_ug/received", raw, _expect("received", amount_minor=amount, currency="UGX",
                  transaction_id=tid, sender_name=sender_name), SMS_FORWARDER)


_EAT = timezone(timedelta(hours=3))  # Africa/Kampala, no daylight saving


# --- NayaPay (PK, e-mail) ---------------------------------------------------------

_PKT = timezone(timedelta(hours=5))

def _nayapay_amount(minor: int) -> str:
    return _grouped(minor, keep_zero_cents=False)


def nayapay_received(rng: random.Random) -> Sample:
    amount = _money(rng, 100, 60000)
    name, txn = _name(rng), f"{rng.getrandbits(96):024x}"
    when = moment(rng).astimezone(_PKT)  # NayaPay writes and dates its mail in PKT
    shown = when.strftime("%d %b %Y, %I:%M %p")
    html = html_page(["<h1>Cha-Ching!</h1>", esc(name), f"{name.split()[0].lower()}@nayapay",
                      shown, f"<span class=amount>Rs. {_nayapay_amount(amount)}</span>",
                      "AMOUNT DETAILS", f"Principal Amount Rs. {_nayapay_amount(amount)}",
                      "Service Fee (Incl. Tax) Rs. 0",
                      f"Amount Received Rs. {_nayapay_amount(amount)}",
                      "TRANSACTION DETAILS", f"Transaction ID {txn}"])
    dump = f" {_nayapay_amount(amount)} {name} {txn} {shown} {name.split()[0].lower()} "
    raw = alternative("NayaPay <service@nayapay.com>",
                      f"You got Rs. {_nayapay_amount(amount)} from {name} 🎉", when,
                      message_id(rng, "np-pri-notification-7.nayapay.com"), html, dump,
                      nested=True)
    return Sample("nayapay/received", raw, _expect("received", amount_minor=amount,
                  currency="PKR", transaction_id=txn, sender_name=name))


def nayapay_sent(rng: random.Random) -> Sample:
    amount, name, when = _money(rng, 100, 60000), _name(rng), moment(rng)
    html = html_page([f"<h1>It's a good day to be {esc(name)}!</h1>",
                      f"- Rs. {_nayapay_amount(amount)}", "AMOUNT DETAILS",
                      f"Amount Sent Rs. {_nayapay_amount(amount)}", "TRANSACTION DETAILS",
                      f"Transaction ID {rng.getrandbits(96):024x}", "Channel Raast"])
    raw = alternative("NayaPay <service@nayapay.com>",
                      f"You sent Rs. {_nayapay_amount(amount)} to {name} 💸", when,
                      message_id(rng, "np-pri-notification-7.nayapay.com"), html, " ",
                      nested=True)
    return Sample("nayapay/sent", raw, _expect("not_money"))


# --- Easypaisa, JazzCash, HBL, Faysal, Meezan (PK, SMS) -----------------------------

def easypaisa_received(rng: random.Random) -> Sample:
    amount, name, trx, when = _money(rng, 100, 90000), _name(rng), _code(rng, _DIGITS, 11), moment(rng)
    text = (f"Dear {_name(rng)}, You have received Rs.{_grouped(amount)[:-1]} in your Easypaisa "
            f"account ***********{_code(rng, _DIGITS, 4)} from {name} PK**MEZN****"
            f"{_code(rng, _DIGITS, 4)} via Raast Payment on {when:%d-%m-%Y} at "
            f"{when:%H:%M:%S}. Trx ID: {trx}")
    raw = sms_forward("3737", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("easypaisa/received", raw, _expect("received", amount_minor=amount - amount % 10,
                  currency="PKR", transaction_id=trx, sender_name=name), SMS_FORWARDER)


def easypaisa_sent(rng: random.Random) -> Sample:
    amount, when = _money(rng, 100, 90000), moment(rng)
    text = (f"Dear {_name(rng)}, An amount of Rs. {_grouped(amount)} has been successfully sent "
            f"to {_name(rng)} in *******1234 via Raast Payment from your Easypaisa account "
            f"*******5678 on {when:%Y-%m-%d} at {when:%H:%M:%S}.037682068. "
            f"Trx ID: {_code(rng, _DIGITS, 11)}.")
    raw = sms_forward("3737", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("easypaisa/sent", raw, _expect("not_money"), SMS_FORWARDER)


def jazzcash_received(rng: random.Random) -> Sample:
    amount, name, tid = _money(rng, 100, 50000, whole=True), _name(rng), _code(rng, _DIGITS, 12)
    text = (f"Rs {amount // 100}.0 received from {name} AC ********{_code(rng, _DIGITS, 4)} "
            f"in your JazzCash Mobile Account:03{_code(rng, _DIGITS, 9)} via Raast. TID: {tid}")
    raw = sms_forward("JazzCash", text, moment(rng), message_id(rng, "relay.example"), "json")
    return Sample("jazzcash/received", raw, _expect("received", amount_minor=amount,
                  currency="PKR", transaction_id=tid, sender_name=name), SMS_FORWARDER)


def jazzcash_marketing(rng: random.Random) -> Sample:
    text = "Maintain Rs. 50K & Get a Chance to Win 1 CRORE! Dial *786# now."
    raw = sms_forward("JazzCash", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("jazzcash/marketing", raw, _expect("not_money"), SMS_FORWARDER)


def hbl_received(rng: random.Random) -> Sample:
    amount, name, when = _money(rng, 100, 90000), _name(rng, True), moment(rng)
    txn = "SM" + _code(rng, _UPPER, 14)
    text = (f"{rng.choice(_FIRST).upper()}, PKR {_grouped(amount)} received from {name} A/C via "
            f"Raast on {when:%d/%m/%Y %H:%M:%S}, TXN ID {txn}. UAN:111-111-425.")
    raw = sms_forward("HBL", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("hbl/received", raw, _expect("received", amount_minor=amount, currency="PKR",
                  transaction_id=txn, sender_name=name), SMS_FORWARDER)


def hbl_debit(rng: random.Random) -> Sample:
    text = (f"Your HBL A/C 1234***89 has been debited with PKR {_grouped(_money(rng, 10, 900))} "
            f"on {moment(rng):%d/%m/%Y %H:%M:%S}.")
    raw = sms_forward("HBL", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("hbl/debit", raw, _expect("not_money"), SMS_FORWARDER)


def faysal_received(rng: random.Random) -> Sample:
    amount, name, when, ref = _money(rng, 1000, 900000), _name(rng, True), moment(rng), _code(rng, _DIGITS, 12)
    dotted = _grouped(amount, sep=".") if rng.random() < 0.5 else _grouped(amount)
    text = (f"{_name(rng, True)} A/c # *{_code(rng, _DIGITS, 4)} received PKR {dotted} via RAAST "
            f"from {name} IBAN *{_code(rng, _DIGITS, 4)} on {when:%d-%b-%y} at "
            f"{when:%I:%M %p} Ref#:{ref} Info:{_code(rng, _DIGITS, 6)}")
    raw = sms_forward("FBL", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("faysal/received", raw, _expect("received", amount_minor=amount, currency="PKR",
                  transaction_id=ref, sender_name=name), SMS_FORWARDER)


def faysal_sent(rng: random.Random) -> Sample:
    text = (f"PKR {_grouped(_money(rng, 1000, 90000), sep='.')} sent to {_name(rng, True)} "
            f"A/C *1234 via IBFT from FBL A/C *5678 on {moment(rng):%d-%b-%Y %I:%M %p}"
            f" Ref # {_code(rng, _DIGITS, 6)}.")
    raw = sms_forward("FBL", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("faysal/sent", raw, _expect("not_money"), SMS_FORWARDER)


def meezan_received(rng: random.Random) -> Sample:
    amount, name, when = _money(rng, 100, 90000), _name(rng, True), moment(rng)
    tid = _code(rng, _DIGITS, 6)
    text = (f"PKR {_grouped(amount)} received from {name} PK36MEZN****{_code(rng, _DIGITS, 4)} "
            f"as RAAST payment in your AC# xxx{_code(rng, _DIGITS, 4)} on "
            f"{when:%d} — {when:%b} — {when:%Y} at {when:%H:%M} TID:{tid}.")
    raw = sms_forward("Meezan", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("meezan/received", raw, _expect("received", amount_minor=amount, currency="PKR",
                  transaction_id=tid, sender_name=name), SMS_FORWARDER)


def meezan_cash_deposit(rng: random.Random) -> Sample:
    when = moment(rng)
    text = (f"PKR {_grouped(_money(rng, 100, 90000))} CASH DEPOSIT-LCY at GULBERG BRANCH in "
            f"A/C xxx1234 on {when:%d-%b-%Y} at {when:%H:%M}")
    raw = sms_forward("Meezan", text, moment(rng), message_id(rng, "relay.example"), "line")
    return Sample("meezan/cash_deposit", raw, _expect("not_money"), SMS_FORWARDER)


# --- registry ---------------------------------------------------------------------

def _registry() -> dict[str, Callable[[random.Random], Sample]]:
    local = [mpesa_received, mpesa_till_received, mpesa_sent, mpesa_reversal, mtn_received,
             mtn_sent, airtel_received, airtel_reversal, nayapay_received, nayapay_sent,
             easypaisa_received, easypaisa_sent, jazzcash_received, jazzcash_marketing,
             hbl_received, hbl_debit, faysal_received, faysal_sent, meezan_received,
             meezan_cash_deposit]
    remote = [world.hdfc_received, world.hdfc_upi_debit, world.icici_received,
              world.icici_debit_trap, world.kotak_received, world.kotak_cashback,
              world.paypal_received, world.paypal_forwarded, world.paypal_sent,
              world.stripe_received, world.stripe_payout, world.wise_received,
              world.wise_card_spend, world.venmo_received, world.venmo_paid,
              world.interac_received, world.interac_request]
    return {fn.__name__: fn for fn in local + remote}


RENDERERS: dict[str, Callable[[random.Random], Sample]] = _registry()


def all_samples(seed: int = 0) -> list[Sample]:
    """One sample from every renderer, deterministic for `seed`."""
    rng = random.Random(seed)
    return [render(rng) for render in RENDERERS.values()]


def trusted_forwarders() -> tuple[str, ...]:
    """The forwarder addresses the samples use (configure these as trusted)."""
    return (FORWARDER, SMS_FORWARDER)
