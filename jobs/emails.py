"""Provider notification mail → one `ParsedMail` (money received, or why not).

Providers are data (jobs/providers/*.toml, plus any directory a user names;
format in jobs/email_providers.py). `parse_message()` never raises: whatever the
bytes, it returns a ParsedMail whose `reasons` say what was decided and why.

Trust, in order:
1. The From address is a provider sender (exact address, domain, or
   `*.domain`) → the provider's rules read the mail; `verified=True`.
   Mail with more than one From address is ignored (a spoofing trick).
2. The From address is a configured forwarder (`trusted_forwarders`, same
   pattern forms) → we look inside, and whatever we find is `verified=False`:
   a. a forward (Gmail "---------- Forwarded message ---------", Proton
      "------- Forwarded Message -------", Outlook "-----Original Message-----",
      Apple "Begin forwarded message:", or an attached message/rfc822): only the
      inner message is read, and its quoted From must be a provider sender;
   b. a forwarded SMS, by this convention (first that applies):
      - JSON or JSON-ish text in the body with a sender key (`sender`, `from`,
        `address`, `phone`) and a text key (`message`, `body`, `text`, `msg`):
        `{"sender": "MPESA", "message": "TK3… Confirmed…"}`;
      - a line `From: MPESA` (or `Sender: …`, `SMS from: …`) in the body; the
        SMS is the rest of the body, minus metadata lines (`Date:`, `To:`,
        `Received:`, `Sent:`, `SIM:`…);
      - a subject `SMS from MPESA` / `New SMS from 3737` / `SMS: MPESA`, with
        the SMS as the whole body.
      The sender id must be one of a provider's `sms_senders` (compared without
      case or punctuation: "M-PESA" is "MPESA"). The transaction time comes from
      the SMS text; the mail's Date header (the forwarding time) is only a
      fallback, and the reasons say so.
3. Anyone else → kind "ignored".

Once a provider is known, its rules run in file order and the first that
matches decides: "received" (money in), "reversal" (an earlier receipt pulled
back; `reversed_transaction_id` names it so the caller can send that payment to
review) or "not_money" (outgoing, payout, failure, marketing...). Mail from a
provider that no rule reads is "unparsed": kept as evidence, never guessed.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from jobs.email_providers import Provider, Rule, load_providers, sender_matches
from jobs.email_text import header_date, inner_forward, read_mail, sms_in, source_ref
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

__all__ = ["ParsedMail", "parse_message", "load_providers", "explain"]

_EMPTY_NOTES = {"N/A", "NA", "NONE", "-", "NULL"}
_MAX_NAME, _MAX_NOTE = 200, 2000  # what the API accepts for the same fields
KINDS = ("received", "reversal", "not_money", "unparsed", "ignored")


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


@dataclass
class _Context:
    """The provider message located inside the mail, whatever carried it."""

    provider: Provider
    channel: str
    subject: str
    bodies: list[tuple[str, str]]
    fallback_time: datetime | None
    fallback_note: str
    sender_address: str


def parse_message(raw: bytes, *, providers: list | None = None,
                  trusted_forwarders: Iterable[str] = ()) -> ParsedMail:
    """Parse one raw RFC 822 message. Never raises; see the module docstring."""
    result = ParsedMail(kind="ignored")
    try:
        raw = raw if isinstance(raw, bytes) else _as_bytes(raw)
        result.source_ref = source_ref(raw, None)
        known = _builtin_providers() if providers is None else list(providers)
        return _parse(raw, known, tuple(trusted_forwarders), result)
    except Exception as exc:  # hostile mail must not stop a mailbox fetch
        return _failed(result, exc)


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="replace")
    return bytes(raw)  # bytearray, memoryview; anything else raises → guarded


def _failed(result: ParsedMail, exc: Exception) -> ParsedMail:
    """Turn an unexpected error into a non-money result that keeps the evidence."""
    kept = ParsedMail(kind="unparsed" if result.provider else "ignored",
                      provider=result.provider, message_id=result.message_id,
                      verified=result.verified, channel=result.channel,
                      source_ref=result.source_ref or "unknown",
                      reasons=[*result.reasons])
    kept.reasons.append(f"parsing stopped on an error ({type(exc).__name__}: {exc}); "
                        "nothing was extracted")
    return kept


@functools.lru_cache(maxsize=1)
def _builtin_cached() -> tuple[Provider, ...]:
    return tuple(load_providers())


def _builtin_providers() -> list[Provider]:
    """The built-in providers, read once per process (files do not change at run time)."""
    return list(_builtin_cached())


def _parse(raw: bytes, providers: list[Provider], forwarders: tuple[str, ...],
           result: ParsedMail) -> ParsedMail:
    mail = read_mail(raw)
    result.message_id = mail.message_id
    result.source_ref = source_ref(raw, mail.message_id)
    if len(mail.from_addresses) != 1:
        result.reasons.append(f"{len(mail.from_addresses)} From addresses "
                              f"({', '.join(mail.from_addresses) or 'none'}): not trusted")
        return result
    sender = mail.from_address
    if mail.problem:
        return _unread(mail, sender, providers, result)
    context = _direct(mail, providers, result)
    if context is None and any(sender_matches(f, sender) for f in forwarders):
        result.reasons.append(f"From {sender} is a configured forwarder: looking inside")
        context = _forwarded(mail, providers, result) or _sms(mail, providers, result)
        if context is None:
            result.reasons.append("no provider message found inside the forwarder's mail")
    if context is None:
        if not result.reasons:
            result.reasons.append(f"From {sender} is neither a provider sender nor a "
                                  "configured forwarder")
        return result
    result.provider, result.channel = context.provider.name, context.channel
    result.verified = context.channel == "email"
    return _apply_rules(context, result)


def _unread(mail, sender: str, providers: list[Provider], result: ParsedMail) -> ParsedMail:
    """A mail too big or too deep to read: a provider's is kept as unreadable evidence."""
    provider = _provider_for(sender, providers)
    if provider is not None:
        result.kind, result.provider, result.channel = "unparsed", provider.name, "email"
        result.verified = True
        result.reasons.append(f"From {sender} is a sender of {provider.label}, but {mail.problem}; "
                              "kept as evidence, nothing read")
    else:
        result.reasons.append(f"{mail.problem}; not read (From {sender})")
    return result


def _provider_for(address: str, providers: list[Provider]) -> Provider | None:
    return next((p for p in providers if p.sends_from(address)), None)


def _direct(mail, providers: list[Provider], result: ParsedMail) -> _Context | None:
    provider = _provider_for(mail.from_address, providers)
    if provider is None:
        return None
    result.reasons.append(f"From {mail.from_address} is a sender of {provider.label}")
    return _Context(provider, "email", mail.subject, mail.bodies, mail.date,
                    "the mail's Date header", mail.from_address)


def _forwarded(mail, providers: list[Provider], result: ParsedMail) -> _Context | None:
    """A provider mail forwarded inline or attached; only the inner message counts."""
    for attached in mail.attached:
        inner = read_mail(attached)
        provider = _provider_for(inner.from_address, providers)
        if provider is not None:
            result.reasons.append(f"attached message from {inner.from_address} "
                                  f"({provider.label}); forwarded, so unverified")
            return _Context(provider, "forward", inner.subject, inner.bodies, inner.date,
                            "the attached message's Date header", inner.from_address)
    for label, text in mail.bodies:
        forward = inner_forward(text)
        if forward is None:
            continue
        provider = _provider_for(forward.from_address, providers)
        if provider is None:
            result.reasons.append(f"forwarded message from {forward.from_address or '?'} "
                                  "is not from a provider")
            return None
        result.reasons.append(f"forwarded message ({label} part) quotes From "
                              f"{forward.from_address} ({provider.label}); unverified")
        when = _forward_date(forward.date_text, provider) or mail.date
        subject = re.sub(r"^\s*(?:(?:fwd?|fw|re)\s*:\s*)+", "", forward.subject or mail.subject,
                         flags=re.I)
        return _Context(provider, "forward", subject, [(f"forwarded {label}", forward.body)],
                        when, "the forwarded message's Date line", forward.from_address)
    return None


_FORWARD_DATE_FORMATS = ("%a, %b %d, %Y %I:%M %p", "%A, %B %d, %Y %I:%M %p",
                         "%a, %d %b %Y %H:%M", "%B %d, %Y %I:%M %p", "%b %d, %Y %I:%M %p")


def _forward_date(text: str, provider: Provider) -> datetime | None:
    """The quoted Date line of a forward: RFC 2822, or Gmail/Proton's display form."""
    parsed = header_date(text)
    if parsed is not None:
        return parsed
    cleaned = re.sub(r"^On\s+|(?<=\d)(?:st|nd|rd|th)\b", "", text.strip())
    try:
        return parse_local_datetime(cleaned, _FORWARD_DATE_FORMATS, zone(provider.timezone))[0]
    except ValueReadError:
        return None


def _sms(mail, providers: list[Provider], result: ParsedMail) -> _Context | None:
    """An SMS carried in the forwarder's mail (convention in the module docstring)."""
    for label, text in mail.bodies or [("empty", "")]:
        sms = sms_in(mail.subject, text)
        if sms is None:
            continue
        provider = next((p for p in providers if p.sends_sms_as(sms.sender)), None)
        if provider is None:
            result.reasons.append(f"SMS sender id {sms.sender!r} ({sms.where}) belongs to "
                                  "no provider")
            return None
        result.reasons.append(f"SMS from sender id {sms.sender!r} ({sms.where}) is "
                              f"{provider.label}; forwarded, so unverified")
        return _Context(provider, "sms", "", [("sms", sms.text)], mail.date,
                        "the forwarder's Date header (forwarding time, may lag)", "")
    return None


# ---------------------------------------------------------------------------
# Rules

def _apply_rules(ctx: _Context, result: ParsedMail) -> ParsedMail:
    for rule in ctx.provider.rules:
        if ctx.channel not in rule.channels:
            continue
        if rule.senders and not any(sender_matches(s, ctx.sender_address) for s in rule.senders):
            continue
        for label, body in ctx.bodies or [("empty body", "")]:
            groups = _match(rule, ctx.subject, body)
            if groups is not None:
                result.rule = rule.name
                result.reasons.append(f"rule {rule.name!r} ({rule.kind}"
                                      f"{': ' + rule.why if rule.why else ''}) matched the "
                                      f"{'subject and ' if rule.subject else ''}{label} text")
                return _outcome(rule, groups, ctx, result)
    result.kind = "unparsed"
    result.reasons.append(f"no rule of {ctx.provider.label} matched; kept as evidence, "
                          "nothing guessed")
    return result


def _match(rule: Rule, subject: str, body: str) -> dict[str, str] | None:
    """Named groups when every required pattern matches and no `unless` does."""
    both = f"{subject}\n{body}"
    if any(p.search(both) for p in rule.unless):
        return None
    groups: dict[str, str] = {}
    for patterns, text in ((rule.subject, subject), (rule.body, body)):
        for pattern in patterns:
            found = pattern.search(text)
            if found is None:
                return None
            _merge(groups, found)
    for pattern in rule.optional:
        found = pattern.search(both)
        if found is not None:
            _merge(groups, found)
    return groups


def _merge(groups: dict[str, str], found: re.Match) -> None:
    for key, value in found.groupdict().items():
        if value and value.strip() and key not in groups:
            groups[key] = value.strip()


def _outcome(rule: Rule, groups: dict[str, str], ctx: _Context,
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


def _fill_money(rule: Rule, groups: dict[str, str], ctx: _Context,
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


def _fill_people(groups: dict[str, str], ctx: _Context, result: ParsedMail) -> None:
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


def _fill_time(groups: dict[str, str], ctx: _Context, result: ParsedMail) -> None:
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


def explain(parsed: ParsedMail) -> str:
    """Multi-line text for `flask parsers test`: the fields, then the reasons."""
    lines = [f"kind:        {parsed.kind}"]
    money = (f"{as_decimal_string(parsed.amount_minor, parsed.currency)} {parsed.currency}"
             if parsed.amount_minor is not None and parsed.currency else None)
    for label, value in (
        ("provider", parsed.provider), ("channel", parsed.channel), ("rule", parsed.rule),
        ("amount", money), ("transaction", parsed.transaction_id),
        ("reverses", parsed.reversed_transaction_id), ("sender", parsed.sender_name),
        ("phone", parsed.sender_phone), ("note", parsed.note),
        ("received", parsed.received_at.isoformat() if parsed.received_at else None),
        ("verified", "yes" if parsed.verified else "no (forwarded or not from a provider)"),
        ("message-id", parsed.message_id), ("source_ref", parsed.source_ref),
    ):
        if value is not None:
            lines.append(f"{label + ':':<12} {value}")
    lines.append("why:")
    lines.extend(f"  - {reason}" for reason in parsed.reasons)
    return "\n".join(lines)

