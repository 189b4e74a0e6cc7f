"""Providers as data: loading and checking jobs/providers/*.toml.

A provider file names who may send (e-mail addresses, domains, `*.domain`
wildcards, SMS sender ids), its defaults (currency, phone region, time zone,
date formats) and an ordered list of rules. The first rule whose patterns all
match decides the mail's kind. A file is checked strictly when loaded: a bad
regex, an unknown key or a received rule without an amount fails with the
file's name in the message (ProviderError), never later on a live mailbox.

Rule keys (see jobs/providers/mpesa.toml for a worked example):
  name       short id shown in explanations
  kind       "received" | "reversal" | "not_money"
  why        for not_money: what it is ("outgoing", "payout", "marketing"...)
  subject    regexes that must all match the subject
  body       regexes that must all match the body text
  optional   regexes that may match and then add fields
  unless     regexes (subject or body); the rule does not apply if any matches
  from       sender patterns; the rule applies only to mail from these
  channels   where the rule applies: any of "email", "forward", "sms" (default all)
A file may instead add to a provider loaded before it: `adds_to = "<name>"` plus
`rules` (tried first) and optional extra `senders` / `sms_senders` (see load_providers).
Patterns are case-insensitive and multi-line, and a literal space also matches a
line break (labels wrapped by mail clients: see line_tolerant); named groups give the fields:
amount, currency (a code or symbol), currency_code (an ISO code that wins over
a symbol: "$20.00 CAD"), transaction_id, reversed_transaction_id, sender_name,
sender_phone, note, date (and time, appended to date before reading).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from jobs.email_text import sms_id_key
from jobs.email_values import ValueReadError, zone
from flask import has_app_context

from webapp.config import INSTANCE, settings
from webapp.domain.money import MoneyError, normalize_currency

BUILTIN_DIR = Path(__file__).with_name("providers")
KINDS = ("received", "reversal", "not_money")
CHANNELS = ("email", "forward", "sms")
FIELDS = frozenset({
    "amount", "currency", "currency_code", "transaction_id", "reversed_transaction_id", "sender_name",
    "sender_phone", "note", "date", "time",
})
_PROVIDER_KEYS = frozenset({
    "name", "label", "currency", "region", "timezone", "senders", "sms_senders",
    "date_formats", "currency_aliases", "rules", "evidence", "adds_to",
})
_RULE_KEYS = frozenset({"name", "kind", "why", "subject", "body", "optional", "unless",
                        "from", "channels"})
_FLAGS = re.IGNORECASE | re.MULTILINE


class ProviderError(ValueError):
    """A provider file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Rule:
    """One way a provider's message reads, and what it means."""

    name: str
    kind: str
    why: str
    subject: tuple[re.Pattern, ...]
    body: tuple[re.Pattern, ...]
    optional: tuple[re.Pattern, ...] = ()
    unless: tuple[re.Pattern, ...] = ()
    senders: tuple[str, ...] = ()
    channels: tuple[str, ...] = CHANNELS


@dataclass(frozen=True)
class Provider:
    """A payment provider as data (see the module docstring for the file format)."""

    name: str
    label: str
    currency: str
    region: str | None
    timezone: str
    senders: tuple[str, ...]
    sms_senders: tuple[str, ...]
    rules: tuple[Rule, ...]
    date_formats: tuple[str, ...] = ()
    currency_aliases: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def sends_from(self, address: str) -> bool:
        """True when the e-mail `address` is one of this provider's senders."""
        return any(sender_matches(p, address) for p in self.senders)

    def sends_sms_as(self, sender_id: str) -> bool:
        """True when an SMS sender id (e.g. "M-PESA") belongs to this provider."""
        key = sms_id_key(sender_id)
        return bool(key) and any(sms_id_key(s) == key for s in self.sms_senders)


def sender_matches(pattern: str, address: str) -> bool:
    """Match an address against "a@b.com", "b.com" / "@b.com" or "*.b.com".

    A domain matches exactly; "*.b.com" matches any subdomain of b.com but not
    b.com itself nor look-alikes such as "evilb.com" or "b.com.evil.io".
    """
    pattern, address = pattern.strip().lower(), address.strip().lower()
    if not address or "@" not in address or not pattern:
        return False
    domain = address.rsplit("@", 1)[1]
    if pattern.startswith("*."):
        return domain.endswith(pattern[1:])
    if "@" in pattern.lstrip("@"):
        return address == pattern
    return domain == pattern.lstrip("@")


def load_providers(extra_dirs: Iterable[str | Path] = ()) -> list[Provider]:
    """The built-in providers followed by every *.toml in `extra_dirs`.

    A user file with the same `name` as an earlier provider replaces it, so a
    business can correct a built-in parser without editing the code; a file with
    `adds_to = "<name>"` instead puts its rules before that provider's and adds its
    senders (what the rule builder saves). Raises
    ProviderError for an unreadable file or a missing directory.
    """
    directories = (BUILTIN_DIR, *map(Path, extra_dirs))
    for directory in directories:
        if not directory.is_dir():
            raise ProviderError(f"provider directory {directory} does not exist")
    listing = tuple((directory, tuple(sorted(directory.glob("*.toml")))) for directory in directories)
    # Kept per process while the files are unchanged: reading them costs 20–170 ms, which a
    # mailbox pass (the path of every payment mail) should not pay each time.
    key = tuple((str(path), *_stamp(path)) for _, paths in listing for path in paths)
    if key not in _loaded:
        if len(_loaded) >= 16:
            _loaded.clear()  # stale entries (files changed) go
        _loaded[key] = _load(listing)
    return list(_loaded[key])


_loaded: dict[tuple, list[Provider]] = {}


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, -1)  # gone meanwhile: reading it reports the error
    return (info.st_mtime_ns, info.st_size)


def _load(listing: tuple) -> list[Provider]:
    by_name: dict[str, Provider] = {}
    for _, paths in listing:
        for path in paths:
            data = _read_toml(path)
            base = data.get("adds_to")
            if base is not None:
                if base not in by_name:
                    raise ProviderError(f"{path}: adds_to names {base!r}, which is not loaded before it")
                by_name[base] = _added(by_name[base], data, path)
                continue
            provider = load_provider_file(path)
            by_name.pop(provider.name, None)
            by_name[provider.name] = provider
    return list(by_name.values())


def instance_dir() -> Path:
    """Where the rule builder saves provider files: <instance>/providers (the configured
    instance folder inside an app context, as in web requests and jobs; else the default)."""
    return (settings().instance_path if has_app_context() else INSTANCE) / "providers"


def installed_providers(extra_dirs: Iterable[str | Path] = ()) -> list[Provider]:
    """Built-in providers, then the instance folder's (rule builder), then `extra_dirs`."""
    here = instance_dir()
    return load_providers([*([here] if here.is_dir() else []), *extra_dirs])


def _added(base: Provider, data: dict, path: Path) -> Provider:
    """`base` with a file's rules tried first and its senders added (key `adds_to`)."""
    try:
        _no_unknown(data, _PROVIDER_KEYS, "provider")
        rules = tuple(_rule(r, i) for i, r in enumerate(data.get("rules") or []))
        senders, sms = _texts(data, "senders"), _texts(data, "sms_senders")
    except ProviderError as exc:
        raise ProviderError(f"{path}: {exc}") from None
    if not rules:
        raise ProviderError(f"{path}: a file that adds to {base.name!r} needs rules")
    return replace(base, rules=rules + base.rules, senders=tuple(dict.fromkeys(base.senders + senders)),
                   sms_senders=tuple(dict.fromkeys(base.sms_senders + sms)))


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, tomllib.TOMLDecodeError) as exc:
        raise ProviderError(f"{path}: cannot read: {exc}") from None


def load_provider_file(path: Path) -> Provider:
    """Read and check one provider file."""
    data = _read_toml(path)
    try:
        return provider_from_dict(data, str(path))
    except ProviderError as exc:
        raise ProviderError(f"{path}: {exc}") from None


def provider_from_dict(data: dict, path: str = "") -> Provider:
    """Build a Provider from parsed TOML, checking every key."""
    _no_unknown(data, _PROVIDER_KEYS, "provider")
    name = _text(data, "name", required=True)
    currency = _currency(_text(data, "currency", required=True))
    tz_name = _text(data, "timezone") or "UTC"
    try:
        zone(tz_name)
    except ValueReadError as exc:
        raise ProviderError(str(exc)) from None
    senders, sms = _texts(data, "senders"), _texts(data, "sms_senders")
    if not senders and not sms:
        raise ProviderError(f"provider {name!r} lists neither senders nor sms_senders")
    rules = tuple(_rule(r, i) for i, r in enumerate(data.get("rules") or []))
    if not rules:
        raise ProviderError(f"provider {name!r} has no rules")
    aliases = {str(k).upper(): _currency(str(v)) for k, v in
               (data.get("currency_aliases") or {}).items()}
    return Provider(
        name=name, label=_text(data, "label") or name, currency=currency,
        region=_text(data, "region") or None, timezone=tz_name, senders=senders,
        sms_senders=sms, rules=rules, date_formats=_texts(data, "date_formats"),
        currency_aliases=aliases, path=path,
    )


def _rule(data: object, index: int) -> Rule:
    if not isinstance(data, dict):
        raise ProviderError(f"rules[{index}] must be a table")
    _no_unknown(data, _RULE_KEYS, f"rules[{index}]")
    where = f"rules[{index}] ({data.get('name', '?')})"
    kind = _text(data, "kind", required=True)
    if kind not in KINDS:
        raise ProviderError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    channels = _texts(data, "channels") or CHANNELS
    if set(channels) - set(CHANNELS):
        raise ProviderError(f"{where}: channels must be among {CHANNELS}")
    rule = Rule(
        name=_text(data, "name") or f"rule{index}", kind=kind, why=_text(data, "why"),
        subject=_patterns(data, "subject", where), body=_patterns(data, "body", where),
        optional=_patterns(data, "optional", where), unless=_patterns(data, "unless", where),
        senders=_texts(data, "from"), channels=channels,
    )
    if not rule.subject and not rule.body:
        raise ProviderError(f"{where}: needs at least one subject or body pattern")
    required_groups = {g for p in rule.subject + rule.body for g in p.groupindex}
    if kind == "received" and "amount" not in required_groups:
        raise ProviderError(f"{where}: a received rule needs an (?P<amount>…) group "
                            "in a subject or body pattern")
    if kind == "reversal" and "reversed_transaction_id" not in required_groups:
        raise ProviderError(f"{where}: a reversal rule needs (?P<reversed_transaction_id>…)")
    return rule


def _patterns(data: dict, key: str, where: str) -> tuple[re.Pattern, ...]:
    compiled = []
    for text in _texts(data, key):
        try:
            pattern = re.compile(line_tolerant(text), _FLAGS)
        except re.error as exc:
            raise ProviderError(f"{where}: {key} pattern {text!r}: {exc}") from None
        unknown = set(pattern.groupindex) - FIELDS
        if unknown:
            raise ProviderError(f"{where}: unknown group(s) {sorted(unknown)}; "
                                f"use {sorted(FIELDS)}")
        compiled.append(pattern)
    return tuple(compiled)


def line_tolerant(pattern: str) -> str:
    """`pattern` with each literal space (outside a [class], not escaped, not quantified)
    also matching a line break: mail clients wrap labels ("Transaction\\nID").

    Texts reach the rules normalised (single spaces, lines stripped), so "[ \\n]" is
    enough and adds no backtracking.
    """
    out, in_class, escaped = [], False, False
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class and pattern[index - 1] != "[":
            in_class = False
        elif char == " " and not in_class and pattern[index + 1:index + 2] not in ("?", "*", "+", "{"):
            out.append("[ \\n]")
            continue
        out.append(char)
    return "".join(out)


def _no_unknown(data: dict, allowed: frozenset, where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ProviderError(f"{where}: unknown key(s) {sorted(unknown)}")


def _text(data: dict, key: str, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ProviderError(f"{key!r} must be a {'non-empty ' if required else ''}string")
    return value.strip()


def _texts(data: dict, key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProviderError(f"{key!r} must be a string or a list of strings")
    return tuple(value)


def _currency(code: str) -> str:
    try:
        return normalize_currency(code)
    except MoneyError as exc:
        raise ProviderError(str(exc)) from None
