"""ParsedMail, and filling its fields from what a rule (or the fallback reader) captured.

Named groups become integer minor units and an ISO currency, a transaction id of
bounded length, a payer name/phone (E.164), a note, and an aware UTC time read in
the provider's zone (the carrier's own time only as a fallback, and the reasons say so).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from jobs.email_providers import Provider, Rule
from jobs.email_values import (
    ValueReadError,
    as_decimal_string,
    on_day_at,
    parse_amount,
    parse_local_datetime,
    read_currency,
    zone,
)
from webapp.domain.phones import try_e164

_EMPTY_NOTES = {"N/A", "NA", "NONE", "-", "NULL"}
_MAX_NAME, _MAX_NOTE = 200, 2000  # what the API accepts for the same fields


@dataclass
class ParsedMail:
    """What one mail means for Paywatch; only kind "received" is money in."""

    kind: str
    provider: str | None = None
    message_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    transaction_id: str | None = None
    sender_name: str | None = None
    sender_phone: str | None = None
    note: str | None = None
    received_at: datetime | None = None
    verified: bool = False
    reversed_transaction_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    source_ref: str = ""
    channel: str | None = None  # "email" | "forward" | "sms"
    rule: str | None = None
    generic: bool = False  # read by the fallback reader (jobs/email_generic.py), not a rule


@dataclass
class Context:
    """The provider message located inside the mail, whatever carried it."""

    provider: Provider
    channel: str
    subject: str
    bodies: list[tuple[str, str]]
    fallback_time: datetime | None
    fallback_note: str
    sender_address: str


def outcome(rule: Rule, groups: dict[str, str], ctx: Context,
             result: ParsedMail) -> ParsedMail:
    if rule.kind == "not_money":
        result.kind = "not_money"
        result.reasons.append("not money received: nothing is counted")
        return result
    try:
        _fill_money(rule, groups, ctx, result)
    except ValueReadError as exc:
        return _unreadable(result, str(exc))
    result.kind = rule.kind
    _fill_people(groups, ctx, result)
    _fill_time(groups, ctx, result)
    return result


def _unreadable(result: ParsedMail, why: str) -> ParsedMail:
    result.kind, result.amount_minor, result.currency = "unparsed", None, None
    result.transaction_id = result.reversed_transaction_id = None
    result.reasons.append(f"{why}; kept as evidence, nothing guessed")
    return result


def _fill_money(rule: Rule, groups: dict[str, str], ctx: Context,
                result: ParsedMail) -> None:
    provider = ctx.provider
    written = groups.get("currency_code") or groups.get("currency")
    currency = read_currency(written, provider.currency, provider.currency_aliases)
    result.transaction_id = _token(groups.get("transaction_id"))
    result.reversed_transaction_id = _token(groups.get("reversed_transaction_id"))
    if "amount" in groups:
        result.amount_minor = parse_amount(groups["amount"], currency)
        result.currency = currency
        how = f"written {written!r}" if written else "the provider's default"
        result.reasons.append(f"amount {groups['amount']!r} → "
                              f"{as_decimal_string(result.amount_minor, currency)} {currency}"
                              f" (currency {how})")
    elif rule.kind == "received":
        raise ValueReadError("the rule matched but captured no amount")
    if result.transaction_id:
        result.reasons.append(f"transaction id {result.transaction_id}")
    if result.reversed_transaction_id:
        result.reasons.append(f"reverses transaction {result.reversed_transaction_id}: "
                              "send that payment to review")


_MAX_TOKEN = 128  # a transaction id longer than the column holds is not one


def _token(value: str | None) -> str | None:
    token = re.sub(r"\s+", "", value[:_MAX_TOKEN * 2]) if value else None
    if token and len(token) > _MAX_TOKEN:
        raise ValueReadError(f"transaction id {token[:24]!r}… is over {_MAX_TOKEN} characters")
    return token


def _fill_people(groups: dict[str, str], ctx: Context, result: ParsedMail) -> None:
    name = groups.get("sender_name")
    if name:
        result.sender_name = re.sub(r"\s+", " ", name[:_MAX_NAME]).strip(" .,;:-")
        result.reasons.append(f"sender name {result.sender_name!r}")
    phone = groups.get("sender_phone")
    if phone:
        result.sender_phone = try_e164(phone, ctx.provider.region)
        result.reasons.append(f"sender phone {phone!r} → {result.sender_phone}"
                              if result.sender_phone else
                              f"sender phone {phone!r} is masked or invalid; not kept")
    note = groups.get("note")
    if note and note.strip().upper() not in _EMPTY_NOTES:
        result.note = re.sub(r"\s+", " ", note[:_MAX_NOTE]).strip()
        result.reasons.append(f"note {result.note!r}")


def _fill_time(groups: dict[str, str], ctx: Context, result: ParsedMail) -> None:
    provider = ctx.provider
    tz = zone(provider.timezone)
    text = " ".join(v for v in (groups.get("date"), groups.get("time")) if v)
    if text:
        try:
            moment, has_time = parse_local_datetime(text, provider.date_formats, tz)
        except ValueReadError as exc:
            result.reasons.append(f"{exc}; using {ctx.fallback_note}")
        else:
            result.received_at = moment if has_time else on_day_at(moment, tz, ctx.fallback_time)
            result.reasons.append(f"time {text!r} read in {provider.timezone} → "
                                  f"{result.received_at.isoformat()}"
                                  + ("" if has_time else " (no clock in the text)"))
            return
    result.received_at = ctx.fallback_time
    when = result.received_at.isoformat() if result.received_at else "none"
    result.reasons.append(f"no time in the text; used {ctx.fallback_note}: {when}")
