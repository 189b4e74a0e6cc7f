"""Sandbox mail for Indian banks and global providers (see sandbox/mail.py)."""
from __future__ import annotations

import random
from datetime import timedelta

from sandbox.mail_mime import (
    DIGITS,
    FORWARDER,
    UPPER,
    Sample,
    alternative,
    code,
    esc,
    expect,
    gmail_forward,
    grouped,
    html_only,
    html_page,
    message_id,
    moment,
    money,
    person,
    plain,
)

# --- HDFC, ICICI, Kotak (IN) ---------------------------------------------------------

_HDFC = "HDFC Bank InstaAlerts <alerts@hdfcbank.bank.in>"


def hdfc_received(rng: random.Random) -> Sample:
    amount, name, ref, when = money(rng, 100, 400000), person(rng), code(rng, DIGITS, 12), moment(rng)
    html = html_page([
        "Dear Customer,", "Greetings from HDFC Bank!",
        f"We're writing to inform you that Rs.{grouped(amount, lakh=True)} has been "
        f"successfully credited to your HDFC Bank account ending in {code(rng, DIGITS, 4)}.",
        "Transaction Details:", f"a. Date: {when:%d-%m-%y}",
        f"b. Sender: {esc(name)} (VPA: {name.split()[0].lower()}@okaxis)",
        f"c. UPI Reference No.: {ref}", "Need Help? Call us."])
    raw = html_only(_HDFC, "View: Account update for your HDFC Bank A/c", when,
                    message_id(rng, "hdfcbank.bank.in"), html, cte="base64")
    return Sample("hdfc/received", raw, expect("received", amount_minor=amount, currency="INR",
                  transaction_id=ref, sender_name=name))


def hdfc_upi_debit(rng: random.Random) -> Sample:
    amount, when = money(rng, 100, 40000), moment(rng)
    html = html_page([
        "Dear Customer,", f"Rs.{grouped(amount)} has been debited from account **1234 to VPA "
        f"shop@ybl {esc(person(rng, True))} on {when:%d-%m-%y}.",
        f"Your UPI transaction reference number is {code(rng, DIGITS, 12)}."])
    raw = html_only(_HDFC, "❗  You have done a UPI txn. Check details!", when,
                    message_id(rng, "hdfcbank.bank.in"), html)
    return Sample("hdfc/upi_debit", raw, expect("not_money"))


def icici_received(rng: random.Random) -> Sample:
    amount, name, ref, when = money(rng, 100, 400000), person(rng, True), code(rng, DIGITS, 12), moment(rng)
    text = (f"ICICI Bank Account XX{code(rng, DIGITS, 3)} credited:Rs. {grouped(amount, lakh=True)} "
            f"on {when:%d-%b-%y}. Info UPI-{ref}-{name}. Available Balance is "
            f"Rs. {grouped(amount * 4, lakh=True)}.")
    raw = plain("ICICI Bank <alerts@icicibank.com>", "Transaction alert", when,
                message_id(rng, "icicibank.com"), text)
    return Sample("icici/received", raw, expect("received", amount_minor=amount, currency="INR",
                  transaction_id=ref, sender_name=name))


def icici_debit_trap(rng: random.Random) -> Sample:
    amount, when = money(rng, 100, 40000), moment(rng)
    text = (f"ICICI Bank Acct XX123 debited for Rs {grouped(amount)} on {when:%d-%b-%y}; "
            f"{person(rng, True)} credited. UPI:{code(rng, DIGITS, 12)}. Call 18002662 for dispute.")
    raw = plain("ICICI Bank <alerts@icicibank.com>", "Transaction alert", when,
                message_id(rng, "icicibank.com"), text)
    return Sample("icici/debit_trap", raw, expect("not_money"))


def kotak_received(rng: random.Random) -> Sample:
    amount, ref, when = money(rng, 100, 90000), code(rng, DIGITS, 12), moment(rng)
    vpa = f"{person(rng).split()[0].lower()}{rng.randrange(10, 99)}@okhdfcbank"
    booking = f"BK-{code(rng, UPPER, 6)}"
    text = (f"Received Rs.{grouped(amount)} in your Kotak Bank AC X{code(rng, DIGITS, 4)} from "
            f"{vpa} on {when:%d-%m-%y}.UPI Ref {ref}.\nRemarks: {booking}")
    raw = plain("Kotak Bank <alerts@kotakbank.com>", "Credit alert", when,
                message_id(rng, "kotak.com"), text, cte="base64")
    return Sample("kotak/received", raw, expect("received", amount_minor=amount, currency="INR",
                  transaction_id=ref, sender_name=vpa, note=booking))


def kotak_cashback(rng: random.Random) -> Sample:
    text = "Cashback of Rs.50.00 has been sent to your Kotak Bank A/c X1234 on 14-06-26."
    raw = plain("Kotak Bank <alerts@kotakbank.com>", "Cashback", moment(rng),
                message_id(rng, "kotak.com"), text)
    return Sample("kotak/cashback", raw, expect("not_money"))


# --- PayPal, Stripe, Wise, Venmo, Interac ----------------------------------------------

_PAYPAL = "PayPal <service@paypal.com>"


def _paypal_text(rng: random.Random, amount: int, name: str, txn: str, note: str) -> str:
    when = moment(rng)
    return (f"Hello, Shop Owner\n{name} sent you ${grouped(amount)}\u00a0USD\n"
            f"Note from {name}:\n{note}\nTransaction ID\n{txn}\n"
            f"Transaction date\n{when:%B} {when.day}, {when:%Y}\n"
            f"Amount ${grouped(amount)}\u00a0USD\n"
            "Don't see the money in your account? It can take a few minutes.")


def paypal_received(rng: random.Random) -> Sample:
    amount, name, txn = money(rng, 5, 2000), person(rng), code(rng, UPPER, 17)
    note = f"Booking {code(rng, UPPER, 6)}"
    text = _paypal_text(rng, amount, name, txn, note)
    html = html_page([esc(line) for line in text.split("\n")])
    raw = alternative(_PAYPAL, "You've got money", moment(rng), message_id(rng, "paypal.com"),
                      html, text)
    return Sample("paypal/received", raw, expect("received", amount_minor=amount, currency="USD",
                  transaction_id=txn, sender_name=name, note=note))


def paypal_forwarded(rng: random.Random) -> Sample:
    amount, name, txn = money(rng, 5, 2000), person(rng), code(rng, UPPER, 17)
    text = _paypal_text(rng, amount, name, txn, "thanks!")
    text = ("[image: PayPal] <https://www.paypal.com/x?tracking=1>\n"
            + text.replace("Transaction ID", "*Transaction ID*"))
    when = moment(rng)
    raw = gmail_forward(_PAYPAL, "You've got money", when, text, when + timedelta(hours=2),
                        message_id(rng, "mail.gmail.com"))
    return Sample("paypal/forwarded", raw, expect("received", amount_minor=amount,
                  currency="USD", transaction_id=txn, sender_name=name, verified=False),
                  FORWARDER)


def paypal_sent(rng: random.Random) -> Sample:
    amount, name = money(rng, 5, 2000), person(rng)
    text = (f"You sent ${grouped(amount)}\u00a0USD to {name}\n"
            f"Transaction ID\n{code(rng, UPPER, 17)}")
    raw = plain(_PAYPAL, f"You sent a payment to {name}", moment(rng),
                message_id(rng, "paypal.com"), text)
    return Sample("paypal/sent", raw, expect("not_money"))


def stripe_received(rng: random.Random) -> Sample:
    amount, name = money(rng, 5, 3000), person(rng)
    pi, booking = "pi_" + code(rng, UPPER + "abcdefghijk", 24), f"Order {code(rng, DIGITS, 5)}"
    html = html_page([f"You received a payment of ${grouped(amount)} from {esc(name)}.",
                      f"Payment ID: {pi}", "View payment in the Dashboard"])
    raw = alternative("Stripe <notifications@stripe.com>",
                      f"Payment of ${grouped(amount)} from {name} for {booking}", moment(rng),
                      message_id(rng, "stripe.com"), html, " ")
    return Sample("stripe/received", raw, expect("received", amount_minor=amount, currency="USD",
                  transaction_id=pi, sender_name=name, note=booking))


def stripe_payout(rng: random.Random) -> Sample:
    amount = money(rng, 500, 30000)
    html = html_page([f"Your payout of ${grouped(amount)} is on its way to ****{code(rng, DIGITS, 4)}.",
                      "Expected arrival: 2 business days"])
    raw = html_only("Stripe <notifications@stripe.com>",
                    f"Your payout of ${grouped(amount)} is on its way", moment(rng),
                    message_id(rng, "stripe.com"), html)
    return Sample("stripe/payout", raw, expect("not_money"))


def wise_received(rng: random.Random) -> Sample:
    currency = rng.choice(["EUR", "GBP", "USD"])
    amount, name, ref = money(rng, 10, 5000), person(rng), f"INV-{code(rng, DIGITS, 4)}"
    html = html_page([f"{grouped(amount)} {currency} from {esc(name)} has arrived in your "
                      f"{currency} balance.", f"Reference: {ref}"])
    raw = html_only("Wise <noreply@wise.com>",
                    f"You received {grouped(amount)} {currency} from {name}", moment(rng),
                    message_id(rng, "wise.com"), html)
    return Sample("wise/received", raw, expect("received", amount_minor=amount,
                  currency=currency, sender_name=name, note=ref))


def wise_card_spend(rng: random.Random) -> Sample:
    amount = money(rng, 1, 300)
    html = html_page([f"You spent {grouped(amount)} EUR at Corner Cafe.",
                      f"This used {grouped(amount)} EUR from your Wise account."])
    raw = html_only("Wise <noreply@wise.com>", f"{grouped(amount)} EUR spent at Corner Cafe",
                    moment(rng), message_id(rng, "wise.com"), html)
    return Sample("wise/card_spend", raw, expect("not_money"))


def venmo_received(rng: random.Random) -> Sample:
    amount, name, txn = money(rng, 5, 900), person(rng), code(rng, "123456789", 19)
    dollars, cents = divmod(amount, 100)
    when = moment(rng)
    html = html_page([f"{esc(name)} paid you", f"<span>$</span> <span>{dollars}</span> "
                      f"<span>.</span> <span>{cents:02d}</span>", "Note: concert tickets",
                      "Money credited to your Venmo account.",
                      f"Transaction details Date {when:%b} {when.day}, {when:%Y}",
                      f"Transaction ID {txn}", f"Sent to @{name.split()[0].lower()}"])
    raw = html_only("Venmo <venmo@venmo.com>", f"{name} paid you ${dollars}.{cents:02d}", when,
                    message_id(rng, "venmo.com"), html)
    return Sample("venmo/received", raw, expect("received", amount_minor=amount, currency="USD",
                  transaction_id=txn, sender_name=name, note="concert tickets"))


def venmo_paid(rng: random.Random) -> Sample:
    amount, name = money(rng, 5, 900), person(rng)
    html = html_page([f"You paid {esc(name)}", f"${grouped(amount)}",
                      f"Transaction ID {code(rng, '123456789', 19)}"])
    raw = html_only("Venmo <venmo@venmo.com>", f"You paid {name} ${grouped(amount)}",
                    moment(rng), message_id(rng, "venmo.com"), html)
    return Sample("venmo/paid", raw, expect("not_money"))


def interac_received(rng: random.Random) -> Sample:
    amount, name, ref = money(rng, 10, 3000), person(rng, True), "CA" + code(rng, UPPER, 8)
    memo = f"Invoice {code(rng, DIGITS, 4)}"
    html = html_page([f"Hi Shop, {esc(name)} sent you a payment that has been deposited.",
                      f"Message: {memo}", f"Reference Number: {ref}"])
    raw = alternative("Interac e-Transfer <notify@payments.interac.ca>",
                      f"INTERAC e-Transfer: A money transfer of ${grouped(amount)} (CAD) from "
                      f"{name} has been deposited.", moment(rng),
                      message_id(rng, "payments.interac.ca"), html,
                      f"Message: {memo}\nReference Number: {ref}")
    return Sample("interac/received", raw, expect("received", amount_minor=amount,
                  currency="CAD", transaction_id=ref, sender_name=name, note=memo))


def interac_request(rng: random.Random) -> Sample:
    name = person(rng, True)
    raw = plain("Interac e-Transfer <notify@payments.interac.ca>",
                f"INTERAC e-Transfer: {name} sent you a money request.", moment(rng),
                message_id(rng, "payments.interac.ca"), "Accept or decline the request.")
    return Sample("interac/request", raw, expect("not_money"))
