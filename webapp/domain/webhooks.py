"""Outbound webhooks: endpoints, and the events the ledger writes inside its transactions.

An event is one WebhookDelivery row per active endpoint that wants its type, written in
the transaction that makes the change (so a rolled-back change sends nothing and a
committed one is never lost), with a stable id (`webhook-id`) and its body fixed then:
`{"type", "timestamp", "data"}`, data being the request or payment as the API reads it.
The delivery job is enqueued after the commit (webapp/domain/webhook_delivery.py says
how attempts go; jobs/webhooks.py sends them).
"""
from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import urlsplit

from webapp.config import settings
from webapp.domain import audit
from webapp.storage import db, sqlcache
from webapp.storage.models import Payment, PaymentRequest, WebhookDelivery, WebhookEndpoint, utcnow

EVENT_TYPES = (
    "request.created", "request.paid", "request.in_review", "request.expired", "request.cancelled",
    "request.failed", "payment.received", "payment.unmatched", "payment.reversed", "voucher.assigned",
    "claim.received",
)
ROTATION_OVERLAP = timedelta(hours=24)  # the old secret keeps signing (alongside) this long
MAX_URL = 2000
MAX_DESCRIPTION = 200


class WebhookError(Exception):
    """A change to an endpoint that cannot be made; `field` names the input at fault."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


# ------------------------------------------------------------------ bodies

_shapes: dict[str, Callable[[Any], dict]] = {}


def use_shapes(*, request: Callable[[PaymentRequest], dict], payment: Callable[[Payment], dict]) -> None:
    """The API registers its request and payment shapes (create_app does, through webapp.api), so
    a webhook's data is exactly what GET /api/v1/requests/<ref> or /payments/<id> would answer."""
    _shapes.update(request=request, payment=payment)


def _shape(kind: str, row) -> dict:
    if kind not in _shapes:
        raise RuntimeError("webhook bodies need the API's shapes: build the app with webapp.create_app()")
    return _shapes[kind](row)


# ------------------------------------------------------------------ events (called inside ledger transactions)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _subscribers(event_type: str | None) -> list[WebhookEndpoint]:
    """The active endpoints that want `event_type` (None: every active endpoint)."""
    # A statement built once, run once per transaction: this runs for every ledger event,
    # listened to or not (a batch of payments is one transaction).
    active = db.memo("webhooks.active", lambda: list(sqlcache.select(
        WebhookEndpoint, "active", lambda p: f'SELECT * FROM "webhook_endpoint" WHERE "is_active" = {p}', [True])))
    return [e for e in active if event_type is None or not e.events or event_type in e.events]


def listened(event_type: str) -> bool:
    """Whether any endpoint wants `event_type` (emit() writes nothing otherwise)."""
    return bool(_subscribers(event_type))


def anyone_listening() -> bool:
    """Whether any active endpoint wants any event: the ledger then writes each payment's row as
    soon as it is decided, since the events' bodies are read from the rows."""
    return bool(_subscribers(None))


def emit(event_type: str, subject: str, data: Callable[[], dict], *, now: datetime | None = None,
         request_id: int | None = None) -> str | None:
    """Write `event_type` about `subject` for every endpoint that wants it, once per (type, subject,
    endpoint) however often it is reported; returns the event id, None when nobody listens.
    `data` is called only when someone does (the body is built inside the caller's transaction);
    `request_id`: the request it is about (the request page lists the deliveries)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = _subscribers(event_type)
    if not endpoints:
        return None
    now = now or utcnow()
    event_id = f"msg_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": now.isoformat(), "data": data()}
    for endpoint in endpoints:
        new_id = sqlcache.insert(WebhookDelivery, {
            "endpoint": endpoint.id, "event": event_type, "event_id": event_id, "payload": payload,
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
            "dedupe_key": f"{event_type}:{subject}:{endpoint.id}", "request": request_id,
        }, ignore_conflict=True)
        if new_id is not None:
            schedule(new_id, now)
    return event_id


def delivery_job_id(delivery_id: int, due_at: datetime) -> str:
    """One job id per delivery and due time: enqueueing the same attempt twice keeps one job."""
    return f"webhook-{delivery_id}-{int(due_at.timestamp())}"


def schedule(delivery_id: int, due_at: datetime) -> None:
    """Enqueue the delivery job at `due_at`, after the current transaction commits."""
    from webapp.plumbing import jobqueue

    job_id = delivery_job_id(delivery_id, due_at)
    if due_at <= utcnow():
        jobqueue.enqueue("deliver_webhook", delivery_id, job_id=job_id)
    else:
        jobqueue.enqueue_at("deliver_webhook", due_at, delivery_id, job_id=job_id)


def request_event(event_type: str, request: PaymentRequest | int, *, key: str = "") -> str | None:
    """An event whose data is the request (re-read now, so it shows the change just made)."""
    request_id = request if isinstance(request, int) else request.id
    return emit(event_type, f"request:{request_id}{key}",
                lambda: _shape("request", PaymentRequest.get_by_id(request_id)), request_id=request_id)


def payment_event(event_type: str, payment: Payment, *, key: str = "") -> str | None:
    return emit(event_type, f"payment:{payment.id}{key}", lambda: _shape("payment", Payment.get_by_id(payment.id)),
                request_id=payment.request_id)


def claim_received(request: PaymentRequest, transaction_id: str, *, phone: str | None = None,
                   claim_id: int | str | None = None, now: datetime | None = None) -> str | None:
    """A customer said "I've paid" on the payment page: call inside the transaction that stores
    the claim. Data: the request as the API reads it, plus `claim` {transaction_id, phone, received_at}."""
    now = now or utcnow()
    claim = {"transaction_id": transaction_id, "phone": phone, "received_at": now.isoformat()}

    def data() -> dict:
        return {**_shape("request", PaymentRequest.get_by_id(request.id)), "claim": claim}

    return emit("claim.received", f"request:{request.reference}:claim:{claim_id or transaction_id}", data, now=now,
                request_id=request.id)


# ------------------------------------------------------------------ endpoints


def address_refused(address: str) -> str | None:
    """Why an IP address may not receive webhooks (None when it may): loopback, private,
    link-local, multicast, reserved, shared (CGNAT) or unspecified addresses — anything not globally
    routable — unless PAYWATCH_WEBHOOKS_ALLOW_PRIVATE."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if settings().webhooks_allow_private:
        return None
    if ip.is_global and not ip.is_multicast:
        return None
    kind = next((k for k in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified")
                 if getattr(ip, f"is_{k}")), "non-public")  # e.g. 100.64.0.0/10 (carrier-grade NAT)
    return f"{address} is a {kind.replace('_', '-')} address (set PAYWATCH_WEBHOOKS_ALLOW_PRIVATE=1 to allow)"


def check_url(url: str) -> str:
    """The URL, checked: http(s), a host that resolves, and no private or loopback address
    (checked again at each delivery, against the address actually connected to)."""
    url = (url or "").strip()
    if not url:
        raise WebhookError("url", "is required")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookError("url", f"must be one line of at most {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("url", "must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise WebhookError("url", "must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookError("url", "the port must be a number from 1 to 65535") from None
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise WebhookError("url", f"{parts.hostname[:100]!r} is not a valid host name") from None
    except (OSError, ValueError):  # socket.gaierror's text ("[Errno -2] Name or service not known") is not for staff
        raise WebhookError("url", f"host {parts.hostname} does not resolve: no such name in DNS, "
                                  "or this server cannot reach its DNS") from None
    for *_, sockaddr in found:
        problem = address_refused(sockaddr[0])
        if problem:
            raise WebhookError("url", f"{parts.hostname} resolves to {problem}")
    return url


def check_events(events: list[str] | None) -> list[str]:
    """The event types named (empty: all), each one known."""
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise WebhookError("events", f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    return events


def _description(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_DESCRIPTION or any(ord(c) < 32 for c in text):
        raise WebhookError("description", f"must be one line of at most {MAX_DESCRIPTION} characters")
    return text


def create_endpoint(url: str, events: list[str] | None = None, *, description: str = "", enabled: bool = True,
                    actor: str) -> WebhookEndpoint:
    """A new endpoint with a fresh `whsec_…` secret (show it once: read `.secret` now)."""
    events, description = check_events(events), _description(description)
    url = check_url(url)  # last: it asks DNS
    with db.transaction():
        endpoint = WebhookEndpoint.create(url=url, secret=new_secret(), events=events, description=description,
                                          is_active=enabled)
        audit.record("webhook_endpoint.created", f"webhook_endpoint:{endpoint.id}", actor=actor, url=url,
                     events=events)
    return endpoint


def find_endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.get_or_none(WebhookEndpoint.id == endpoint_id)
    if endpoint is None:
        raise WebhookError("id", f"no webhook endpoint with id {endpoint_id}", status=404)
    return endpoint


def update_endpoint(endpoint_id: int, *, actor: str, url: str | None = None, events: list[str] | None = None,
                    description: str | None = None, enabled: bool | None = None) -> WebhookEndpoint:
    """Change what is given (None: keep). Enabling again clears the failure record."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = check_url(url)
    if events is not None:
        changes["events"] = check_events(events)
    if description is not None:
        changes["description"] = _description(description)
    if enabled is not None:
        changes["is_active"] = enabled
        if enabled:
            changes.update(failing_since=None, disabled_reason=None)
        else:
            changes["disabled_reason"] = f"disabled by {actor}"
    with db.transaction():
        endpoint = find_endpoint(endpoint_id)
        if changes:
            WebhookEndpoint.update(**changes).where(WebhookEndpoint.id == endpoint.id).execute()
            audit.record("webhook_endpoint.changed", f"webhook_endpoint:{endpoint.id}", actor=actor,
                         **{k: v for k, v in changes.items() if k in ("url", "events", "description", "is_active")})
    return find_endpoint(endpoint_id)


def delete_endpoint(endpoint_id: int, *, actor: str) -> None:
    with db.transaction():
        endpoint = find_endpoint(endpoint_id)
        endpoint.delete_instance(recursive=True)
        audit.record("webhook_endpoint.deleted", f"webhook_endpoint:{endpoint_id}", actor=actor, url=endpoint.url)


def rotate_secret(endpoint_id: int, *, actor: str, overlap: timedelta = ROTATION_OVERLAP,
                  now: datetime | None = None) -> WebhookEndpoint:
    """A new secret signs from now on; the old one signs too (a second signature) for `overlap`."""
    now = now or utcnow()
    with db.transaction():
        endpoint = find_endpoint(endpoint_id)
        WebhookEndpoint.update(secret=new_secret(), previous_secret=endpoint.secret,
                               previous_secret_until=now + overlap).where(WebhookEndpoint.id == endpoint.id).execute()
        audit.record("webhook_endpoint.secret_rotated", f"webhook_endpoint:{endpoint.id}", actor=actor,
                     old_secret_until=(now + overlap).isoformat())
    return find_endpoint(endpoint_id)


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during its overlap."""
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        keys.append(endpoint.previous_secret)
    return keys


def endpoint_json(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    """An endpoint as the API and the CLI show it; the secret only when just made (shown once)."""
    body = {
        "id": endpoint.id, "url": endpoint.url, "events": endpoint.events or [], "description": endpoint.description,
        "enabled": endpoint.is_active, "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        "created_at": endpoint.created_at.isoformat(),
    }
    if with_secret:
        body["secret"] = endpoint.secret
    return body
