"""Mailbox sources: read provider mail over IMAP and hand the money to the ledger.

`fetch(source_id)` (job "mailbox_fetch") is one pass over one source's folder:
take every message whose UID is above the source's cursor (the whole folder
again when UIDVALIDITY changed), parse it (jobs/emails.py), ingest the money in
batches of `batch_size` (ledger.ingest_payments: one commit per batch), and
only after that commit mark our messages \\Seen (or move them to
`processed_folder`) and advance the cursor. A crash anywhere in between re-reads
the batch on the next pass; ingest is idempotent on the Message-ID, so nothing
is doubled. Mail from unknown senders is counted and left untouched (it may be
a person's mail); mail from a provider or a trusted forwarder that no rule
reads is kept as unreadable evidence. The watcher (jobs/mailbox_watch.py) and
rq-scheduler (`"idle": false`) only ever ask for passes through
`request_fetch()`, which keeps at most one waiting pass per source.

One pass per mailbox at a time: a pass holds the source's Redis lock. A pass asked
for while another runs does not wait for the lock (a worker blocked on it is a worker
that cannot send the confirmation of the mail just read); it leaves a follow-up mark
and returns at once, and the running pass, once done, makes one more pass if the mark
is there. The mark is set before the lock is tried and the holder looks for it after
releasing the lock, so one of the two always makes the pass: no request is lost.

Source state written here (Source.state, shown on the source's page and in
/api/v1/health): `progress` {done, total, running, started_at, finished_at},
`counts` {received, reversal, reversal_pending (kept until its payment arrives),
reversal_unknown (no transaction id), not_money, unparsed, ignored, duplicate} since the source was added, `last_contact_at`, `last_mail_at`,
`last_fetch` (the summary below); the watcher adds `watch`.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any, Iterator

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from jobs import job
from jobs.email_providers import Provider, sender_matches
from jobs.email_text import read_mail, sms_in
from jobs.emails import ParsedMail, explain, parse_messages
from jobs.imap_account import MailboxConfig, MailboxError, close, connect, mailbox_config, parsers_for
from webapp.domain import ledger, sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Source, SourceKind, utcnow

log = logging.getLogger("jobs.mailbox")

FETCH_TIMEOUT_S = 300  # keep equal to JOBS["mailbox_fetch"].timeout
_MAX_RAW = 256 * 1024  # evidence kept per mail; provider notifications are far smaller
_WAKE_TTL_S = 600


# ---------------------------------------------------------------- waking a pass


def _wake_key(source_id: int) -> str:
    return f"paywatch:mailbox:{source_id}:wake"


def request_fetch(source_id: int) -> str | None:
    """Enqueue a fetch of `source_id` unless one is already waiting; returns the new job's id.

    A burst of IDLE notifications becomes one job: the marker set here is cleared by
    the job when it starts, before it searches, so mail arriving after that point
    enqueues the next pass and none is lost. A marker whose job Redis lost is replaced.
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    redis = jobqueue.redis_connection()
    job_id = f"mailbox-fetch-{source_id}-{time.time_ns()}"
    if not redis.set(_wake_key(source_id), job_id, nx=True, ex=_WAKE_TTL_S):
        waiting = redis.get(_wake_key(source_id))
        try:
            if waiting and Job.fetch(waiting.decode(), connection=redis).get_status() in (
                    "queued", "deferred", "scheduled"):
                return None
        except NoSuchJobError:
            pass
        redis.set(_wake_key(source_id), job_id, ex=_WAKE_TTL_S)
    jobqueue.enqueue("mailbox_fetch", source_id, job_id=job_id)
    return job_id


def _again_key(source_id: int) -> str:
    return f"paywatch:mailbox:{source_id}:again"


def _woken(source_id: int) -> None:
    from rq import get_current_job

    current = get_current_job()
    redis = jobqueue.redis_connection()
    if current is None or (redis.get(_wake_key(source_id)) or b"").decode() == current.id:
        redis.delete(_wake_key(source_id))


# ---------------------------------------------------------------- the pass


@job
def fetch(source_id: int) -> dict[str, Any]:
    """One pass over a mailbox source (see the module docstring); returns a summary.

    Config and login problems are recorded on the source (and raise an alarm) and
    returned; connection problems are recorded and raised, so RQ shows the failure.
    """
    source = Source.get_or_none(Source.id == source_id)
    if source is None or source.kind != SourceKind.MAILBOX or not source.enabled:
        return {"skipped": "no such enabled mailbox source", "source_id": source_id}
    _woken(source_id)
    redis = jobqueue.redis_connection()
    again = _again_key(source_id)
    redis.set(again, "1", ex=FETCH_TIMEOUT_S)  # this request, whichever pass serves it
    lock = redis.lock(f"paywatch:mailbox:{source_id}:lock", timeout=FETCH_TIMEOUT_S)
    summary: dict[str, Any] = {"source": source.name, "ok": True,
                               "coalesced": "another pass was running: it makes one more pass after its own"}
    passes = 0
    while redis.get(again) and lock.acquire(blocking=False):
        try:
            redis.delete(again)  # mail that arrives from here on marks it again
            summary = _guarded_pass(Source.get_by_id(source_id))
            passes += 1
        except BaseException:
            if redis.get(again):  # a follow-up was asked for meanwhile: keep it queued
                _release(lock)
                request_fetch(source_id)
            raise
        finally:
            _release(lock)
    if passes > 1:
        summary = {**summary, "passes": passes}
    return summary


def _release(lock) -> None:
    try:
        lock.release()
    except Exception:  # released already, or expired after a very long pass: nothing to release
        pass


def _guarded_pass(source: Source) -> dict[str, Any]:
    try:
        cfg = mailbox_config(source.config or {})
        providers = parsers_for(cfg)
    except MailboxError as exc:
        return _failed(source, exc)
    client = _kept_client(source.id, cfg)
    if client is not None:
        try:
            return _keep(source.id, cfg, client, _pass(source, cfg, providers, client))
        except (OSError, IMAPClientError) as exc:  # dropped by the server meanwhile: the pass again, logged in anew
            log.info("mailbox %s: kept connection failed (%s: %s); logging in again", source.name,
                     type(exc).__name__, exc)
            close(client)
        except BaseException:
            close(client)
            raise
    try:
        client = connect(cfg)
    except MailboxError as exc:
        return _failed(source, exc)
    sources.clear_alarm(source.id, "login")
    try:
        return _keep(source.id, cfg, client, _pass(source, cfg, providers, client))
    except BaseException as exc:
        close(client)
        if isinstance(exc, (OSError, IMAPClientError)):
            _failed(source, MailboxError(f"{type(exc).__name__}: {exc}"))
        raise


# A worker keeps each source's logged-in connection between passes: connecting, TLS and
# LOGIN are most of a pass's time (0.1–0.6 s), and new mail should not wait for them. The
# source's lock makes one pass use it at a time; one idle longer than KEEP_S is logged out.
KEEP_S = 240.0
_kept: dict[int, tuple[MailboxConfig, IMAPClient, float]] = {}


def _kept_client(source_id: int, cfg: MailboxConfig) -> IMAPClient | None:
    kept = _kept.pop(source_id, None)
    if kept is None:
        return None
    kept_cfg, client, at = kept
    if kept_cfg == cfg and time.monotonic() - at < KEEP_S:
        return client
    close(client)  # config changed, or idle too long
    return None


def _keep(source_id: int, cfg: MailboxConfig, client: IMAPClient, summary: dict[str, Any]) -> dict[str, Any]:
    stale = _kept.pop(source_id, None)
    if stale is not None and stale[1] is not client:
        close(stale[1])
    _kept[source_id] = (cfg, client, time.monotonic())
    return summary


def _failed(source: Source, exc: MailboxError) -> dict[str, Any]:
    log.warning("mailbox %s: %s", source.name, exc)
    sources.record_pass(source.id, ok=False, error=str(exc), progress={"running": False})
    if exc.permanent:
        sources.raise_alarm(source.id, "login" if "login" in str(exc) else "config", str(exc))
        return {"source": source.name, "ok": False, "error": str(exc)}
    raise exc


def _pass(source: Source, cfg: MailboxConfig, providers: list[Provider], client: IMAPClient) -> dict[str, Any]:
    info = client.select_folder(cfg.folder)
    validity = int(info[b"UIDVALIDITY"])
    cursor = dict(source.cursor or {})
    reset = cursor.get("uidvalidity") not in (None, validity)
    last_uid = 0 if reset else int(cursor.get("last_uid", 0))
    # "n:*" always includes the highest UID, even below n: filter again.
    uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
    if reset:
        log.warning("mailbox %s: UIDVALIDITY changed (%s → %s): re-reading %s message(s)",
                    source.name, cursor.get("uidvalidity"), validity, len(uids))
    if cfg.processed_folder and uids and not client.folder_exists(cfg.processed_folder):
        client.create_folder(cfg.processed_folder)
    base, this_pass = Counter(cursor.get("counts", {})), Counter()
    started, last_mail = utcnow(), (source.state or {}).get("last_mail_at")
    progress = {"running": True, "done": 0, "total": len(uids), "started_at": started.isoformat(),
                "finished_at": None}
    if len(uids) > cfg.batch_size:  # a backlog shows its progress; one batch is over in a moment
        sources.record_pass(source.id, ok=True, progress=progress, last_contact_at=started)
    # Every write below is one transaction (cursor and state together): on SQLite each is a
    # turn at the one write lock, and the IDLE path's pass should not queue for five of them.
    batches, new_cursor = 0, None
    for chunk in _chunks(uids, cfg.batch_size):
        if new_cursor is not None:  # the previous batch's bookmark, now that another follows
            with db.transaction():
                _save_cursor(source.id, new_cursor)
                sources.record_pass(source.id, ok=True, progress=progress, counts=new_cursor["counts"],
                                     last_contact_at=utcnow(), last_mail_at=last_mail)
        newest = _batch(source, cfg, providers, client, chunk, this_pass)
        batches += 1
        if newest:
            last_mail = max(filter(None, (last_mail, newest.isoformat())))
        new_cursor = {"uidvalidity": validity, "last_uid": chunk[-1], "counts": dict(base + this_pass)}
        progress = {**progress, "done": progress["done"] + len(chunk)}
    if not uids and cursor.get("uidvalidity") != validity:  # first pass, or a reset, on an empty folder
        new_cursor = {"uidvalidity": validity, "last_uid": 0, "counts": dict(base)}
    summary = {"source": source.name, "ok": True, "folder": cfg.folder, "uidvalidity": validity,
               "uidvalidity_changed": reset, "messages": len(uids), "batches": batches,
               "kinds": dict(+this_pass)}
    done = {**progress, "running": False, "finished_at": utcnow().isoformat()}
    with db.transaction():
        if new_cursor is not None:
            _save_cursor(source.id, new_cursor)
        sources.record_pass(source.id, ok=True, progress=done, last_fetch=summary, last_contact_at=utcnow(),
                             counts=dict(base + this_pass), **({"last_mail_at": last_mail} if last_mail else {}))
    return summary


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _batch(source: Source, cfg: MailboxConfig, providers: list[Provider], client: IMAPClient,
           uids: list[int], counts: Counter) -> datetime | None:
    """Read, ingest (one commit), then mark: the order that makes a crash harmless."""
    data = client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
    observations, reversals, ours, newest = [], [], [], None
    actor = f"source:{source.name}"
    for uid in uids:
        item = data.get(uid)
        if item is None:  # expunged between SEARCH and FETCH
            continue
        raw = bytes(item[b"BODY[]"])
        arrived = item.get(b"INTERNALDATE")
        arrived = arrived if isinstance(arrived, datetime) and arrived.tzinfo else None
        kinds = []  # one per SMS when a forwarder joined several in this mail
        for parsed in parse_messages(raw, providers=providers, trusted_forwarders=cfg.trusted_senders):
            kinds.append(kind := _kind(parsed, raw, cfg))
            if kind in ("received", "unparsed"):
                observations.append(_observation(source.name, parsed, raw, arrived, readable=kind == "received"))
            elif kind == "reversal":
                reversals.append(parsed)
        counts.update(kinds)
        if set(kinds) != {"ignored"}:  # not ours: left unseen, where it is
            ours.append(uid)
            newest = max(filter(None, (newest, arrived))) if arrived else newest
    results = ledger.ingest_payments(observations, actor=actor) if observations else []
    counts["duplicate"] += sum(1 for r in results if not r.created)
    for parsed in reversals:
        if not parsed.reversed_transaction_id:
            counts["reversal_unknown"] += 1  # no id to find its payment by: kept in the mailbox, counted
            continue
        flagged = ledger.flag_reversal(source.name, parsed.reversed_transaction_id,
                                       reason=f"reversed at the provider ({parsed.transaction_id or 'no id'})",
                                       actor=actor, currency=parsed.currency)
        if flagged is None:
            counts["reversal_pending"] += 1  # kept; applied when its payment arrives
    _mark(client, cfg, ours)
    return newest


def _kind(parsed: ParsedMail, raw: bytes, cfg: MailboxConfig) -> str:
    """ParsedMail.kind, except that a trusted forwarder's unreadable mail is evidence, not noise."""
    if parsed.kind != "ignored" or not cfg.trusted_senders:
        return parsed.kind
    senders = read_mail(raw).from_addresses
    if len(senders) == 1 and any(sender_matches(t, senders[0]) for t in cfg.trusted_senders):
        return "unparsed"
    return "ignored"


def _observation(source: str, parsed: ParsedMail, raw: bytes, arrived: datetime | None, *,
                 readable: bool) -> ledger.PaymentObservation:
    text = raw[:_MAX_RAW].decode("utf-8", errors="replace").replace("\x00", "")
    received = parsed.received_at or arrived or utcnow()
    if not readable:
        return ledger.PaymentObservation(
            source=source, source_ref=parsed.source_ref, amount_minor=None, currency=None,
            received_at=received, raw=text, parsed=False, verified=parsed.verified, provider=parsed.provider)
    return ledger.PaymentObservation(
        source=source, source_ref=parsed.source_ref, amount_minor=parsed.amount_minor,
        currency=parsed.currency, received_at=received, sender_name=parsed.sender_name or "",
        sender_phone=parsed.sender_phone, note=parsed.note or "", transaction_id=parsed.transaction_id,
        raw=text, parsed=True, verified=parsed.verified, provider=parsed.provider, generic=parsed.generic,
        reading="\n".join(parsed.reasons) if parsed.generic else "",
        # One SMS per mail only: a mail joining several gives each its own source_ref "#n", and
        # the key of the first would make the others look like the same money.
        content_key=None if parsed.transaction_id or parsed.channel != "sms" or "#" in parsed.source_ref
        else _sms_key(raw))


def _sms_key(raw: bytes) -> str | None:
    """ledger.text_key of the forwarded SMS: the SMS hook's key for it (one payment both ways)."""
    mail = read_mail(raw)
    found = next(filter(None, (sms_in(mail.subject, body) for _label, body in mail.bodies)), None)
    return ledger.text_key(found.sender, found.text) if found else None


def _mark(client: IMAPClient, cfg: MailboxConfig, uids: list[int]) -> None:
    if not uids:
        return
    client.add_flags(uids, [b"\\Seen"], silent=True)
    if not cfg.processed_folder:
        return
    if client.has_capability("MOVE"):
        client.move(uids, cfg.processed_folder)
    else:
        client.copy(uids, cfg.processed_folder)
        client.delete_messages(uids, silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()


def _save_cursor(source_id: int, cursor: dict[str, Any]) -> None:
    # The cursor is this job's own bookmark (not a status): written under the source's lock.
    Source.update(cursor=cursor).where(Source.id == source_id).execute()


# ---------------------------------------------------------------- `flask parsers test`


def explain_file(raw: bytes, *, config: dict[str, Any] | None = None, trusted: tuple[str, ...] = (),
                 providers_dir: str | None = None) -> str:
    """What the parsers make of one mail, with a source's providers and trusted senders."""
    config = dict(config or {})
    if providers_dir:
        config["providers_dir"] = providers_dir
    config.setdefault("host", "-")
    cfg = mailbox_config(config, with_secrets=False)
    providers = parsers_for(cfg)
    trusted_all = (*cfg.trusted_senders, *trusted)
    texts = []
    for parsed in parse_messages(raw, providers=providers, trusted_forwarders=trusted_all):
        text = explain(parsed)
        if _kind(parsed, raw, replace(cfg, trusted_senders=trusted_all)) != parsed.kind:
            text += "\nmailbox: from a trusted sender but unreadable: kept as evidence (unreadable payment)"
        texts.append(text)
    return "\n\n".join(texts)
