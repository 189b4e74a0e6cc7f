"""The signals of one payment against one request: phone, name, what staff taught.

Pure, like the rest of matching. _Payment works out the payment's side once; each
function returns an Evidence (or the facts candidates() counts across requests).
"""
from __future__ import annotations

import re
from datetime import datetime

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from webapp.domain.matching import names
from webapp.domain.matching.facts import POINTS, Evidence, Learned, MatchSettings, PaymentFacts, RequestFacts
from webapp.domain.money import display
from webapp.domain.references import Quoted

_MASK = re.compile(r"[*xX•#?]+")
_NON_DIGIT = re.compile(r"\D")
_PHONE_TEXT = re.compile(r"^\+?[\d\s().\-*xX•#?]+$")
_MIN_VISIBLE = 5  # fewer visible digits of a masked phone prove nothing
_MIN_STRONG = 6  # a masked phone fitting one candidate alone is strong from this many
_SUFFIX = 9


def _digits(phone: str | None) -> str:
    return _NON_DIGIT.sub("", phone or "")


class _Payment:
    """The payment's side of every comparison, worked out once per payment."""

    __slots__ = ("facts", "received", "quoted", "name", "phone", "masked", "txn", "amount",
                 "rules", "learned", "_names", "_shared")

    def __init__(self, payment: PaymentFacts, now: datetime | None, settings: MatchSettings,
                 learned: tuple[Learned, ...] = ()) -> None:
        if payment.received_at.tzinfo is None:
            raise ValueError("payment.received_at must be timezone-aware")
        self.facts = payment
        # A time in the future is a source's clock or time-zone error: we saw it by now.
        self.received = min(payment.received_at, now) if now is not None else payment.received_at
        self.quoted = Quoted(payment.note)
        self.rules = settings.names
        parsed = names.parse(payment.sender_name, self.rules)
        self.name = " ".join(sorted(w.canon for w in parsed.words))  # also names.key(): how aliases are kept
        phone = (payment.sender_phone or "").strip()
        self.phone = phone if _PHONE_TEXT.match(phone) else ""
        self.masked: tuple[str, str, int] | None = None
        if self.phone and _MASK.search(self.phone):
            parts = _MASK.split(self.phone.lstrip("+"))
            lead, tail = _digits(parts[0]).lstrip("0"), _digits(parts[-1])
            hidden = sum(len(m) for m in _MASK.findall(self.phone))
            self.masked = (lead, tail, hidden) if len(parts) == 2 else ("", "", 0)
        self.txn = (payment.transaction_id or "").strip().upper()
        self.amount = display(payment.amount_minor, payment.currency)
        self.learned = tuple(e for e in learned if self._is_mine(e))
        self._names: dict[str, names.NameMatch | None] = {}
        self._shared: dict[tuple, Evidence] = {}

    def shared(self, signal: str, points: int, detail: str) -> Evidence:
        """The one Evidence(signal, points, detail) of this payment's candidates: a detail that
        depends on the payment only, or on a value many candidates share (their currency, their
        source), is made once (Evidence is immutable; a payment has ~10 candidates)."""
        key = (signal, points, detail)
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = Evidence(signal, points, detail)
        return found

    def _is_mine(self, entry: Learned) -> bool:
        if entry.kind == "name":
            return bool(self.name) and entry.alias == self.name
        ours, theirs = _digits(self.phone), _digits(entry.alias)
        # The alias is E.164; the payment's phone may be written locally: compare the last 9 digits.
        return (self.masked is None and len(ours) >= _SUFFIX
                and (ours == theirs or ours[-_SUFFIX:] == theirs[-_SUFFIX:]))

    def same_name(self, customer: str | None) -> names.NameMatch | None:
        """How the payer's name is `customer`'s by the name rules (cached per name), or None."""
        text = customer or ""
        if text not in self._names:
            self._names[text] = names.compare(self.facts.sender_name, text, self.rules) if self.name else None
        return self._names[text]


def masked_fit(pay: _Payment, customer: str | None) -> bool:
    """A masked payment phone showing enough digits that fit the customer's phone."""
    if pay.masked is None or not customer:
        return False
    lead, tail, hidden = pay.masked
    if len(lead) + len(tail) < _MIN_VISIBLE:
        return False
    theirs = _digits(customer)
    head = theirs[:len(theirs) - hidden - len(tail)]
    return theirs.endswith(tail) and head.endswith(lead)


def phone(pay: _Payment, customer: str | None, masked_fits: int = 0) -> Evidence:
    """Same phone (60); a masked phone fitting this customer only (60) or several (15)."""
    sender = pay.phone
    if not customer:
        return Evidence("phone", 0, "the request has no phone")
    if not sender:
        return Evidence("phone", 0, "no readable phone on the payment")
    if pay.masked is not None:
        lead, tail, _ = pay.masked
        if len(lead) + len(tail) < _MIN_VISIBLE:
            return Evidence("phone", 0, f"masked phone {sender} shows too little")
        if not masked_fit(pay, customer):
            return Evidence("phone", 0, f"masked phone {sender} does not fit {customer}")
        if masked_fits == 1 and len(lead) + len(tail) >= _MIN_STRONG:
            return Evidence("phone", POINTS["phone_masked"],
                            f"masked phone {sender} fits {customer}, and no other open request's phone")
        others = f"; it fits {masked_fits} open requests' phones" if masked_fits > 1 else ""
        return Evidence("phone", POINTS["phone_partial"], f"masked phone {sender} fits {customer}{others}")
    ours, theirs = _digits(sender), _digits(customer)
    if ours == theirs or (not (sender.startswith("+") and customer.startswith("+"))
                          and len(ours) >= _SUFFIX and ours[-_SUFFIX:] == theirs[-_SUFFIX:]):
        return Evidence("phone", POINTS["phone"], f"same phone {customer}")
    return Evidence("phone", 0, f"phone {sender} is not {customer}")


def name(pay: _Payment, customer: str | None, settings: MatchSettings, *, refused: bool = False,
         rival_named: bool = False) -> Evidence:
    """Same name by the name rules (35, the rule named), one letter off (35; only 15 when
    another candidate's name is the payer's by the rules: Patel is not Patil), similar (15)."""
    sender = pay.facts.sender_name
    if not pay.name:
        return Evidence("name", 0, "no name to compare")
    theirs = names.key(customer, pay.rules)
    if not theirs:
        return Evidence("name", 0, "no name to compare")
    if refused:
        return Evidence("name", 0, f"staff said {sender!r} is not {customer!r}")
    found = pay.same_name(customer)
    if found is not None:
        return Evidence("name", POINTS["name"], f"{sender!r} is {customer!r}: {found.explain()}")
    if min(len(pay.name), len(theirs)) >= 5 and OSA.distance(pay.name, theirs, score_cutoff=1) <= 1:
        if rival_named:
            return Evidence("name", POINTS["name_similar"], f"{sender!r} is {customer!r} but for one letter, "
                                                            "and another request's name is the payer's")
        return Evidence("name", POINTS["name"], f"{sender!r} is {customer!r} but for one letter")
    ratio = round(fuzz.ratio(pay.name, theirs))  # a token-sort ratio: both keys are sorted words
    if ratio >= settings.name_similar_ratio:
        return Evidence("name", POINTS["name_similar"], f"{sender!r} resembles {customer!r} ({ratio}%)")
    return Evidence("name", 0, f"{sender!r} is not {customer!r} ({ratio}%)")


def _for_customer(entry: Learned, request: RequestFacts, rules: names.NameRules) -> bool:
    if entry.customer_phone:
        return bool(request.customer_phone) and _digits(entry.customer_phone) == _digits(request.customer_phone)
    return bool(entry.customer_name) and entry.customer_name == names.key(request.customer_name, rules)


def refused(pay: _Payment, request: RequestFacts) -> bool:
    """Staff rejected a payment of this payer's name for this customer: never suggest it on the name."""
    return bool(pay.learned) and any(e.kind == "name" and e.rejected and _for_customer(e, request, pay.rules)
                                     for e in pay.learned)


def learned(pay: _Payment, request: RequestFacts, settings: MatchSettings) -> list[Evidence]:
    """One Evidence per kind of alias staff taught for this payer (name, phone), when any."""
    if not pay.learned:
        return []
    found = []
    for kind, signal, what in (("name", "learned_name", "name"), ("phone", "learned_phone", "phone")):
        entries = [e for e in pay.learned if e.kind == kind]
        if not entries:
            continue
        mine = [e for e in entries if _for_customer(e, request, pay.rules)]
        shown = (mine or entries)[0].shown or (mine or entries)[0].alias
        others = [e for e in entries if e not in mine and e.confirmed and not e.rejected]
        confirmed = sum(e.confirmed for e in mine)
        if not mine:
            found.append(Evidence(signal, 0, f"staff taught {what} {shown!r} for another customer"))
        elif any(e.rejected for e in mine):
            found.append(Evidence(signal, 0, f"staff rejected {what} {shown!r} for this customer: withdrawn"))
        elif others:
            found.append(Evidence(signal, 0, f"staff confirmed {what} {shown!r} for this customer and "
                                             f"{len(others)} other(s): not telling"))
        elif confirmed >= settings.learn_after:
            found.append(Evidence(signal, POINTS["learned"],
                                  f"staff confirmed {what} {shown!r} for this customer {confirmed} times"))
        else:
            found.append(Evidence(signal, POINTS["learned_weak"],
                                  f"staff confirmed {what} {shown!r} for this customer {confirmed} time(s); "
                                  f"decisive after {settings.learn_after}"))
    return found
