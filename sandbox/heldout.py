"""Held-out provider texts: rendered from templates written off shared/providers.md.

This is deliberately not the parser's approach (regexes per provider): each
template is a `str.format` text written straight from a providers.md template
line, filled with random invented names, amounts, ids and dates, then wrapped in
a random carrier (SMS forwarder line/JSON/subject, an app-notification
forwarder envelope, native e-mail plain or HTML, a Gmail forward). Each sample
says what a right reading is; `score()` compares a reading field by field.
Used by tests/test_heldout.py and bench/parsers.py.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sandbox.mail_mime import FORWARDER, SMS_FORWARDER, alternative, gmail_forward, html_page, plain, sms_forward

FIELDS = ("amount_minor", "currency", "transaction_id", "sender_name", "sender_phone")
_GIVEN = ["Wanjiku", "Otieno", "Nakato", "Ssempa", "Ayesha", "Usman", "Ravi", "Meera", "Carlos",
          "Hannah", "Tobias", "Lina", "Kwame", "Zainab", "Ishaan", "Fatuma", "Noel", "Mariam"]
_FAMILY = ["Kamau", "Mwangi", "Okello", "Namubiru", "Siddiqui", "Malik", "Sharma", "Pillai",
           "Ortega", "Brooks", "Lindqvist", "Haddad", "Boateng", "Akhtar", "Menon", "Ali"]
_BASE = datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)


@dataclass
class HeldOut:
    """One rendered message and its right reading (kind plus fields)."""

    provider: str
    template: str
    raw: bytes
    kind: str  # received | not_income (anything but "received" is right for it)
    fields: dict


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _alnum(rng: random.Random, n: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _thousands(whole: int, sep: str = ",") -> str:
    return f"{whole:,}".replace(",", sep)


def _lakh(whole: int) -> str:
    digits = str(whole)
    if len(digits) <= 3:
        return digits
    head, tail, groups = digits[:-3], digits[-3:], []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *groups, tail])


def _values(rng: random.Random) -> dict:
    """Every placeholder a template may use, freshly invented."""
    first, last = rng.choice(_GIVEN), rng.choice(_FAMILY)
    whole = rng.randrange(50, 95000)
    when = _BASE + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
    cents = rng.choice([0, 0, 50, rng.randrange(1, 100)])
    hour12 = when.strftime("%I").lstrip("0")
    v = dict(
        NAME=f"{first} {last}".upper(), Name=f"{first} {last}", FIRST=first.upper(), whole=whole,
        AMT=f"{_thousands(whole)}.{cents:02d}", AMT0=_thousands(whole), AMTN=f"{whole}.{cents:02d}",
        AMTL=f"{_lakh(whole * 10)}.{cents:02d}", AMTDOT=f"{_thousands(whole, '.')}.{cents:02d}",
        AMT1=f"{whole}.{cents // 10}", minor=whole * 100 + cents, minor1=whole * 100 + cents // 10 * 10,
        minorL=whole * 1000 + cents, minor0=whole * 100,
        KE07="07" + _digits(rng, 8), UG2567="2567" + rng.choice("0145678") + _digits(rng, 7), UG7="7" + rng.choice("0145") + _digits(rng, 7),
        PK03="03" + _digits(rng, 9),
        MPESA=rng.choice("STU") + _alnum(rng, 9), D11=_digits(rng, 11), D12=_digits(rng, 12),
        D6=_digits(rng, 6), D16="SM" + _alnum(rng, 14, "0123456789ABCDEF"), D19=_digits(rng, 19),
        D9=_digits(rng, 9), PP17=_alnum(rng, 17), HEX24="".join(rng.choice("0123456789abcdef") for _ in range(24)),
        CASH7=_alnum(rng, 7), CASHD="D-" + _alnum(rng, 8), PI="pi_" + _alnum(rng, 24, "abcdefghijkmnopqrstuvwxyzABCDEFGH0123456789"),
        TXNDOT=f"MP{when:%y%m%d}.{when:%H%M}.{rng.choice('ABC')}{_digits(rng, 5)}",
        ORG=rng.choice(["600100", "522522", "247247", "888880"]),
        BANK=rng.choice(["KCB BANK", "EQUITY BANK", "NCBA BANK", "I&M BANK"]),
        L4=_digits(rng, 4), L3=_digits(rng, 3), VPA=f"{first.lower()}{_digits(rng, 2)}@ok{rng.choice(['axis', 'hdfcbank', 'sbi'])}",
        dmy=f"{when.day}/{when.month}/{when:%y}", hm12=f"{hour12}:{when:%M} {when:%p}",
        iso=f"{when:%Y-%m-%d %H:%M:%S}", isohm=f"{when:%Y-%m-%d %H:%M}", dmY=f"{when:%d-%m-%Y}",
        dmyd=f"{when:%d-%m-%y}", dbY=f"{when:%d-%b-%Y}", dby=f"{when:%d-%b-%y}", dBY=f"{when:%d/%b/%Y}".upper(),
        slash=f"{when:%d/%m/%Y %H:%M:%S}", hms=f"{when:%H:%M:%S}", hm=f"{when:%H:%M}", hm12z=f"{when:%I:%M %p}",
        mdy=f"{when:%b} {when.day}, {when:%Y}", Mdy=f"{when:%B} {when.day}, {when:%Y}",
        nay=f"{when:%d %b %Y}, {when:%I:%M %p}", when=when,
    )
    v["KE254"] = "254" + v["KE07"][1:]
    return v


# (provider, template name, carrier, sender, subject, body, kind, expected fields as templates)
# Carriers: "sms" (any SMS forwarder style), "notif" (app-notification envelope with
# Title = sender), "mail" (native plain), "html" (native HTML), "fwd" (Gmail forward).
_T = [
    # P1 M-Pesa personal
    ("mpesa", "p2p", "sms", "MPESA", "",
     "{MPESA} Confirmed.You have received Ksh{AMT} from {NAME} {KE07} on {dmy} at {hm12}  New M-PESA balance is Ksh1,204.00. Earn interest daily on Ziidi MMF.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="{NAME}", sender_phone="+{KE254}")),
    ("mpesa", "p2p-space-masked", "sms", "M-PESA", "",
     "{MPESA} Confirmed. You have received Ksh{AMT} from {NAME} 07{L3[0]}{L3[1]}***{L3} on {dmy} at {hm12} New M-PESA balance is Ksh9,870.00.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="{NAME}")),
    ("mpesa", "bank-with-org-number", "sms", "MPESA", "",
     "{MPESA} Confirmed.You have received Ksh{AMT} from {BANK} {ORG} on {dmy} at {hm12} New M-PESA balance is Ksh20,000.00.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="{BANK}")),
    ("mpesa", "congratulations-apostrophe", "sms", "MPESA", "",
     "{MPESA} Confirmed.Congratulations! You have received Ksh{AMTN} from {FIRST} NDUNG'U {KE254} on {dmy} {hm12} New M-PESA balance is Ksh3,000.00.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="{FIRST} NDUNG'U", sender_phone="+{KE254}")),
    ("mpesa", "till", "sms", "MPESA", "",
     "{MPESA} Confirmed.on {dmy} at {hm12}Ksh{AMT} received from {KE254} {Name}. New Account balance is Ksh50,110.00. Transaction cost, Ksh0.00.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="{Name}", sender_phone="+{KE254}")),
    ("mpesa", "sent", "sms", "MPESA", "",
     "{MPESA} Confirmed. Ksh{AMT} sent to {NAME} {KE07} on {dmy} at {hm12}. New M-PESA balance is Ksh100.00. Transaction cost, Ksh13.00. Amount you can transact within the day is 499,000.00.",
     "not_income", {}),
    ("mpesa", "paid-to", "sms", "MPESA", "",
     "{MPESA} Confirmed. Ksh{AMT} paid to NAIVAS SUPERMARKET. on {dmy} at {hm12}.New M-PESA balance is Ksh70.00.",
     "not_income", {}),
    ("mpesa", "reversal", "sms", "MPESA", "",
     "{MPESA} confirmed. Reversal of transaction {MPESA} has been successfully reversed  on {dmy}  at {hm12} and Ksh{AMT} is debited from your M-PESA account. New M-PESA account balance is Ksh10.00.",
     "not_income", {}),
    # P3 MTN Uganda
    ("mtn_ug", "current", "sms", "MTNMobMoney", "",
     "You have received UGX {AMT0} from {NAME}, {UG2567} on {iso}. Reason: rent. Your new balance: UGX 120,000. ID: {D11}.",
     "received", dict(amount_minor="{whole}", currency="UGX", transaction_id="{D11}", sender_name="{NAME}", sender_phone="+{UG2567}")),
    ("mtn_ug", "bracket-phone-no-seconds", "sms", "MTNMobMoney", "",
     "You have received UGX {whole} from {NAME} ({UG2567}) on {isohm}. Reason: stock. Your new balance: UGX 9,000. Financial Transaction Id: {D11}.",
     "received", dict(amount_minor="{whole}", currency="UGX", transaction_id="{D11}", sender_name="{NAME}", sender_phone="+{UG2567}")),
    ("mtn_ug", "sent", "sms", "MTNMobMoney", "",
     "You have sent UGX {AMT0} to {NAME}, {UG2567} on {iso}. Fee UGX 500. Your new balance: UGX 1,000. ID: {D11}.",
     "not_income", {}),
    # P4 Airtel Uganda
    ("airtel_ug", "received", "sms", "AirtelMoney", "",
     "RECEIVED. TID {D12}. UGX {AMT0} from {UG7}, {FIRST}. Bal UGX 40,500.",
     "received", dict(amount_minor="{whole}", currency="UGX", transaction_id="{D12}", sender_name="{FIRST}", sender_phone="+256{UG7}")),
    ("airtel_ug", "txn-id-with-dots", "notif", "AirtelMoney", "",
     "RECEIVED. TID {TXNDOT}. UGX {AMT0} from {UG7}, {NAME}. Bal UGX 61,000.",
     "received", dict(amount_minor="{whole}", currency="UGX", transaction_id="{TXNDOT}", sender_name="{NAME}", sender_phone="+256{UG7}")),
    ("airtel_ug", "sent", "sms", "AirtelMoney", "",
     "SENT. TID {D12}. UGX {AMT0} to {NAME} 0{UG7}. Fee UGX 300. Bal UGX 2,000.", "not_income", {}),
    # P6 NayaPay (e-mail, HTML)
    ("nayapay", "received", "html", "NayaPay <service@nayapay.com>", "You got Rs. {AMT0} from {Name} \U0001F389",
     "Cha-Ching!|{Name}|{FIRST}42@nayapay|{nay}|Rs. {AMT0}|AMOUNT DETAILS|Amount Received|Rs. {AMT0}|TRANSACTION DETAILS|Transaction ID|{HEX24}",
     "received", dict(amount_minor="{minor0}", currency="PKR", transaction_id="{HEX24}", sender_name="{Name}")),
    ("nayapay", "sent", "html", "NayaPay <service@nayapay.com>", "You sent Rs. {AMT0} to {Name} \U0001F4B8",
     "It's a good day to be {Name}!|{nay}|- Rs. {AMT0}|Amount Sent|Transaction ID|{HEX24}", "not_income", {}),
    # P7 Easypaisa
    ("easypaisa", "raast-received", "sms", "3737", "",
     "Dear ZARA KHAN, You have received Rs.{AMT} in your Easypaisa account ***********{L4} from {NAME} PK**MEZN****{L4} via Raast Payment on {dmY} at {hms}. Trx ID: {D11}",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D11}", sender_name="{NAME}")),
    ("easypaisa", "card", "notif", "easypaisa", "",
     "Txn ID {D11}. Debit Card No. ***{L4}. You have paid Rs. {AMT} at DARAZ PK on {iso}. Transaction Fee: Rs. 0.00", "not_income", {}),
    # P8 JazzCash
    ("jazzcash", "raast-in", "notif", "JazzCash", "",
     "Rs {AMT1} received from {NAME} AC ********{L4} in your JazzCash Mobile Account:{PK03} via Raast. TID: {D12}",
     "received", dict(amount_minor="{minor1}", currency="PKR", transaction_id="{D12}", sender_name="{NAME}")),
    ("jazzcash", "marketing", "notif", "JazzCash", "",
     "Maintain Rs. 50K & Get a Chance to Win 1 CRORE! Dial *786#", "not_income", {}),
    # P9 HBL, Faysal, Meezan
    ("hbl", "raast", "sms", "HBL", "",
     "{FIRST}, PKR {AMT} received from {NAME} A/C via Raast on {slash}, TXN ID {D16}. UAN:111-111-425.",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D16}", sender_name="{NAME}")),
    ("hbl", "debit", "sms", "HBL", "",
     "Your HBL A/C 1234***{L4} has been debited with PKR {AMT} on {slash}.", "not_income", {}),
    ("faysal", "raast-ref", "sms", "FBL", "",
     "ZARA KHAN A/c # *{L4} received PKR {AMT} via RAAST from {NAME} IBAN *{L4} on {dby} at {hm12z} Ref#:{D12} Info:{D6}",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D12}", sender_name="{NAME}")),
    ("faysal", "ibft-no-id", "sms", "FBL", "",
     "PKR {AMTDOT} received from {NAME} BAFL  A/C *{L4} via IBFT in FBL A/C *{L4} on {dBY} at {hm12z}",
     "received", dict(amount_minor="{minor}", currency="PKR", sender_name="{NAME}")),
    ("faysal", "sent", "sms", "FBL", "",
     "PKR {AMTDOT} sent to {NAME} A/C *{L4} via IBFT from FBL A/C *{L4} on {dBY} {hm12z} Ref # {D6}.", "not_income", {}),
    ("meezan", "raast", "sms", "Meezan", "",
     "PKR {AMT} received from {NAME} PK36MEZN****{L4} as RAAST payment in your AC# xxx{L4} on {dbY} at {hm} TID:{D6}.",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D6}", sender_name="{NAME}")),
    ("meezan", "sent", "sms", "Meezan", "",
     "PKR {AMT} sent to {NAME} PK36MEZN****{L4} as RAAST payment from your AC# xxx{L4} of DHA BRANCH on {dbY} at {hm} TID:{D6}.", "not_income", {}),
    # P10 HDFC
    ("hdfc", "current", "mail", "HDFC Bank InstaAlerts <alerts@hdfcbank.bank.in>", "View: Account update for your HDFC Bank A/c",
     "Dear Customer,\nGreetings from HDFC Bank!\nWe're writing to inform you that Rs.{AMTN} has been successfully credited to your HDFC Bank account ending in {L4}.\nTransaction Details:\na. Date: {dmyd}\nb. Sender: {NAME} (VPA: {VPA})\nc. UPI Reference No.: {D12}\nNeed Help?",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}", sender_name="{NAME}")),
    ("hdfc", "older", "mail", "alerts@hdfcbank.net", "View: Account update for your HDFC Bank A/c",
     "Dear Customer, Rs.{AMTN} has been credited to your account **{L4} by VPA {VPA} {NAME} on {dmyd}. Your UPI transaction reference number is {D12}.",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}", sender_name="{NAME}")),
    ("hdfc", "credit-alert-sms", "sms", "HDFCBK", "",
     "Credit Alert!\nRs.{AMTN} credited to HDFC Bank A/c XX{L4} on {dmyd} from VPA {VPA} (UPI {D12})",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}", sender_name="{VPA}")),
    ("hdfc", "upi-debit", "mail", "alerts@hdfcbank.bank.in", "\u2757  You have done a UPI txn. Check details!",
     "Dear Customer, Rs.{AMTN} has been debited from account **{L4} to VPA {VPA} {NAME} on {dmyd}. Your UPI transaction reference number is {D12}.", "not_income", {}),
    # P11 Kotak, ICICI, SBI, Axis
    ("kotak", "upi", "sms", "KOTAKB", "",
     "Received Rs.{AMTN} in your Kotak Bank AC X{L4} from {VPA} on {dmyd}.UPI Ref {D12}.",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}", sender_name="{VPA}")),
    ("kotak", "imps-no-payer", "mail", "Kotak Bank <alerts@kotakbank.com>", "Credit in your account",
     "Received Rs. {AMTN} on {dmyd} in your Kotak Bank A/C x{L4} by an A/C linked to mobile x{L3}. IMPS Ref no {D12}.",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}")),
    ("kotak", "sent", "sms", "KOTAKB", "", "Sent Rs.{AMTN} from Kotak Bank AC X{L4} to {VPA} on {dmyd}.UPI Ref {D12}.", "not_income", {}),
    ("icici", "credit-upi", "sms", "ICICIB", "",
     "ICICI Bank Account XX{L3} credited:Rs. {AMTL} on {dby}. Info UPI-{D12}-{NAME}. Available Balance is Rs. 1,00,000.00.",
     "received", dict(amount_minor="{minorL}", currency="INR", transaction_id="{D12}", sender_name="{NAME}")),
    ("icici", "debit-trap", "sms", "ICICIB", "",
     "ICICI Bank Acct XX{L3} debited for Rs {AMTN} on {dby}; {NAME} credited. UPI:{D12}. Call 18002662 for dispute.", "not_income", {}),
    ("sbi", "credited-by", "sms", "SBIINB", "",
     "Your A/C XXXXX{D6} has been credited by Rs.{AMTN} on {when:%d%b%y} by transfer from {NAME}. Ref No {D12} -SBI",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}", sender_name="{NAME}")),
    ("axis", "credited-mask-no-space", "sms", "AXISBK", "",
     "INR {AMTN} credited to A/C*{L4} on {dmyd} at {hms} IST. Info- UPI/P2A/{D12}/{NAME}. Avl bal INR 5,000.00",
     "received", dict(amount_minor="{minor}", currency="INR", transaction_id="{D12}", sender_name="{NAME}")),
    # P12-13 PayPal
    ("paypal", "personal", "mail", "PayPal <service@paypal.com>", "You've got money",
     "Hello, Shop Owner\n{Name} sent you ${AMT}\u00a0USD\nNote from {Name}:\nInvoice 77\nTransaction ID\n{PP17}\nTransaction date\n{Mdy}\nAmount ${AMT}\u00a0USD",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{PP17}", sender_name="{Name}")),
    ("paypal", "gmail-forward-stars", "fwd", "service@paypal.com", "You've got money",
     "[image: PayPal] <https://www.paypal.com/x?y=1>\nHello, Shop Owner\n*{Name} sent you ${AMT} USD*\n*Transaction\nID*\n{PP17}\n*Transaction date*\n{Mdy}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{PP17}", sender_name="{Name}")),
    ("paypal", "merchant", "mail", "service@paypal.com", "Notification of payment received",
     "You received a payment of ${AMT} USD\nBuyer\n{Name}\n{FIRST}@example.com\nTransaction ID\n{PP17}\nTransaction date\n{mdy}\nInvoice ID\nINV-{D6}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{PP17}", sender_name="{Name}")),
    # P14 Venmo
    ("venmo", "paid-you", "html", "Venmo <venmo@venmo.com>", "{Name} paid you ${AMT}",
     "{Name} paid you|$ {AMT}|Money credited to your Venmo account.|Transaction details|Date {mdy}|Transaction ID {D19}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{D19}", sender_name="{Name}")),
    ("venmo", "you-paid", "html", "Venmo <venmo@venmo.com>", "You paid {Name} ${AMT}",
     "You paid {Name}|$ {AMT}|Transaction ID {D19}", "not_income", {}),
    # P15 Cash App
    ("cashapp", "old-layout", "mail", "Cash App <cash@square.com>", "{Name} sent you ${AMT0}",
     "{Name}\nPayment from ${FIRST}\n${AMT}\nReceived\nAmount\n${AMT}\nDestination\nCash\nIdentifier\n#{CASH7}\nTo\nShop Owner\nFrom\n{Name}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="#{CASH7}", sender_name="{Name}")),
    ("cashapp", "new-layout", "mail", "Cash App <noreply@cash.app>", "Cash App: You received ${AMT} from {Name}",
     "You were sent ${AMT} by {Name}\nFor rent\nTransaction number\n#{CASHD}\nPayment between\nRecipient Shop Owner\nSender {Name}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="#{CASHD}", sender_name="{Name}")),
    ("cashapp", "you-paid", "mail", "Cash App <cash@square.com>", "You paid {Name} ${AMT0}",
     "{Name}\nPayment to ${FIRST}\n${AMT}\nCompleted\nSource\nCash\nIdentifier\n#{CASH7}", "not_income", {}),
    # P16 Zelle
    ("zelle", "chase", "html", "Chase <no.reply.alerts@chase.com>", "You received money with Zelle\u00ae",
     "{NAME} sent you money|Amount|${AMT}|Sent on|{mdy}|Transaction number|{D9}|Memo|N/A",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{D9}", sender_name="{NAME}")),
    ("zelle", "bofa", "mail", "Bank of America <customerservice@ealerts.bankofamerica.com>", "{Name} sent you ${AMT}",
     "{Name} sent you ${AMT}\nPlease allow up to 5 minutes for the money to deposit into your account.",
     "received", dict(amount_minor="{minor}", currency="USD", sender_name="{Name}")),
    ("zelle", "chase-sent", "html", "Chase <no.reply.alerts@chase.com>", "You sent money with Zelle\u00ae",
     "You sent ${AMT} to {NAME}|Transaction number|{D9}", "not_income", {}),
    # P17 Interac, P18 Stripe, P19 Wise
    ("interac", "deposited", "mail", "notify@payments.interac.ca",
     "INTERAC e-Transfer: A money transfer of ${AMT} (CAD) from {NAME} has been deposited.",
     "Hi Shop Owner,\n{NAME} ({FIRST}@example.com) sent you ${AMT} (CAD) and the money has been automatically deposited into your bank account.\nMessage: invoice {D6}\nReference Number: CA{D9}",
     "received", dict(amount_minor="{minor}", currency="CAD", sender_name="{NAME}")),
    ("stripe", "payment", "mail", "Stripe <notifications@stripe.com>", "Payment of ${AMT} from {FIRST}@example.com",
     "You received a payment of ${AMT} from {FIRST}@example.com.\nPayment ID {PI}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{PI}")),
    ("stripe", "payout", "mail", "Stripe <notifications@stripe.com>", "Your payout of ${AMT} is on its way",
     "Your payout of ${AMT} is on its way to ****{L4}. Expected arrival {mdy}.", "not_income", {}),
    ("wise", "card", "mail", "Wise <noreply@wise.com>", "Card payment: {AMT} EUR spent at LIDL",
     "You spent {AMT} EUR at LIDL.\nThis used {AMT} EUR from your Wise account.", "not_income", {}),
    # Look-alikes any trusted sender may send
    ("mpesa", "otp", "sms", "MPESA", "", "Your M-PESA verification code is {D6}. Do not share it.", "not_income", {}),
    ("hdfc", "balance", "sms", "HDFCBK", "", "Available balance in A/c XX{L4} is Rs.{AMTN} as on {dmyd}.", "not_income", {}),
]

# A second batch written afterwards from providers.md, and measured before any rule was changed for it
# (figures in the closing note of issue 13): other wordings and variants the same sections describe.
_T += [
    ("mpesa", "till-upper-no-dot", "sms", "MPESA", "",
     "{MPESA} Confirmed on {dmy} at {hm12}KSH{AMT} received from {KE254} {Name}. New Account balance is Ksh8,000.00. Transaction cost, Ksh0.00.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="{Name}", sender_phone="+{KE254}")),
    ("mpesa", "b2c-loop", "sms", "MPESA", "",
     "{MPESA} Confirmed.You have received Ksh{AMT} from LOOP B2C. on {dmy} at {hm12} New M-PESA balance is Ksh12,000.00.",
     "received", dict(amount_minor="{minor}", currency="KES", transaction_id="{MPESA}", sender_name="LOOP B2C")),
    ("mpesa", "own-reversal-credited", "sms", "MPESA", "",
     "{MPESA} confirmed. Reversal of transaction {MPESA} has been successfully reversed  on {dmy}  at {hm12} and Ksh{AMT} is credited to your M-PESA account. New M-PESA account balance is Ksh10.00.",
     "not_income", {}),
    ("mpesa", "failed", "sms", "MPESA", "", "Failed. You do not have enough money in your M-PESA account to send Ksh{AMT}.", "not_income", {}),
    ("mtn_ug", "cross-network", "sms", "MTNMobMoney", "",
     "You have received UGX {AMT0} from Airtel Money on {iso}. Reason: {NAME}, 0{UG7}. Your new balance: UGX 70,000. ID: {D11}.",
     "received", dict(amount_minor="{whole}", currency="UGX", transaction_id="{D11}", sender_name="{NAME}", sender_phone="+256{UG7}")),
    ("mtn_ug", "yello-2015", "sms", "MTNMobMoney", "",
     "Y'ello. You have received UGX {whole}.00 from {NAME} ({UG2567}) on your mobile money account at {iso}.Your new balance:UGX 1,000.",
     "received", dict(amount_minor="{whole}", currency="UGX", sender_name="{NAME}", sender_phone="+{UG2567}")),
    ("mtn_ug", "reversed", "sms", "MTNMobMoney", "", "Your transaction of UGX {AMT0} to {NAME} has been reversed. TxnID: {D11}.", "not_income", {}),
    ("airtel_ug", "reversed", "sms", "AirtelMoney", "", "REVERSED. TID {D12}. UGX {AMT0} from {UG7}, {NAME}. Bal UGX 1,000.", "not_income", {}),
    ("faysal", "ft-upper-month", "sms", "FBL", "",
     "PKR {AMT} received from {NAME}  A/C *{L4} via FT in FBL A/C *{L4} on {dbY} at {hm12z}",
     "received", dict(amount_minor="{minor}", currency="PKR", sender_name="{NAME}")),
    ("meezan", "em-dash-date", "notif", "Meezan", "",
     "PKR {AMT} received from {NAME} PK36MEZN****{L4} as RAAST payment in your AC# xxx{L4} on {when:%d} — {when:%b} — {when:%Y} at {hm} TID:{D6}.",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D6}", sender_name="{NAME}")),
    ("hdfc", "neft-sms", "sms", "HDFCBK", "",
     "Update! INR {AMTL} deposited in HDFC Bank A/c XX{L4} on {when:%d-%b-%y} for NEFT Cr-HDFC0001234-{NAME}-SHOP OWNER-N{D12}.Avl bal INR 9,00,000.00. Cheque deposits in A/C are subject to clearing",
     "received", dict(amount_minor="{minorL}", currency="INR", transaction_id="N{D12}", sender_name="{NAME}")),
    ("hdfc", "card-reversal", "mail", "alerts@hdfcbank.net", "Alert : Update on your HDFC Bank Credit Card",
     "Transaction Reversed! Rs.{AMTN} has been credited back to your HDFC Bank Credit Card ending {L4}.", "not_income", {}),
    ("icici", "neft-info", "mail", "ICICI Bank <alerts@icicibank.com>", "Transaction alert",
     "ICICI Bank Account XX{L3} credited:Rs. {AMTL} on {dby}. Info NEFT-N{D12}-{NAME}. Available Balance is Rs. 5,00,000.00.",
     "received", dict(amount_minor="{minorL}", currency="INR", sender_name="{NAME}")),
    ("kotak", "cashback", "sms", "KOTAKB", "", "Cashback of Rs.50.00 has been sent to your Kotak Bank A/c X{L4}.", "not_income", {}),
    ("paypal", "money-received-from", "mail", "service@paypal.com", "You've got money",
     "Money received from {Name} ${AMT}\nTransaction ID\n{PP17}\nTransaction date\n{Mdy}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{PP17}", sender_name="{Name}")),
    ("paypal", "euro-merchant", "mail", "servicio@paypal.es", "Notification of payment received",
     "You received a payment of €{AMT} EUR\nBuyer\n{Name}\nTransaction ID\n{PP17}",
     "received", dict(amount_minor="{minor}", currency="EUR", transaction_id="{PP17}", sender_name="{Name}")),
    ("venmo", "request-split-spans", "html", "venmo@venmo.com", "{Name} paid your ${AMT0}.{when:%M} request",
     "{Name} paid your request|$ {AMT0} . {when:%M}|Money credited to your Venmo account.|Payment ID: {D19}",
     "received", dict(amount_minor="{whole}{when:%M}", currency="USD", transaction_id="{D19}", sender_name="{Name}")),
    ("cashapp", "subject-for-note", "html", "cash@square.com", "Cash App: You received ${AMT} from {Name} for rent",
     "Payment received|Cash App", "received", dict(amount_minor="{minor}", currency="USD", sender_name="{Name}")),
    ("zelle", "td", "mail", "TD Bank <alerts@tdbank.com>", "Zelle payment received",
     "We have successfully deposited the ${AMT} payment from {Name} (confirmation number {D9}) into your account.",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{D9}", sender_name="{Name}")),
    ("zelle", "native", "mail", "Zelle <alerts@zellepay.com>", "{Name} sent you ${AMT}",
     "{Name} sent you ${AMT}\nThe money is on its way to your bank account.",
     "received", dict(amount_minor="{minor}", currency="USD", sender_name="{Name}")),
    ("interac", "pending", "mail", "notify@payments.interac.ca", "INTERAC e-Transfer: {NAME} sent you money.",
     "Hi Shop Owner, {NAME} sent you ${AMT} (CAD). To deposit your money, click here.", "not_income", {}),
    ("stripe", "payment-for", "mail", "notifications@stripe.com", "Payment of ${AMT} from {Name} for Order {D6}",
     "A payment of ${AMT} from {Name} succeeded.\nPaymentIntent {PI}",
     "received", dict(amount_minor="{minor}", currency="USD", transaction_id="{PI}", sender_name="{Name}")),
    ("wise", "received-c", "mail", "Wise <noreply@wise.com>", "You received {AMT} EUR from {Name}",
     "{AMT} EUR from {Name} has arrived in your EUR balance. Reference: INV{D6}.",
     "received", dict(amount_minor="{minor}", currency="EUR", sender_name="{Name}")),
    ("hbl", "no-seconds", "sms", "HBL", "",
     "{FIRST}, PKR {AMT} received from {NAME} A/C via Raast on {when:%d/%m/%Y %H:%M}, TXN ID {D16}. UAN:111-111-425.",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D16}", sender_name="{NAME}")),
    ("easypaisa", "no-seconds", "sms", "3737", "",
     "Dear ZARA KHAN, You have received Rs.{AMT} in your Easypaisa account ***********{L4} from {NAME} PK**HABB****{L4} via Raast Payment on {dmY} at {hm}. Trx ID: {D11}",
     "received", dict(amount_minor="{minor}", currency="PKR", transaction_id="{D11}", sender_name="{NAME}")),
    ("nayapay", "card", "html", "service@nayapay.com", "You spent Rs. {AMT0} at DARAZ 💳",
     "Rs. {AMT0}|Visa ●●●●{L4}|Transaction ID|{D6}", "not_income", {}),
]

PROVIDERS = tuple(dict.fromkeys(t[0] for t in _T))


def _fill(template: str, values: dict) -> str:
    return template.format(**values)


def _carry(rng: random.Random, carrier: str, sender: str, subject: str, body: str, when: datetime,
           msg_id: str) -> bytes:
    if carrier == "sms":
        return sms_forward(sender, body, when, msg_id, rng.choice(["line", "json", "subject"]))
    if carrier == "notif":
        text = (f"App: {sender}\nTitle: {sender}\nText: {body}\n"
                f"Posted: {when:%Y-%m-%d %H:%M:%S}\n")
        return plain(SMS_FORWARDER, f"Notification from {sender}", when, msg_id, text)
    if carrier == "html":
        return alternative(sender, subject, when, msg_id, html_page(body.split("|")), " ")
    if carrier == "fwd":
        return gmail_forward(sender, subject, when, body, when + timedelta(minutes=3), msg_id)
    return plain(sender, subject, when, msg_id, body)


def samples(seed: int = 1, per_template: int = 4) -> list[HeldOut]:
    """`per_template` renderings of every template, deterministic for `seed`."""
    rng = random.Random(seed)
    out = []
    for provider, name, carrier, sender, subject, body, kind, expected in _T:
        for index in range(per_template):
            values = _values(rng)
            raw = _carry(rng, carrier, sender, _fill(subject, values), _fill(body, values), values["when"],
                         f"<heldout-{provider}-{name}-{seed}-{index}@heldout.example>")
            fields = {k: _typed(k, _fill(v, values)) for k, v in expected.items()}
            out.append(HeldOut(provider, name, raw, kind, fields))
    return out


def _typed(key: str, value: str):
    return int(value) if key == "amount_minor" else value


def trusted() -> tuple[str, ...]:
    return (FORWARDER, SMS_FORWARDER)


def _same(key: str, want, got) -> bool:
    if key == "sender_name":
        return " ".join(str(got or "").split()).casefold() == " ".join(str(want).split()).casefold()
    if key == "transaction_id":
        return str(got or "").lstrip("#").upper() == str(want).lstrip("#").upper()
    return got == want


def score(sample: HeldOut, parsed) -> tuple[int, int, bool]:
    """(fields right, fields expected, non-income counted as income) for one reading.

    A received sample scores its kind plus every expected field; a not-income sample
    scores only its kind, and counting it as money is the error that must never happen.
    """
    if sample.kind != "received":
        counted = parsed.kind == "received"
        return int(parsed.kind in ("not_money", "reversal")), 1, counted
    right = int(parsed.kind == "received")
    right += sum(_same(k, v, getattr(parsed, k)) for k, v in sample.fields.items())
    return right, 1 + len(sample.fields), False
