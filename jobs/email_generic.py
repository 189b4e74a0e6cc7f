"""The fallback reader: a trusted sender's text that no provider rule reads.

`read(text)` decides one of three things, and says why:
- "not_money": the text clearly is not money received (a one-time code, money
  paid/sent/withdrawn, a reversal or refund, a card or ATM transaction, a payout,
  a failed, cancelled, pending or not yet accepted transaction, a balance notice,
  marketing);
- "received": it clearly announces money received ("received / credited /
  deposited / sent you / paid you" wording and an amount with a currency), and
  the fields it could find (amount, currency, payer, phone, transaction id, date);
- None: neither is clear; the caller keeps it as unreadable evidence.
A generic reading is never verified and never confirmed automatically: the ledger
sends it to review with this explanation (see ParsedMail.generic).

Cost is bounded: at most _MAX_TEXT characters are read, and every pattern is a
single pass without nested unbounded repeats (tests feed it megabytes of hostile text).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_MAX_TEXT = 4000
_F = re.IGNORECASE

_OTP = re.compile(r"\b(?:OTP|one[- ]time (?:password|pin|code)|verification code|security code|"
                  r"do not share (?:it|this))\b", _F)
_OUT = re.compile(
    r"\b(?:you have (?:paid|sent|transferred|withdrawn)|you paid|you sent|you spent|paid to|sent to|"
    r"(?<!were )(?<!was )sent (?:rs|pkr|inr|ksh|ugx|usd|\$)|transferred to|debited|withdrawn|withdrawal|withdraw|spent at|"
    r"purchase|card (?:payment|transaction)|POS|ATM|payout|has been charged|charged for|bill payment|"
    r"you bought|money request|requested)\b", _F)
# The state of the whole transaction: wherever it is said, the money is not (or no longer) in.
_STATE = re.compile(
    r"\b(?:reversed|reversal|refund(?:ed)?|failed|insufficient|not enough|declined|unsuccessful|cancell?ed|"
    r"pending|on hold|authori[sz]ed|to deposit your money|(?:accept|claim) (?:the|this|your) "
    r"(?:money|transfer|payment))\b", _F)
_PROMO = re.compile(r"\b(?:win|offer|discount|cashback|bonus|promo(?:tion)?|sweepstakes|get up to|"
                    r"chance to|congratulations you (?:have )?won|dial \*)", _F)
_IN = re.compile(r"\b(?:received|credited|deposited|paid you|sent you|you got|got money|incoming|"
                 r"credit alert)\b", _F)
_BALANCE = re.compile(r"\b(?:balance|bal)\b", _F)

_CODES = "KSH|KSHS|KES|UGX|USH|USHS|PKR|INR|RS|USD|EUR|GBP|CAD|AUD|TZS|RWF|GHS|NGN|ZAR|COP"
_SYMBOL = r"(?:US\$|C\$|CA\$|A\$|\$|€|£|₹)"
_NUMBER = r"\d{1,3}(?:[,.' ]\d{2,3}){0,6}(?:[.,]\d{1,3})?(?:/-)?|\d{1,12}(?:[.,]\d{1,3})?(?:/-)?"
_MONEY = re.compile(
    rf"(?P<cur>{_SYMBOL}|(?:\b|(?<=[AP]M))(?:{_CODES})(?![A-Za-z])\.?)\s?(?P<amt>{_NUMBER})(?!\d)"
    rf"|(?<![\w.,])(?P<amt2>{_NUMBER})\s?(?P<cur2>\b(?:{_CODES})\b)", _F)
_NOT_THE_AMOUNT = re.compile(r"(?:balance|bal|fee|cost|charges?|limit)\W{0,3}(?:is|was|:)?\W{0,3}$", _F)

_NAME_STOP = (r"(?=\s+(?:on|at|via|in|into|to|for|A/?C|a/c|IBAN|Ref|UPI|ID|with|has|was|and|Acc\w*)\b"
              r"|\s*[.,;(\[]|\s+\+?\d{6,}|\s+\d{2,4}\*|\s*$)")
_NAME = r"(?P<name>[A-Za-z][A-Za-z'&\-]*(?: [A-Za-z][A-Za-z'&\-]*){0,5}|[\w.\-]{1,64}@[\w.\-]{1,64})"
_PAYER = (
    re.compile(rf"\bfrom\s+(?P<phone>\+?\d{{9,13}}),?\s+{_NAME}{_NAME_STOP}", _F),
    re.compile(rf"\bfrom\s+(?:VPA\s+|Mr\.?\s+|Ms\.?\s+|Mrs\.?\s+)?{_NAME}{_NAME_STOP}", _F),
    re.compile(rf"\b(?:sender|payer|remitter|paid by|sent by|by)\s*:?\s+{_NAME}{_NAME_STOP}", _F),
    re.compile(rf"^\s*{_NAME}\s+(?:sent you|paid you)\b", _F | re.M),
)
_UPI_INFO = re.compile(r"\bUPI[/-](?:P2[AM][/-])?(?P<id>\d{10,14})[/-](?P<name>[A-Za-z][A-Za-z ]{1,60}?)"
                       r"(?=\s*[/.]|\s*$|\s+(?:Avl|Available|Bal)\b)", _F)
_PHONE = re.compile(r"(?<![\w*])(?:\+?\d{11,13}|0\d{9,10})(?!\w)")
_TXN = re.compile(
    r"\b(?:transaction|txn|trx|tran|ref(?:erence)?|utr|rrn|tid|upi|id|confirmation|identifier|receipt)"
    r"[ \t]{0,2}(?:id|no|number|code|#)?\.?[ \t]{0,2}[:#]?\s{0,2}"
    r"(?P<id>#?[A-Za-z0-9][A-Za-z0-9.\-]{4,39})", _F)
_LEADING_CODE = re.compile(r"^\s*(?P<id>[A-Z0-9]{9,12})\s+Confirmed\b")
_DATE = re.compile(r"\bon\s+(?P<date>\d{1,4}[-/][A-Za-z0-9]{1,3}[-/]\d{2,4})"
                   r"(?:,?\s*(?:at\s+)?(?P<time>\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]M)?))?", _F)


@dataclass
class Reading:
    """What the fallback reader made of a text; `groups` uses the provider-rule field names."""

    kind: str | None
    why: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)


def read(text: str, subject: str = "") -> Reading:
    """Classify and read `text` (see the module docstring). Never raises."""
    body = re.sub(r"\*+", " ", f"{text[:_MAX_TEXT]}\n{subject[:200]}")  # the body's amount wins
    flat = re.sub(r"\s+", " ", body)
    head = re.sub(r"\s+", " ", re.sub(r"\*+", " ", subject[:200]))
    words = re.sub(r"\s+", " ", re.sub(r"\*+", " ", text[:_MAX_TEXT]))
    first_in = _IN.search(words)
    before = words[:first_in.start()] if first_in else words  # a promo tail after the news is not the news
    for pattern, where, what in ((_OTP, flat, "a one-time code"),
                                 (_STATE, flat, "a reversal, refund, failed, pending or not yet accepted transaction"),
                                 (_OUT, head, "money out or a card/ATM transaction"), (_PROMO, head, "marketing"),
                                 (_OUT, before, "money out or a card/ATM transaction"), (_PROMO, before, "marketing")):
        found = pattern.search(where)
        if found:
            return Reading("not_money", [f"generic reader: {found[0]!r} marks {what}; not money received"])
    incoming = _IN.search(flat)
    if incoming is None:
        if _BALANCE.search(flat):
            return Reading("not_money", ["generic reader: a balance notice without received wording"])
        return Reading(None, ["generic reader: no received/credited/deposited wording; not guessed"])
    money = _amount(flat)
    if money is None:
        return Reading(None, [f"generic reader: {incoming[0]!r} but no amount with a currency; not guessed"])
    currency, amount = money
    groups = {"amount": amount, "currency": currency}
    why = [f"generic reader: {incoming[0]!r} wording and the amount {currency} {amount}"]
    _payer(flat, groups, why)
    _ids(body, flat, groups, why)
    date = _DATE.search(flat)
    if date:
        groups["date"] = date["date"]
        if date["time"]:
            groups["time"] = date["time"]
    return Reading("received", why, groups)


def _amount(flat: str) -> tuple[str, str] | None:
    for found in _MONEY.finditer(flat):
        if _NOT_THE_AMOUNT.search(flat[max(0, found.start() - 24):found.start()]):
            continue
        return (found["cur"] or found["cur2"]).strip(), (found["amt"] or found["amt2"]).strip()
    return None


def _payer(flat: str, groups: dict, why: list[str]) -> None:
    upi = _UPI_INFO.search(flat)
    if upi:  # Indian bank "Info" field: UPI/P2A/<ref>/<NAME> or UPI-<ref>-<NAME>
        groups["sender_name"], groups["transaction_id"] = upi["name"], upi["id"]
        why.append(f"payer {upi['name']!r} and reference {upi['id']} from the UPI info field")
        return
    for pattern in _PAYER:
        found = pattern.search(flat)
        if found and not re.fullmatch(r"(?i)(?:your|the|an?|my|account|bank|you)", found["name"]):
            groups["sender_name"] = found["name"]
            why.append(f"payer {found['name']!r} after {found[0].split()[0]!r}")
            phone = _PHONE.match(flat, found.end() + len(re.match(r"[\s,(]*", flat[found.end():found.end() + 8])[0]))
            if "phone" in pattern.groupindex or phone:
                groups["sender_phone"] = found["phone"] if "phone" in pattern.groupindex else phone[0]
            return


def _ids(body: str, flat: str, groups: dict, why: list[str]) -> None:
    if "transaction_id" in groups:
        return
    found = _LEADING_CODE.search(body)
    if found is None:
        found = next((m for m in _TXN.finditer(flat) if any(c.isdigit() for c in m["id"])), None)
    if found is not None:
        groups["transaction_id"] = found["id"].rstrip(".-")
        why.append(f"transaction id {groups['transaction_id']!r}")
