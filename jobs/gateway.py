"""Gateway sources: polling ioTec collections until they end, starting collections, callbacks.

Jobs (names in webapp.plumbing.jobqueue.JOBS):
- `gateway_poll(source_id)`: the source's recurring pass, every `interval_s`. It reads the
  source's requests still open (and expired ones within the grace period, `match_grace_minutes`)
  and polls those due. Schedule by age of the request: every `interval_s` for its first
  2 minutes, then every 2×, 4×, 8× … `interval_s`, capped at 60 s (or `interval_s` when larger).
  A request is never dropped while it is open; past its expiry it is polled until the grace
  period ends, and an ioTec `Success` then still pays it (a late payment).
- `gateway_collect(request_id)`: start the collection of a request created with
  `"collect": true`. Its own unique externalId is stored (on the request) before the call;
  a lost answer is recovered by the external-id lookup, here or on a later poll, and a
  collection ioTec never received is started again (at most 3 tries).
- `gateway_reread(source_id, transaction_id, external_id)`: after a callback, read the
  status from the API (the callback body is never trusted).

Mapping (key on `status`): Success → paid; Failed, Rejected, RolledBack → failed; Cancelled →
cancelled; SentToVendor, Pending and the rest → still pending. A Success pays only for the
exact amount asked and money that moved (ioTec's processedAt) before the request expired;
an inexact, missing or different amount, or late money, goes to review with the reason
(ledger.observe_request). A poll and a callback for one transaction at once leave one
payment. A RolledBack after Success flags the request `gateway_rolled_back` and alerts the admins.
Per-request bookkeeping lives in PaymentRequest.meta["paywatch_gateway"].
"""
from __future__ import annotations

import json
import logging
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from jobs import job
from jobs.iotec import Collection, GatewayError, IotecClient
from webapp.domain import audit, ledger, options, outbox, sources
from webapp.domain.sources import GATEWAY_META_KEY as META_KEY
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import PaymentRequest, RequestStatus, Source, SourceKind, utcnow

log = logging.getLogger(__name__)

YOUNG = timedelta(minutes=2)
CAP_S = 60
MAX_PER_PASS = 300
COLLECT_RETRY = timedelta(minutes=2)
COLLECT_TRIES = 3


def poll_period(age: timedelta, interval_s: int) -> float:
    """Seconds between two polls of a request this old (see the module docstring)."""
    if age < YOUNG:
        return float(interval_s)
    doublings = int(math.log2(age / YOUNG)) + 1
    return float(min(max(CAP_S, interval_s), interval_s * 2 ** min(doublings, 20)))


def state_of(request: PaymentRequest) -> dict[str, Any]:
    return dict((request.meta or {}).get(META_KEY) or {})


def save_state(request_id: int, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into the request's gateway bookkeeping (only the meta column is written)."""
    with db.transaction():
        row = PaymentRequest.get_by_id(request_id)
        meta = dict(row.meta or {})
        state = {**(meta.get(META_KEY) or {}),
                 **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}}
        meta[META_KEY] = state
        PaymentRequest.update(meta=meta).where(PaymentRequest.id == request_id).execute()
    return state


def is_due(request: PaymentRequest, now: datetime, interval_s: int) -> bool:
    """Due when never polled, or its next poll falls before the middle of the next pass."""
    state = state_of(request)
    if state.get("final"):  # ioTec said its last word (a callback may still re-read it)
        return False
    nxt = state.get("next_poll_at")
    return nxt is None or datetime.fromisoformat(nxt) <= now + timedelta(seconds=interval_s / 2)


def watched_requests(source: Source, now: datetime):
    """The source's requests still worth polling: open, or expired within the grace period."""
    grace = timedelta(minutes=options.current()["match_grace_minutes"])
    return PaymentRequest.select().where(
        PaymentRequest.source == source.name, PaymentRequest.external_id.is_null(False),
        (PaymentRequest.status.in_(RequestStatus.OPEN))
        | ((PaymentRequest.status == RequestStatus.EXPIRED) & (PaymentRequest.expires_at > now - grace)),
    ).order_by(PaymentRequest.id)


def make_client(source: Source) -> IotecClient:
    provider = (source.config or {}).get("provider")
    if provider != "iotec":
        raise GatewayError(f"unknown gateway provider {provider!r} (known: iotec)", permanent=True, code="config")
    return IotecClient(source.name, source.config)


# ---------------------------------------------------------------- applying a status


def apply(source: Source, request: PaymentRequest, view: Collection, now: datetime) -> str:
    """Hand what ioTec says about `request` to the ledger; returns the change."""
    save_state(request.id, id=view.id, status=view.status, status_message=view.status_message[:200],
               checked_at=now)
    mapped = view.mapped
    if mapped == "pending":
        return "pending"
    if mapped == "paid":
        change = _paid(source, request, view, now)
    elif view.status == "RolledBack" and request.status == RequestStatus.PAID:
        change = _reversed(source, request, view)
    else:
        change = ledger.observe_request(ledger.RequestObservation(
            source=source.name, external_id=request.external_id, status=mapped, raw=json.dumps(view.raw)[:20000]),
            now=now).change
    save_state(request.id, final=True)  # only once the ledger took it: a failed try is polled again
    return change


def _paid(source: Source, request: PaymentRequest, view: Collection, now: datetime) -> str:
    """ioTec says Success: the ledger pays the request only for the exact amount asked, with
    money that moved before it expired; anything else goes to review with the reason."""
    vendor = VENDORS.get(str(view.raw.get("vendor") or "").lower()) if view.vendor_transaction_id else None
    reported = (view.currency or "").upper()
    # The wallet's own currency word (ITX on ioTec's sandbox wallet) stands for the request's.
    wallet = {"", "ITX", str((source.config or {}).get("currency") or "").upper()}
    result = ledger.observe_request(ledger.RequestObservation(
        source=source.name, external_id=request.external_id, status="paid",
        amount_minor=view.amount_minor(request.currency), amount_text=None if view.amount is None else str(view.amount),
        currency=request.currency if reported in wallet else reported,
        transaction_id=view.vendor_transaction_id or view.id, provider=vendor or "iotec",
        customer_name=view.payer_name or "", paid_at=view.moved_at, raw=json.dumps(view.raw)[:20000]), now=now)
    return result.change


# ioTec's vendor → the provider whose transaction id vendorTransactionId is (the same id the
# provider's own SMS or mail quotes, so those reports are one payment with the gateway's).
VENDORS = {"mtn": "mtn_ug", "mtnmerchant": "mtn_ug", "airtel": "airtel_ug", "airtelmerchant": "airtel_ug"}


def _reversed(source: Source, request: PaymentRequest, view: Collection) -> str:
    with db.transaction():
        flagged = PaymentRequest.update(flag="gateway_rolled_back").where(
            PaymentRequest.id == request.id, PaymentRequest.flag.is_null()).execute()
        if flagged:
            audit.record("request.gateway_rolled_back", f"request:{request.reference}",
                         actor=f"source:{source.name}", transaction=view.id)
            outbox.admin_alert(f"gateway_rolled_back:{request.reference}",
                               f"Paywatch: {request.reference} was paid, then ioTec rolled it back ({view.id}). "
                               "Check it before delivering anything more.")
    return "reversed" if flagged else "unchanged"


# ---------------------------------------------------------------- the pass


def poll_request(source: Source, client: IotecClient, request: PaymentRequest, now: datetime) -> str:
    """Poll one request and schedule its next poll; returns the change ("not_found" while unknown)."""
    state = state_of(request)
    age = now - request.created_at
    save_state(request.id, next_poll_at=now + timedelta(seconds=poll_period(age, source.interval_s)),
               polls=state.get("polls", 0) + 1)
    view = client.status(state["id"]) if state.get("id") else client.by_external_id(request.external_id)
    if view is None:
        _collect_again_if_lost(request, state, now)
        return "not_found"
    return apply(source, PaymentRequest.get_by_id(request.id), view, now)


def _collect_again_if_lost(request: PaymentRequest, state: dict, now: datetime) -> None:
    if not state.get("collect") or state.get("collect_state") not in ("queued", "unconfirmed"):
        return
    since = datetime.fromisoformat(state["collect_at"]) if state.get("collect_at") else request.created_at
    # Still "queued" with no job in Redis (flushed, replaced, or down when the request was
    # made): it never ran, so start it now rather than after COLLECT_RETRY.
    job_id = sources.collect_job_id(request.id)
    never_ran = state.get("collect_state") == "queued" and not jobqueue.is_live(job_id)
    if request.status in RequestStatus.OPEN and (never_ran or now - since >= COLLECT_RETRY) \
            and state.get("collect_attempts", 0) < COLLECT_TRIES:
        save_state(request.id, collect_state="queued", collect_at=now)
        jobqueue.enqueue("gateway_collect", request.id, job_id=job_id)


def run_pass(source_id: int, *, now: datetime | None = None, client: IotecClient | None = None) -> dict[str, Any]:
    """One pass over a gateway source's watched requests; returns a summary."""
    now = now or utcnow()
    source = Source.get_by_id(source_id)
    if source.kind != SourceKind.GATEWAY or not source.enabled:
        return {"source": source.name, "skipped": "not an enabled gateway source"}
    try:
        client = client or make_client(source)
    except GatewayError as exc:
        sources.record_pass(source.id, ok=False, error=str(exc), now=now)
        sources.raise_alarm(source.id, "gateway_config", str(exc), now=now)
        return {"source": source.name, "error": str(exc)}
    watched = list(watched_requests(source, now))
    due = [r for r in watched if is_due(r, now, source.interval_s)][:MAX_PER_PASS]
    counts: Counter[str] = Counter()
    errors, refused = [], None
    for request in due:
        try:
            counts[poll_request(source, client, request, now)] += 1
        except GatewayError as exc:
            errors.append(f"{request.reference}: {exc}")
            log.warning("gateway %s: polling %s failed: %s", source.name, request.reference, exc)
            if exc.code in ("config", "token") or exc.status in (401, 403):
                refused = str(exc)  # every other call would fail the same way
                break
        except ledger.LedgerError as exc:
            # The request changed while this status was applied (a callback's re-read won the
            # race): nothing is lost, the next pass reads it again; the rest of the pass goes on.
            counts["conflict"] += 1
            log.info("gateway %s: %s changed meanwhile: %s", source.name, request.reference, exc.message)
    if refused:
        sources.raise_alarm(source.id, "gateway_auth", f"ioTec refuses our credentials: {refused}", now=now)
    else:
        sources.clear_alarm(source.id, "gateway_auth")
    contact = len(due) > len(errors)
    failing = _lookups_failing(source, len(due), len(due) - len(errors) - counts["not_found"], errors, now)
    sources.record_pass(source.id, ok=not errors, error="; ".join(errors)[:2000] or None, now=now,
                         **({"last_contact_at": now} if contact else {}), watched=len(watched), **failing)
    return {"source": source.name, "watched": len(watched), "polled": len(due), "errors": errors, **counts}


LOOKUPS_FAILING_INTERVALS = 3  # every lookup failing this many intervals (and 3+ lookups) raises the alarm
LOOKUPS_FAILING_MIN_S = 300  # …and at least this long: a request ioTec does not know yet is normal for a while
LOOKUPS_FAILING_MIN = 3


def _lookups_failing(source: Source, polled: int, answered: int, errors: list[str], now: datetime) -> dict:
    """Track passes in which every lookup failed or found nothing (a wrong `api_url` answers 404 to
    every one, which reads as "not found yet" forever); raise alarm "lookups_failing" once that
    has lasted LOOKUPS_FAILING_INTERVALS × interval_s (at least 5 min) over 3+ lookups, clear it on the first answer.
    Returns the state to record."""
    if answered > 0:
        sources.clear_alarm(source.id, "lookups_failing")
        return {"lookups_failing_since": None, "lookups_failed": 0}
    state = source.state or {}
    if polled == 0:
        return {}
    since = state.get("lookups_failing_since") or now.isoformat()
    failed = int(state.get("lookups_failed") or 0) + polled
    lasted = now - datetime.fromisoformat(since)
    if failed >= LOOKUPS_FAILING_MIN and lasted >= timedelta(
            seconds=max(LOOKUPS_FAILING_INTERVALS * source.interval_s, LOOKUPS_FAILING_MIN_S)):
        last = errors[-1] if errors else "ioTec knows none of the transactions (HTTP 404 on every lookup)"
        sources.raise_alarm(source.id, "lookups_failing",
                            f"all {failed} lookups since {since[:19]} failed or found nothing; last: {last}. "
                            f"Check api_url ({(source.config or {}).get('api_url')}) and the wallet", now=now)
    return {"lookups_failing_since": since, "lookups_failed": failed}


@job
def poll(source_id: int) -> dict[str, Any]:
    """The recurring pass of gateway source `source_id` (see run_pass)."""
    return run_pass(source_id)


# ---------------------------------------------------------------- collect


def run_collect(request_id: int, *, now: datetime | None = None, client: IotecClient | None = None) -> dict[str, Any]:
    """Start the collection of a request created with collect (safe to run twice)."""
    now = now or utcnow()
    request = PaymentRequest.get_or_none(PaymentRequest.id == request_id)
    if request is None or request.status not in RequestStatus.OPEN:
        return {"request": request_id, "skipped": "not open"}
    state = state_of(request)
    if state.get("id") or state.get("collect_state") == "sent":
        return {"request": request.reference, "skipped": "already started", "id": state.get("id")}
    source = Source.get(Source.name == request.source)
    client = client or make_client(source)
    save_state(request.id, collect_state="sending", collect_at=now,
               collect_attempts=state.get("collect_attempts", 0) + 1)
    try:
        view = client.collect(external_id=request.external_id, amount_minor=request.amount_minor,
                              currency=request.currency, payer=request.customer_phone or "",
                              payer_name=request.customer_name, note=f"Payment {request.reference}")
    except GatewayError as exc:
        if exc.permanent:
            return _refused(source, request, exc, now)
        view = _recover(client, request, exc)
        if view is None:
            return {"request": request.reference, "unconfirmed": str(exc)}
    save_state(request.id, collect_state="sent", id=view.id)
    audit.record("request.collect_started", f"request:{request.reference}", actor=f"source:{source.name}",
                 transaction=view.id, external_id=request.external_id)
    return {"request": request.reference, "id": view.id, "status": view.status,
            "change": apply(source, PaymentRequest.get_by_id(request.id), view, now)}


def _recover(client: IotecClient, request: PaymentRequest, exc: GatewayError) -> Collection | None:
    """The answer was lost: ioTec may have started the collection anyway; ask by our externalId."""
    try:
        view = client.by_external_id(request.external_id)
    except GatewayError:
        view = None
    if view is None:
        save_state(request.id, collect_state="unconfirmed", error=str(exc)[:300])
    return view


def _refused(source: Source, request: PaymentRequest, exc: GatewayError, now: datetime) -> dict[str, Any]:
    save_state(request.id, collect_state="refused", error=str(exc)[:300], final=True)
    audit.record("request.collect_refused", f"request:{request.reference}", actor=f"source:{source.name}",
                 error=str(exc)[:300])
    ledger.observe_request(ledger.RequestObservation(source=source.name, external_id=request.external_id,
                                                     status="failed", raw=str(exc)[:2000]), now=now)
    return {"request": request.reference, "refused": str(exc)}


@job
def collect(request_id: int) -> dict[str, Any]:
    return run_collect(request_id)


# ---------------------------------------------------------------- callbacks


def run_reread(source_id: int, transaction_id: str | None, external_id: str | None, *,
               now: datetime | None = None, client: IotecClient | None = None) -> dict[str, Any]:
    """Read the status a callback announced, from the API; transient errors raise (RQ retries)."""
    now = now or utcnow()
    source = Source.get_by_id(source_id)
    client = client or make_client(source)
    view = client.status(transaction_id) if transaction_id else client.by_external_id(external_id)
    if view is None:
        return {"source": source.name, "ignored": "unknown to ioTec"}
    request = None
    if view.external_id:
        request = PaymentRequest.get_or_none(PaymentRequest.source == source.name,
                                             PaymentRequest.external_id == view.external_id)
    if request is None:
        request = next((r for r in watched_requests(source, now) if state_of(r).get("id") == view.id), None)
    if request is None:
        return {"source": source.name, "ignored": f"no request for ioTec {view.id}"}
    return {"source": source.name, "request": request.reference, "status": view.status,
            "change": apply(source, request, view, now)}


@job
def reread(source_id: int, transaction_id: str | None = None, external_id: str | None = None) -> dict[str, Any]:
    try:
        return run_reread(source_id, transaction_id, external_id)
    except GatewayError as exc:
        if exc.permanent:
            log.warning("gateway callback re-read of %s/%s failed: %s", transaction_id, external_id, exc)
            return {"error": str(exc)}
        raise
