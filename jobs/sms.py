"""SMS sources: read each SMS a phone posted (webapp/domain/inbound_sms.py stored it) with the
provider rules, and hand the money to the ledger.

`ingest(row_id)` (job "sms_ingest") reads one stored SMS exactly as an SMS forwarded by mail
is read: the same parser (jobs/emails.parse_message), handed the SMS as a forwarder's mail
with the JSON body `{"sender": …, "message": …}` (the convention in jobs/emails.py), so the
sender id must be one of a provider's `sms_senders` (or the source's `sender_ids`, below)
and the provider's rules for the "sms" channel decide. The received time is the one in the
SMS text when it has one, else the phone's (the forwarder's `receivedAt`), else when the
post arrived.

One SMS is one payment whichever way it comes: its source_ref is the forwarder's message
id; one with a transaction id meets its mail copy through the ledger's transaction key, and
one without (a bank SMS) through ledger.text_key(sender id, text), which the mailbox job
computes for forwarded SMS too (jobs/mailbox.py).

Source config (DESIGN.md): `format`, `secret_env`, `providers` (names; all when left out),
`providers_dir`, `sender_ids`: a list of extra trusted sender ids (their SMS is kept for
review when no rule reads it, never dropped), or {sender id: provider name} (that provider's
rules read them). SMS from anyone else (a person texting the phone) is dropped: status
"ignored", its text not kept.

`sweep()` (recurring) enqueues again every stored SMS still unread after 10 s (Redis lost
the job, or no worker ran it).
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from peewee import fn

from jobs import job
from jobs.email_providers import BUILTIN_DIR, Provider
from jobs.email_text import sms_id_key
from jobs.emails import ParsedMail, parse_message
from jobs.imap_account import MailboxConfig, MailboxError, parsers_for
from webapp.domain import inbound_sms, ledger, sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import InboundSms, InboundSmsStatus, Source, SourceKind, utcnow

log = logging.getLogger("jobs.sms")

HOOK_ADDRESS = "sms-hook@paywatch.invalid"  # the stand-in forwarder the hook's SMS come "from"


def providers_for(config: dict[str, Any]) -> list[Provider]:
    """The source's providers, with its `sender_ids` {id: provider} added to their SMS senders.

    Kept per process while the provider files are unchanged (a file saved at run time, e.g. a
    new rule, is picked up by the next SMS): reading them costs 20–80 ms, an SMS should not."""
    dirs = [BUILTIN_DIR, *([Path(config["providers_dir"])] if config.get("providers_dir") else [])]
    files = tuple((str(p), p.stat().st_mtime_ns) for d in dirs if d.is_dir() for p in sorted(d.glob("*.toml")))
    key = json.dumps([config.get("providers"), config.get("providers_dir"), config.get("sender_ids"), files],
                     sort_keys=True, default=str)
    if key not in _loaded:
        if len(_loaded) >= 16:
            _loaded.clear()  # stale entries (files changed, sources changed) go
        _loaded[key] = _providers(config)
    return list(_loaded[key])


_loaded: dict[str, list[Provider]] = {}


def _providers(config: dict[str, Any]) -> list[Provider]:
    cfg = MailboxConfig(host="-", port=993, ssl=True, username="", password="",
                        providers=tuple(config["providers"]) if config.get("providers") else None,
                        providers_dir=config.get("providers_dir"))
    loaded = parsers_for(cfg)
    extra = config.get("sender_ids") or {}
    if not isinstance(extra, dict):
        return loaded
    by_name = {p.name: p for p in loaded}
    unknown = sorted({name for name in extra.values() if name not in by_name})
    if unknown:
        raise MailboxError(f"sms config: sender_ids name unknown provider(s) {', '.join(unknown)}",
                           permanent=True)
    return [replace(p, sms_senders=(*p.sms_senders, *(i for i, n in extra.items() if n == p.name)))
            for p in loaded]


def as_mail(row: InboundSms) -> bytes:
    """The stored SMS as the mail an SMS forwarder would send (JSON body convention)."""
    mail = EmailMessage()
    mail["From"] = f"Paywatch SMS hook <{HOOK_ADDRESS}>"
    mail["To"] = "paywatch@paywatch.invalid"
    mail["Subject"] = "SMS"
    mail["Date"] = format_datetime(row.received_at or row.created_at)
    mail["Message-ID"] = make_msgid(domain="sms.paywatch.invalid")
    mail.set_content(json.dumps({"sender": row.sender, "message": row.text}, ensure_ascii=False))
    return bytes(mail)


def read(row: InboundSms, providers: list[Provider], trusted_ids: tuple[str, ...] = ()) -> ParsedMail:
    """What the provider rules make of one stored SMS; kind "unparsed" for a trusted sender id
    that no provider claims (kept for review), "ignored" for anyone else."""
    parsed = parse_message(as_mail(row), providers=providers, trusted_forwarders=(HOOK_ADDRESS,))
    if parsed.kind == "ignored" and sms_id_key(row.sender) in {sms_id_key(t) for t in trusted_ids}:
        parsed.kind = "unparsed"
        parsed.reasons.append(f"sender id {row.sender!r} is one of the source's sender_ids: "
                              "kept for review, nothing read")
    return parsed


@job
def ingest(row_id: int) -> dict[str, Any]:
    """Read one stored SMS and record what it means (see the module docstring). Safe to run twice."""
    row = InboundSms.get_or_none(InboundSms.id == row_id)
    if row is None or row.status != InboundSmsStatus.NEW:
        return {"skipped": "no such unread SMS", "id": row_id}
    source = Source.get_or_none(Source.name == row.source, Source.kind == SourceKind.SMS)
    if source is None:
        _finish(row, InboundSmsStatus.IGNORED, "no_source")
        return {"id": row_id, "outcome": "no_source"}
    config = source.config or {}
    try:
        providers = providers_for(config)
    except MailboxError as exc:
        sources.raise_alarm(source.id, "config", str(exc))
        return {"id": row_id, "error": str(exc)}  # kept unread: read once the config is fixed
    sources.clear_alarm(source.id, "config")
    ids = config.get("sender_ids") or []
    parsed = read(row, providers, tuple(ids) if isinstance(ids, list) else ())
    actor = f"source:{source.name}"
    outcome, payment_id = parsed.kind, None
    with db.transaction():
        if parsed.kind in ("received", "unparsed"):
            result = ledger.ingest_payment(_observation(source, row, parsed), actor=actor)
            payment_id = result.payment.id
            outcome = parsed.kind if result.created else "duplicate"
        elif parsed.kind == "reversal" and parsed.reversed_transaction_id:
            flagged = ledger.flag_reversal(source.name, parsed.reversed_transaction_id, actor=actor,
                                           reason=f"reversed at the provider ({parsed.transaction_id or 'no id'})",
                                           currency=parsed.currency, raw=row.text)
            payment_id = flagged.id if flagged else None
        status = InboundSmsStatus.IGNORED if parsed.kind == "ignored" else InboundSmsStatus.DONE
        _finish(row, status, outcome, payment_id)
    _record(source)
    log.info("sms %s #%s from %s: %s", source.name, row.id, row.sender, outcome)
    return {"id": row_id, "source": source.name, "outcome": outcome, "payment": payment_id,
            "reasons": parsed.reasons}


def _observation(source: Source, row: InboundSms, parsed: ParsedMail) -> ledger.PaymentObservation:
    received = parsed.received_at or row.received_at or row.created_at
    common = dict(source=source.name, source_ref=row.ref, received_at=received, raw=row.raw, verified=False)
    if parsed.kind != "received":
        return ledger.PaymentObservation(amount_minor=None, currency=None, parsed=False, **common)
    return ledger.PaymentObservation(
        amount_minor=parsed.amount_minor, currency=parsed.currency, sender_name=parsed.sender_name or "",
        sender_phone=parsed.sender_phone, note=parsed.note or "", transaction_id=parsed.transaction_id,
        provider=parsed.provider, parsed=True,
        content_key=None if parsed.transaction_id else ledger.text_key(row.sender, row.text), **common)


def _finish(row: InboundSms, status: str, outcome: str, payment_id: int | None = None) -> None:
    changes: dict[str, Any] = {"status": status, "outcome": outcome, "payment_id": payment_id,
                               "processed_at": utcnow()}
    if status == InboundSmsStatus.IGNORED:
        changes.update(text="", raw="")  # a person's SMS: not ours to keep
    InboundSms.update(**changes).where(InboundSms.id == row.id, InboundSms.status == InboundSmsStatus.NEW).execute()


def _record(source: Source) -> None:
    counts = dict(InboundSms.select(InboundSms.outcome, fn.COUNT(InboundSms.id))
                  .where(InboundSms.source == source.name, InboundSms.outcome.is_null(False))
                  .group_by(InboundSms.outcome).tuples())
    sources.record_pass(source.id, ok=True, counts=counts, last_sms_at=utcnow())


@job
def sweep() -> dict[str, int]:
    """Enqueue again every stored SMS still unread after 10 s whose job is not live."""
    conn = jobqueue.redis_connection()
    queued = 0
    for row_id in inbound_sms.waiting():
        job_id = inbound_sms.ingest_job_id(row_id)
        if not (jobqueue.is_live(job_id, conn) or jobqueue.is_live(f"{job_id}-sweep", conn)):
            jobqueue.enqueue("sms_ingest", row_id, job_id=f"{job_id}-sweep")
            queued += 1
    return {"requeued": queued}
