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
      - an app-notification forwarder's envelope `App: … / Title: … / Text: … /
        Posted: …` (jobs/email_sms.py): the Title, else the App, is the sender id.
      The sender id is matched against providers' `sms_senders` (compared without
      case or punctuation: "M-PESA" is "MPESA"). Several SMS joined in one mail are
      split (jobs/email_sms.split_messages) and each is read: parse_messages()
      returns one ParsedMail per message, source_ref "<Message-ID>#n". The transaction time comes from
      the SMS text; the mail's Date header (the forwarding time) is only a
      fallback, and the reasons say so.
3. Anyone else → kind "ignored".

Once a provider is known, its rules run in file order and the first that
matches decides: "received" (money in), "reversal" (an earlier receipt pulled
back; `reversed_transaction_id` names it so the caller can send that payment to
review) or "not_money" (outgoing, payout, failure, marketing...). Mail from a
provider that no rule reads goes to the fallback reader (jobs/email_generic.py), : a clear
not-income text becomes "not_money"; a clear money-received text becomes "received"
with `generic=True` and `verified=False` (the ledger never confirms it automatically:
review, with these reasons); anything else is "unparsed": kept as evidence, never guessed.
"""
from __future__ import annotations

import copy
import functools
import re
from datetime import datetime
from typing import Iterable

from jobs import email_generic
from jobs.email_fields import Context, ParsedMail, outcome
from jobs.email_providers import Provider, Rule, installed_providers, instance_dir, load_providers, sender_matches
from jobs.email_sms import as_sms, notifications_in, split_messages
from jobs.email_text import header_date, inner_forward, read_mail, sms_in, source_ref
from jobs.email_values import ValueReadError, as_decimal_string, parse_local_datetime, zone

__all__ = ["ParsedMail", "parse_message", "parse_messages", "load_providers", "explain"]

KINDS = ("received", "reversal", "not_money", "unparsed", "ignored")


def parse_message(raw: bytes, *, providers: list | None = None,
                  trusted_forwarders: Iterable[str] = ()) -> ParsedMail:
    """Parse one raw RFC 822 message. Never raises; see the module docstring.

    A mail carrying several SMS gives the first one's reading; parse_messages() gives all.
    """
    return parse_messages(raw, providers=providers, trusted_forwarders=trusted_forwarders)[0]


def parse_messages(raw: bytes, *, providers: list | None = None,
                   trusted_forwarders: Iterable[str] = ()) -> list[ParsedMail]:
    """Every provider message in one raw mail (several when a forwarder joined SMS),
    each with its own `source_ref` ("<Message-ID>#2"…). Never raises; never empty."""
    result = ParsedMail(kind="ignored")
    try:
        raw = raw if isinstance(raw, bytes) else _as_bytes(raw)
        result.source_ref = source_ref(raw, None)
        known = _builtin_providers() if providers is None else list(providers)
        return _parse(raw, known, tuple(trusted_forwarders), result)
    except Exception as exc:  # hostile mail must not stop a mailbox fetch
        return [_failed(result, exc)]


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


@functools.lru_cache(maxsize=4)
def _installed_cached(stamp: tuple) -> tuple[Provider, ...]:
    return tuple(installed_providers())


def _builtin_providers() -> list[Provider]:
    """Built-in and instance-folder providers, read again only when the instance folder changes."""
    here = instance_dir()
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in here.glob("*.toml"))) if here.is_dir() else ()
    return list(_installed_cached((str(here), stamp)))


def _parse(raw: bytes, providers: list[Provider], forwarders: tuple[str, ...],
           result: ParsedMail) -> list[ParsedMail]:
    mail = read_mail(raw)
    result.message_id = mail.message_id
    result.source_ref = source_ref(raw, mail.message_id)
    if len(mail.from_addresses) != 1:
        result.reasons.append(f"{len(mail.from_addresses)} From addresses "
                              f"({', '.join(mail.from_addresses) or 'none'}): not trusted")
        return [result]
    sender = mail.from_address
    if mail.problem:
        return [_unread(mail, sender, providers, result)]
    contexts = [c for c in [_direct(mail, providers, result)] if c is not None]
    if not contexts and any(sender_matches(f, sender) for f in forwarders):
        result.reasons.append(f"From {sender} is a configured forwarder: looking inside")
        forwarded = _forwarded(mail, providers, result)
        contexts = [forwarded] if forwarded is not None else _sms(mail, providers, result)
        if not contexts:
            result.reasons.append("no provider message found inside the forwarder's mail")
    if not contexts:
        if not result.reasons:
            result.reasons.append(f"From {sender} is neither a provider sender nor a "
                                  "configured forwarder")
        return [result]
    pieces = [(c, text) for c in contexts for text in _pieces(c)]
    results = []
    for index, (context, text) in enumerate(pieces, start=1):
        one = copy.deepcopy(result)
        if len(pieces) > 1:
            one.source_ref = f"{result.source_ref}#{index}"
            one.reasons.append(f"message {index} of {len(pieces)} joined in this mail")
        if text is not None:
            context = copy.copy(context)
            context.bodies = [("sms", text)]
        one.provider = context.provider.name if context.provider else None
        one.channel = context.channel
        one.verified = context.channel == "email"
        results.append(_apply_rules(context, one))
    return results or [result]


def _pieces(context: Context) -> list[str | None]:
    """The SMS texts in an SMS context (several when joined); [None] for mail."""
    if context.channel != "sms" or not context.bodies:
        return [None]
    return split_messages(context.bodies[0][1])


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


def _direct(mail, providers: list[Provider], result: ParsedMail) -> Context | None:
    provider = _provider_for(mail.from_address, providers)
    if provider is None:
        return None
    result.reasons.append(f"From {mail.from_address} is a sender of {provider.label}")
    return Context(provider, "email", mail.subject, mail.bodies, mail.date,
                    "the mail's Date header", mail.from_address)


def _forwarded(mail, providers: list[Provider], result: ParsedMail) -> Context | None:
    """A provider mail forwarded inline or attached; only the inner message counts."""
    for attached in mail.attached:
        inner = read_mail(attached)
        provider = _provider_for(inner.from_address, providers)
        if provider is not None:
            result.reasons.append(f"attached message from {inner.from_address} "
                                  f"({provider.label}); forwarded, so unverified")
            return Context(provider, "forward", inner.subject, inner.bodies, inner.date,
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
        return Context(provider, "forward", subject, [(f"forwarded {label}", forward.body)],
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


def _sms(mail, providers: list[Provider], result: ParsedMail) -> list[Context]:
    """The SMS or app notifications carried in the forwarder's mail (module docstring).

    A sender id no provider claims is not read at all: spoofed "You have received" SMS
    from look-alike ids are a known fraud (providers.md 1.1).
    """
    for label, text in mail.bodies or [("empty", "")]:
        notes = notifications_in(text)
        found = [_pick(n, providers) for n in notes]
        if not notes:
            sms = sms_in(mail.subject, text)
            found = [_sms_for(sms, providers)] if sms is not None else []
        contexts = []
        for provider, sms in found:
            if provider is None:
                result.reasons.append(f"SMS sender id {sms.sender!r} ({sms.where}) belongs to no provider")
                continue
            result.reasons.append(f"SMS from sender id {sms.sender!r} ({sms.where}) is "
                                  f"{provider.label}; forwarded, so unverified")
            contexts.append(Context(provider, "sms", "", [("sms", sms.text)], mail.date,
                                    "the forwarder's Date header (forwarding time, may lag)", ""))
        if found:
            return contexts
    return []


def _sms_for(sms, providers: list[Provider]):
    return next((p for p in providers if p.sends_sms_as(sms.sender)), None), sms


def _pick(note, providers: list[Provider]):
    """A notification's provider: its Title (an SMS app shows the sender) or its App name."""
    for sender in note.senders:
        provider, sms = _sms_for(as_sms(note, sender), providers)
        if provider is not None:
            return provider, sms
    return None, as_sms(note, note.senders[0])


# ---------------------------------------------------------------------------
# Rules

def _apply_rules(ctx: Context, result: ParsedMail) -> ParsedMail:
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
                return outcome(rule, groups, ctx, result)
    result.reasons.append(f"no rule of {ctx.provider.label} matched")
    return _generic(ctx, result)


_GENERIC = Rule(name="generic", kind="received", why="read by the fallback reader", subject=(), body=())


def _generic(ctx: Context, result: ParsedMail) -> ParsedMail:
    """The fallback reader (jobs/email_generic.py) on a trusted sender's unread text."""
    text = "\n".join(body for _, body in ctx.bodies)
    reading = email_generic.read(text, ctx.subject)
    result.reasons.extend(reading.why)
    if reading.kind is None:
        result.kind = "unparsed"
        result.reasons.append("kept as evidence, nothing guessed")
        return result
    result.rule, result.generic = "generic", True
    if reading.kind == "not_money":
        result.kind = "not_money"
        result.reasons.append("filed as not money received: nothing is counted")
        return result
    result.verified = False
    done = outcome(_GENERIC, reading.groups, ctx, result)
    if done.kind == "received":
        done.reasons.append("generic reading: unverified, never confirmed automatically; goes to review")
    return done


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
        ("generic", "yes: read by the fallback reader, not a provider rule" if parsed.generic else None),
        ("verified", "yes" if parsed.verified else "no (forwarded or not from a provider)"),
        ("message-id", parsed.message_id), ("source_ref", parsed.source_ref),
    ):
        if value is not None:
            lines.append(f"{label + ':':<12} {value}")
    lines.append("why:")
    lines.extend(f"  - {reason}" for reason in parsed.reasons)
    return "\n".join(lines)

