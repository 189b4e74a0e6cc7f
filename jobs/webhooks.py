"""Sending webhooks: one signed POST per delivery attempt, and the sweep that re-enqueues lost ones.

Signed the Standard Webhooks way with the `standardwebhooks` library: `webhook-id` (the
event id), `webhook-timestamp`, `webhook-signature` (`v1,<base64>` per valid secret,
space-separated). 10 s timeout, no redirects, no proxies; the address actually connected
to is checked (a name that re-resolves to a private address is refused: DNS rebinding).
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from jobs import job
from webapp.domain import webhook_delivery, webhooks
from webapp.plumbing import jobqueue

TIMEOUT_S = 10
USER_AGENT = "Paywatch-Webhooks/1"
OVERDUE = timedelta(seconds=10)


class _Guarded:
    """Refuse the connection when the peer's address is private or loopback (unless allowed)."""

    def _new_conn(self):
        sock = super()._new_conn()
        problem = webhooks.address_refused(sock.getpeername()[0])
        if problem:
            sock.close()
            raise NewConnectionError(self, f"refused: {problem}")
        return sock


class _HTTPConnection(_Guarded, HTTPConnection):
    pass


class _HTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per worker thread (connections to a receiver are reused)."""
    if getattr(_local, "session", None) is None:
        session = requests.Session()
        session.trust_env = False  # never through a proxy: the address checked is the one we reach
        adapter = _GuardedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return _local.session


def body_bytes(payload: dict) -> str:
    """The body sent, the same text on every attempt (the signature covers it)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def headers(event_id: str, body: str, secrets: list[str], at: datetime) -> dict[str, str]:
    signatures = " ".join(Webhook(secret).sign(event_id, at, body) for secret in secrets)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value[:9])
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int((when - datetime.now(timezone.utc)).total_seconds())) if when.tzinfo else None


def post(claimed: webhook_delivery.Claimed) -> webhook_delivery.Answer:
    """One attempt; never raises for what the receiver or the network does."""
    body = body_bytes(claimed.payload)
    sent = headers(claimed.event_id, body, claimed.secrets, datetime.now(timezone.utc))
    started = time.monotonic()
    try:
        response = _session().post(claimed.url, data=body.encode(), headers=sent, timeout=TIMEOUT_S,
                                   allow_redirects=False, stream=True)
        try:
            excerpt = response.raw.read(webhook_delivery.EXCERPT, decode_content=True).decode("utf-8", "replace")
        finally:
            response.close()
    except requests.RequestException as exc:
        return webhook_delivery.Answer(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:250])
    return webhook_delivery.Answer(response.status_code, _ms(started), excerpt=excerpt,
                                   retry_after=_retry_after(response.headers.get("Retry-After")))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


@job
def deliver(delivery_id: int) -> str | None:
    """Attempt delivery `delivery_id` if it is due and waiting; record what happened."""
    claimed = webhook_delivery.claim(delivery_id)
    if claimed is None:
        rest = webhook_delivery.early_by(delivery_id)  # rq keeps whole seconds: up to 1 s early
        if not rest:
            return None
        time.sleep(rest)
        claimed = webhook_delivery.claim(delivery_id)
        if claimed is None:
            return None
    return webhook_delivery.record(delivery_id, post(claimed))


@job
def resend_lost_deliveries() -> dict:
    """Nothing lost: deliveries stuck in sending go back to pending; due ones with no live job
    (Redis flushed or restarted, a worker killed) are enqueued again. Runs every 15 s."""
    stuck = webhook_delivery.release_stuck()
    conn = jobqueue.redis_connection()
    requeued = 0
    for delivery_id, due_at in webhook_delivery.overdue(OVERDUE):
        job_id = webhooks.delivery_job_id(delivery_id, due_at)
        if not (jobqueue.is_live(job_id, conn) or jobqueue.is_live(f"{job_id}-sweep", conn)):
            jobqueue.enqueue("deliver_webhook", delivery_id, job_id=f"{job_id}-sweep")
            requeued += 1
    return {"stuck": stuck, "requeued": requeued}
