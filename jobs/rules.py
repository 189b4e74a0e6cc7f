"""The rule builder's work: a provider rule proposed from marked text, previewed, saved, applied.

Staff mark, in a stored message no rule reads (or the fallback reader read), the
text of its amount, payer, transaction id and date (webapp/web/rules_builder.py).
`propose()` turns the marks into one "received" rule: each mark becomes a named
group of its field's shape, the text between marks is kept literally (digits
generalised, at most _LITERAL characters next to each mark, the rest skipped
lazily), so the rule reads other messages of the same layout. `preview()` runs it
over the stored messages of the same provider or sender; `save()` writes it as a
provider file in the instance folder (the format of jobs/providers/*.toml: a file
that `adds_to` a known provider, or a new provider for a new sender) and re-reads the
waiting unreadable or generic payments through ledger.reread_payment.
Called by name through webapp.plumbing.jobqueue.run_inline (webapp never imports jobs).
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from jobs.email_providers import ProviderError, installed_providers, instance_dir, load_providers, sender_matches
from jobs.email_sms import notifications_in
from jobs.email_text import read_mail, sms_in
from jobs.emails import ParsedMail, parse_messages
from webapp.domain import ledger
from webapp.storage.models import Payment, PaymentStatus, Source

MARKS = ("amount", "sender_name", "transaction_id", "date", "sender_phone")
SHAPES = {
    "amount": r"(?P<amount>\d[\d,.' ]*\d|\d)",
    "sender_name": r"(?P<sender_name>[^\n]+?)",
    "transaction_id": r"(?P<transaction_id>[A-Za-z0-9][A-Za-z0-9.\-]{3,40})",
    "date": r"(?P<date>\d[\d/.\-]*[/.\-][\dA-Za-z]+[/.\-]\d+(?:,? (?:at )?\d{1,2}:\d{2}(?::\d{2})?(?: ?[AP]M)?)?)",
    "sender_phone": r"(?P<sender_phone>\+?\d[\d ]{6,14}\d)",
}
_LITERAL = 24  # characters of literal text kept next to each mark
PREVIEW_LIMIT = 50
REREAD_LIMIT = 500
_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


class RuleBuildError(ValueError):
    """A mark or a proposed rule that cannot be used; the message says which and why."""


def message(raw: str) -> dict:
    """The provider message inside a stored mail: provider, sender, subject and the text rules read."""
    data = raw.encode("utf-8", errors="replace")
    mail = read_mail(data)
    parsed = parse_messages(data, providers=installed_providers(), trusted_forwarders=tuple(mail.from_addresses))
    first: ParsedMail = parsed[0]
    sms = None
    for _, body in mail.bodies:
        notes = notifications_in(body)
        sms = sms_in(mail.subject, body) if not notes else None
        if notes:
            return _located(first, sender=notes[0].senders[0], subject="", text=notes[0].text, sms=True)
        if sms is not None:
            return _located(first, sender=sms.sender, subject="", text=sms.text, sms=True)
    text = mail.bodies[0][1] if mail.bodies else ""
    return _located(first, sender=mail.from_address, subject=mail.subject, text=text, sms=False)


def _located(parsed: ParsedMail, *, sender: str, subject: str, text: str, sms: bool) -> dict:
    return {"provider": parsed.provider, "sender": sender, "sms": sms, "subject": subject, "text": text,
            "kind": parsed.kind, "generic": parsed.generic}


def propose(text: str, marks: dict[str, str]) -> str:
    """One body pattern reading `marks` (field → the exact marked text) out of `text`."""
    spans = []
    for name, value in marks.items():
        value = (value or "").strip()
        if not value:
            continue
        if name not in MARKS:
            raise RuleBuildError(f"unknown field {name!r}; mark one of {', '.join(MARKS)}")
        start = text.find(value)
        if start < 0:
            raise RuleBuildError(f"the {name.replace('_', ' ')} {value[:40]!r} is not in the message text")
        spans.append((start, start + len(value), name))
    if "amount" not in {s[2] for s in spans}:
        raise RuleBuildError("mark the amount: a received rule needs one")
    spans.sort()
    for (a_start, a_end, a), (b_start, _, b) in zip(spans, spans[1:]):
        if b_start < a_end:
            raise RuleBuildError(f"the marks for {a} and {b} overlap")
    parts, cursor = [], spans[0][0]
    parts.append(_literal(text[max(0, cursor - _LITERAL):cursor]))
    for index, (start, end, name) in enumerate(spans):
        parts.append(SHAPES[name])
        following = text[end:spans[index + 1][0]] if index + 1 < len(spans) else ""
        if index + 1 < len(spans):
            parts.append(_between(following))
    return "".join(parts)


def _literal(segment: str) -> str:
    """Escaped literal text, digits generalised, whitespace flexible."""
    pieces = re.split(r"(\s+|\d+)", segment)
    out = []
    for piece in pieces:
        if not piece:
            continue
        if piece.isspace():
            out.append(r"\s+")
        elif piece.isdigit():
            out.append(r"\d+")
        else:
            out.append(re.escape(piece))
    return "".join(out)


def _between(segment: str) -> str:
    if len(segment) <= 2 * _LITERAL:
        return _literal(segment)
    return _literal(segment[:_LITERAL]) + r"[\s\S]*?" + _literal(segment[-_LITERAL:])


def provider_data(*, name: str, base: str | None, sender: str, sms: bool, pattern: str,
                  currency: str = "", label: str = "") -> dict:
    """The provider file's content: adds to `base` when known, else a new provider for `sender`."""
    if not _NAME.match(name or ""):
        raise RuleBuildError("the rule file name must be 2–41 lower-case letters, digits, - or _")
    rule = {"name": f"built-{name}", "kind": "received", "body": [pattern]}
    if base:
        data = {"adds_to": base, "rules": [rule]}
        if sender:
            data["sms_senders" if sms else "senders"] = [sender]
        return data
    if not sender:
        raise RuleBuildError("a new provider needs the sender (address or SMS sender id)")
    return {"name": name, "label": label or name, "currency": currency or "",
            "senders": [] if sms else [sender], "sms_senders": [sender] if sms else [], "rules": [rule]}


def to_toml(data: dict) -> str:
    """TOML for the provider-file shape (strings, lists of strings, [[rules]] tables)."""
    head, rules = [], []
    for key, value in data.items():
        if key != "rules":
            head.append(f"{key} = {_toml_value(value)}")
    for rule in data.get("rules", []):
        rules.append("\n[[rules]]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in rule.items()))
    return "# Written by the Paywatch rule builder.\n" + "\n".join(head) + "\n" + "".join(rules) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    if "'" not in text and "\n" not in text and not any(ord(c) < 32 for c in text):
        return f"'{text}'"  # a literal string: regex backslashes stay as written
    return json.dumps(text, ensure_ascii=False)


def _with(data: dict) -> list:
    """The installed providers plus `data`, loaded as its file would be (checked strictly)."""
    here = instance_dir()
    here.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=here.parent, prefix=".rule-") as scratch:
        target = Path(scratch) / "proposed.toml"
        target.write_text(to_toml(data), encoding="utf-8")
        try:
            return load_providers([*([here] if here.is_dir() else []), Path(scratch)])
        except ProviderError as exc:
            raise RuleBuildError(str(exc).replace(str(target), "the proposed rule")) from None


def _stored(provider: str | None, source: str, limit: int):
    query = Payment.select().where(Payment.source == source)
    if provider:
        query = query.where(Payment.provider == provider)
    return query.order_by(Payment.id.desc()).limit(limit)


def preview(data: dict, *, provider: str | None, source: str) -> list[dict]:
    """What the proposed rule reads from the stored messages of the same provider/source."""
    providers = _with(data)
    rows = []
    for payment in _stored(provider, source, PREVIEW_LIMIT):
        parsed = _reparse(payment, providers)
        rows.append({"payment": payment.id, "kind": parsed.kind, "rule": parsed.rule,
                     "amount_minor": parsed.amount_minor, "currency": parsed.currency,
                     "sender_name": parsed.sender_name, "transaction_id": parsed.transaction_id,
                     "received_at": parsed.received_at, "new": parsed.rule == data["rules"][0]["name"]})
    return rows


def _reparse(payment: Payment, providers: list) -> ParsedMail:
    raw = payment.raw.encode("utf-8", errors="replace")
    mail = read_mail(raw)
    found = parse_messages(raw, providers=providers, trusted_forwarders=tuple(mail.from_addresses))
    return next((p for p in found if p.source_ref == payment.source_ref), found[0])


def save(data: dict, *, provider: str | None, source: str, actor: str) -> dict:
    """Write the provider file into the instance folder, then re-read the waiting evidence."""
    name = data.get("name") or f"{data['adds_to']}-{data['rules'][0]['name']}"
    _with(data)
    here = instance_dir()
    here.mkdir(parents=True, exist_ok=True)
    path = here / f"{data['rules'][0]['name']}.toml"
    if path.exists():
        raise RuleBuildError(f"a rule file {path.name} exists already; choose another name")
    path.write_text(to_toml(data), encoding="utf-8")
    return {"path": str(path), "name": name, **reread(provider=provider, source=source, actor=actor)}


def reread(*, provider: str | None, source: str, actor: str) -> dict:
    """Read the waiting unreadable / generic payments of this provider and source again."""
    providers = installed_providers()
    counts = {"reread": 0, "still_unread": 0}
    waiting = (_stored(provider, source, REREAD_LIMIT)
               .where(Payment.status.in_((PaymentStatus.UNMATCHED, PaymentStatus.REVIEW)),
                      (Payment.parsed == False) | (Payment.generic == True)))  # noqa: E712
    for payment in waiting:
        parsed = _reparse(payment, providers)
        if parsed.kind != "received" or parsed.generic:
            counts["still_unread"] += 1
            continue
        obs = ledger.PaymentObservation(
            source=payment.source, source_ref=payment.source_ref, amount_minor=parsed.amount_minor,
            currency=parsed.currency, received_at=parsed.received_at or payment.received_at,
            sender_name=parsed.sender_name or "", sender_phone=parsed.sender_phone, note=parsed.note or "",
            transaction_id=parsed.transaction_id, raw=payment.raw, parsed=True, verified=payment.verified,
            provider=parsed.provider)
        try:
            ledger.reread_payment(payment.id, obs, actor=actor, why=f"rule {parsed.rule!r}")
        except ledger.LedgerError:
            counts["still_unread"] += 1  # decided meanwhile: nothing to do
            continue
        counts["reread"] += 1
    return counts


def sender_known(sender: str, providers: list) -> str | None:
    """The provider that already claims `sender` (address or SMS id), if any."""
    for p in providers:
        if "@" in sender and p.sends_from(sender) or p.sends_sms_as(sender):
            return p.name
    return None


def builder_view(payment_id: int, form: dict) -> dict:
    """Everything the builder page shows for a payment and the marks in `form` (job "rules_build")."""
    payment = Payment.get_or_none(Payment.id == payment_id)
    if payment is None:
        raise RuleBuildError(f"payment {payment_id} does not exist")
    found = message(payment.raw)
    base = payment.provider or found["provider"] or sender_known(found["sender"], installed_providers())
    view = {"payment": payment_id, "source": payment.source, "base": base, **found,
            "marks": {k: form.get(k, "") for k in MARKS}}
    if not found["sms"] and _forwarder(payment.source, found["sender"]):
        view["error"] = (f"{found['sender']} is a forwarder of this source and no SMS sender id was found in the "
                         "message: a rule cannot trust the forwarder's own address")
        return view
    if not any(view["marks"].values()):
        return view
    try:
        view["pattern"] = propose(found["text"], view["marks"])
        data = provider_data(name=form.get("name", ""), base=base, sender=found["sender"], sms=found["sms"],
                             pattern=view["pattern"], currency=form.get("currency", ""), label=form.get("label", ""))
        view["toml"] = to_toml(data)
        view["preview"] = preview(data, provider=base, source=payment.source)
    except RuleBuildError as exc:
        view["error"] = str(exc)
    return view


def _forwarder(source: str, sender: str) -> bool:
    """True when `sender` is one of the source's trusted forwarders (never a provider's address)."""
    row = Source.get_or_none(Source.name == source)
    trusted = (row.config or {}).get("trusted_senders") or [] if row is not None else []
    return any(sender_matches(t, sender) for t in trusted if isinstance(t, str))


def builder_save(payment_id: int, form: dict, actor: str) -> dict:
    """Save the proposed rule and re-read the waiting evidence (job "rules_save")."""
    view = builder_view(payment_id, form)
    if "error" in view or "pattern" not in view:
        raise RuleBuildError(view.get("error") or "mark at least the amount")
    data = provider_data(name=form.get("name", ""), base=view["base"], sender=view["sender"], sms=view["sms"],
                         pattern=view["pattern"], currency=form.get("currency", ""), label=form.get("label", ""))
    return save(data, provider=view["base"], source=view["source"], actor=actor)
