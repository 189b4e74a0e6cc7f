"""How webhook deliveries go: claiming one for an attempt, what an answer means (delivered,
retry later, stop, disable the endpoint), the attempt log, resend and replay, and what the
sweep puts back. jobs/webhooks.py does the HTTP; this module decides and records.

Retries: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (each with ±10 % jitter),
then failed. 2xx delivers. 4xx stops (failed) except 408, 409 and 429, which retry;
`Retry-After` is honoured (up to 10 h). 410 Gone also disables the endpoint. An endpoint
failing without a success for 5 days is disabled and the admins are alerted.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.domain import audit, outbox, webhooks
from webapp.storage import db, sqlcache
from webapp.storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow

DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)  # seconds before attempts 2…8 (the first is immediate)
JITTER = 0.1
MAX_RETRY_AFTER = 36000
RETRYABLE_4XX = (408, 409, 429)
DISABLE_AFTER = timedelta(days=5)
SENDING_TIMEOUT = timedelta(seconds=60)  # a claim older than this died with its worker: retry
EXCERPT = 500  # characters of a response body kept in the attempt log
EARLY = timedelta(seconds=1)  # rq keeps whole seconds: a delayed job may start up to 1 s early


class Status:
    PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


@dataclass(frozen=True)
class Claimed:
    """What one attempt sends: the URL, the fixed body, the event id, the secrets that sign it now."""

    delivery_id: int
    url: str
    event_id: str
    payload: dict
    secrets: list[str]


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status (None when no answer), an error, an excerpt, timing."""

    status_code: int | None
    duration_ms: int
    excerpt: str = ""
    error: str | None = None
    retry_after: int | None = None  # seconds, from a Retry-After header


def claim(delivery_id: int, *, now: datetime | None = None) -> Claimed | None:
    """pending and due → sending; None when there is nothing to do (delivered, failed, not due, or
    another worker has it). A delivery whose endpoint was disabled meanwhile fails here."""
    now = now or utcnow()
    with db.transaction():
        # Statements built once (sqlcache): a worker runs this for every delivery.
        try:
            delivery = sqlcache.by_id(WebhookDelivery, delivery_id)
        except WebhookDelivery.DoesNotExist:
            return None
        if delivery.status != Status.PENDING or delivery.next_attempt_at > now:
            return None
        if sqlcache.update(WebhookDelivery, {"status": Status.SENDING, "claimed_at": now},
                           {"id": delivery_id, "status": Status.PENDING}) != 1:
            return None  # another worker took it
        endpoint = sqlcache.by_id(WebhookEndpoint, delivery.endpoint_id)
        if not endpoint.is_active:
            _set(delivery_id, status=Status.FAILED, last_error="endpoint disabled")
            return None
    return Claimed(delivery_id, endpoint.url, delivery.event_id, delivery.payload,
                   webhooks.signing_secrets(endpoint, now))


def early_by(delivery_id: int, *, now: datetime | None = None) -> float:
    """Seconds a waiting delivery is still short of its due time, when that is at most EARLY (rq
    started its job early: the job waits the rest out); else 0."""
    now = now or utcnow()
    delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
    if delivery is None or delivery.status != Status.PENDING:
        return 0.0
    rest = (delivery.next_attempt_at - now).total_seconds()
    return rest if 0 < rest <= EARLY.total_seconds() else 0.0


def _set(delivery_id: int, **values) -> None:
    sqlcache.update(WebhookDelivery, values, {"id": delivery_id})


def next_delay(attempts: int, answer: Answer, rng: random.Random = random) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None: stop."""
    code = answer.status_code
    if code is not None and 400 <= code < 500 and code not in RETRYABLE_4XX:
        return None
    if attempts > len(DELAYS):
        return None
    delay = DELAYS[attempts - 1] * (1 + rng.uniform(-JITTER, JITTER))
    if answer.retry_after is not None:
        delay = max(delay, min(answer.retry_after, MAX_RETRY_AFTER))
    return delay


def record(delivery_id: int, answer: Answer, *, now: datetime | None = None) -> str:
    """Log the attempt and move the delivery on; returns its new status."""
    now = now or utcnow()
    with db.transaction():
        delivery = sqlcache.by_id(WebhookDelivery, delivery_id)
        attempts = delivery.attempts + 1
        sqlcache.insert(WebhookAttempt, {
            "delivery": delivery_id, "at": now, "status_code": answer.status_code,
            "error": (answer.error or "")[:250] or None, "response_excerpt": answer.excerpt[:EXCERPT],
            "duration_ms": answer.duration_ms,
        })
        code = answer.status_code
        if code is not None and 200 <= code < 300:
            _set(delivery_id, status=Status.DELIVERED, attempts=attempts, last_status=code, last_error=None,
                 delivered_at=now, claimed_at=None)
            sqlcache.update(WebhookEndpoint, {"failing_since": None}, {"id": delivery.endpoint_id})
            return Status.DELIVERED
        error = answer.error or f"HTTP {code}"
        delay = next_delay(attempts, answer)
        if delay is None or code == 410:
            _set(delivery_id, status=Status.FAILED, attempts=attempts, last_status=code, last_error=error[:250],
                 claimed_at=None)
            status = Status.FAILED
        else:
            due = now + timedelta(seconds=delay)
            _set(delivery_id, status=Status.PENDING, attempts=attempts, last_status=code, last_error=error[:250],
                 next_attempt_at=due, claimed_at=None)
            webhooks.schedule(delivery_id, due)
            status = Status.PENDING
        if _failure(delivery.endpoint_id, now, gone=code == 410):
            status = Status.FAILED  # disabling the endpoint failed what waited, this one included
    return status


def _failure(endpoint_id: int, now: datetime, *, gone: bool) -> bool:
    """Note a failure of the endpoint; True when it is disabled now (410, or failing for 5 days)."""
    endpoint = WebhookEndpoint.get_by_id(endpoint_id)
    if endpoint.failing_since is None:
        WebhookEndpoint.update(failing_since=now).where(WebhookEndpoint.id == endpoint_id).execute()
        since = now
    else:
        since = endpoint.failing_since
    if gone:
        return disable(endpoint, "the endpoint answered 410 Gone", now)
    if now - since >= DISABLE_AFTER:
        return disable(endpoint, f"every delivery failed since {since.isoformat(timespec='seconds')}", now)
    return False


def disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
    """Turn an endpoint off (its waiting deliveries fail, replayable later) and tell the admins."""
    changed = (WebhookEndpoint.update(is_active=False, disabled_reason=reason)
               .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.is_active == True)  # noqa: E712
               .execute())
    if not changed:
        return False
    WebhookDelivery.update(status=Status.FAILED, last_error="endpoint disabled").where(
        WebhookDelivery.endpoint == endpoint.id, WebhookDelivery.status == Status.PENDING).execute()
    audit.record("webhook_endpoint.disabled", f"webhook_endpoint:{endpoint.id}", actor="system", reason=reason)
    outbox.admin_alert(f"webhook_endpoint:{endpoint.id}:disabled:{int(now.timestamp())}",
                       f"Paywatch: webhook endpoint {endpoint.id} ({endpoint.url}) was disabled: {reason}. "
                       "Fix it, enable it again in Settings → Webhooks, and replay what failed.")
    return True


# ------------------------------------------------------------------ staff: resend, replay


def resend(delivery_id: int, *, actor: str, now: datetime | None = None) -> None:
    """Send one delivery again now (delivered or failed), with a fresh retry schedule."""
    now = now or utcnow()
    with db.transaction():
        changed = (WebhookDelivery.update(status=Status.PENDING, attempts=0, next_attempt_at=now, claimed_at=None)
                   .where(WebhookDelivery.id == delivery_id,
                          WebhookDelivery.status.in_((Status.DELIVERED, Status.FAILED))).execute())
        if changed != 1:
            raise webhooks.WebhookError("delivery", f"delivery {delivery_id} is not delivered or failed (it is "
                                        "waiting or being sent)", status=409)
        audit.record("webhook_delivery.resent", f"webhook_delivery:{delivery_id}", actor=actor)
        webhooks.schedule(delivery_id, now)


def replay_failed(endpoint_id: int, since: datetime, *, actor: str, now: datetime | None = None) -> int:
    """Send again every failed delivery of the endpoint created at or after `since`; returns how many."""
    now = now or utcnow()
    with db.transaction():
        ids = [d.id for d in WebhookDelivery.select(WebhookDelivery.id).where(
            WebhookDelivery.endpoint == endpoint_id, WebhookDelivery.status == Status.FAILED,
            WebhookDelivery.created_at >= since).order_by(WebhookDelivery.id)]
        for delivery_id in ids:
            _set(delivery_id, status=Status.PENDING, attempts=0, next_attempt_at=now, claimed_at=None)
            webhooks.schedule(delivery_id, now)
        audit.record("webhook_endpoint.replayed", f"webhook_endpoint:{endpoint_id}", actor=actor,
                     since=since.isoformat(), deliveries=len(ids))
    return len(ids)


# ------------------------------------------------------------------ the sweep


def release_stuck(now: datetime | None = None) -> int:
    """sending for longer than a worker may take (it died): back to pending, due now."""
    now = now or utcnow()
    return (WebhookDelivery.update(status=Status.PENDING, next_attempt_at=now, claimed_at=None,
                                   last_error="sending did not finish; retrying")
            .where(WebhookDelivery.status == Status.SENDING, WebhookDelivery.claimed_at < now - SENDING_TIMEOUT)
            .execute())


def overdue(older_than: timedelta, *, now: datetime | None = None, batch: int = 1000) -> list[tuple[int, datetime]]:
    """(id, due time) of pending deliveries due for `older_than` already: their job may be lost."""
    now = now or utcnow()
    rows = (WebhookDelivery.select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.status == Status.PENDING, WebhookDelivery.next_attempt_at <= now - older_than)
            .order_by(WebhookDelivery.next_attempt_at).limit(batch))
    return [(row.id, row.next_attempt_at) for row in rows]


def attempts_of(delivery_id: int) -> list[WebhookAttempt]:
    return list(WebhookAttempt.select().where(WebhookAttempt.delivery == delivery_id).order_by(WebhookAttempt.id))
