"""SMS posted by a phone (POST /hooks/sms/<source>): who may post, what a post says, storing it.

Three forwarder formats (a `sms` source's `format`), all authenticated with the secret in
the environment variable the source's `secret_env` names — never open:
- `capcom6` ("SMS Gateway for Android"): `{"event": "sms:received", "id", "deviceId",
  "webhookId", "payload": {"messageId", "message", "phoneNumber" (the sender id),
  "simNumber", "receivedAt"}}`, signed with headers `X-Timestamp` (unix seconds) and
  `X-Signature` = hex HMAC-SHA256 over the raw body followed by the timestamp string;
  `system:ping` events count as contact.
- `httpsms`: a CloudEvent `{"type": "message.phone.received", "id", "time", "data":
  {"message_id", "contact" (the sender), "owner", "content", "timestamp", "sim"}}` with
  `Authorization: Bearer <JWT>`, HS256 with the webhook's signing key; `iat` must be within
  the window (or, without one, `exp` within the hour) and `exp`/`nbf`, when present, hold. `phone.heartbeat.*` count as contact.
- `generic`: `{"from", "text", "received_at" (ISO 8601), "id" (optional)}`, signed as capcom6.

A post is stored (InboundSms, unique per source on the forwarder's message id, else a hash
of the sender, text and time) before anything reads it, and the job that reads it
(jobs/sms.py, "sms_ingest") is enqueued after the commit; a sweep finds rows Redis lost.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import jwt

from webapp.config import ConfigError, secret
from webapp.domain import audit, sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import InboundSms, InboundSmsStatus, Source, SourceKind, utcnow

FORMATS = sources.SMS_FORMATS
WINDOW_S = 300  # a signed post older or newer than this is refused (replays)
MAX_BODY = 64 * 1024  # a forwarder's post of one SMS is far smaller
MAX_TEXT = 8000  # one SMS, or a long app notification
MAX_SENDER = 64


class HookError(Exception):
    """A post refused: HTTP `status`, a stable `code`, and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Posted:
    """What one post says. `kind`: "sms" (read it), "contact" (a ping) or "other" (not for us)."""

    kind: str
    event: str
    ref: str = ""
    sender: str = ""
    text: str = ""
    received_at: datetime | None = None


def sms_source(name: str) -> Source | None:
    """The enabled `sms` source called `name`, else None."""
    return Source.get_or_none(Source.name == name, Source.kind == SourceKind.SMS,
                              Source.enabled == True)  # noqa: E712


def source_format(source: Source) -> str:
    fmt = (source.config or {}).get("format", "generic")
    if fmt not in FORMATS:
        raise HookError(503, "not_configured", f"source {source.name}: format must be one of "
                                               f"{', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def authenticate(source: Source, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
    """Raise HookError (401 unsigned or badly signed, 503 no secret configured) unless the post is
    signed with the source's secret in the source's format."""
    fmt = source_format(source)
    env = (source.config or {}).get("secret_env")
    try:
        key = secret(env) if env else ""
    except ConfigError:
        key = ""
    if not key:
        raise HookError(503, "not_configured", f"source {source.name}: the signing secret "
                                               f"({env or 'secret_env'}) is not set; nothing is accepted")
    now = time.time() if now is None else now
    if fmt == "httpsms":
        _check_jwt(headers.get("Authorization", ""), key, now)
    else:
        _check_hmac(headers.get("X-Signature", ""), headers.get("X-Timestamp", ""), key, body, now)


def _check_hmac(signature: str, stamp: str, key: str, body: bytes, now: float) -> None:
    if not signature or not stamp:
        raise HookError(401, "unauthorized", "the post is not signed (X-Signature and X-Timestamp)")
    try:
        moment = int(stamp.strip())
    except ValueError:
        raise HookError(401, "unauthorized", f"X-Timestamp {stamp[:40]!r} is not unix seconds") from None
    if abs(now - moment) > WINDOW_S:
        raise HookError(401, "unauthorized", f"X-Timestamp is {int(now - moment)} s away from now "
                                             f"(the window is {WINDOW_S} s): a replay or a wrong clock")
    expected = hmac.new(key.encode(), body + stamp.strip().encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise HookError(401, "unauthorized", "X-Signature does not match the body and X-Timestamp")


def _check_jwt(authorization: str, key: str, now: float) -> None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HookError(401, "unauthorized", "the post carries no Authorization: Bearer <JWT>")
    try:
        claims = jwt.decode(token.strip(), key, algorithms=["HS256"], leeway=60, options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise HookError(401, "unauthorized", f"the JWT is refused: {exc}") from None
    # A replayed token must be a fresh one: issued within the window, or (no iat) short-lived.
    issued, expires = claims.get("iat"), claims.get("exp")
    if isinstance(issued, (int, float)):
        if abs(now - issued) > WINDOW_S:
            raise HookError(401, "unauthorized", f"the JWT was issued outside the {WINDOW_S} s window")
    elif not isinstance(expires, (int, float)) or expires - now > 3600:
        raise HookError(401, "unauthorized", "the JWT has neither iat nor an expiry within the hour")


# ---------------------------------------------------------------- what a post says


def read_post(fmt: str, body: bytes) -> Posted:
    """The post's meaning in `fmt`; HookError 400 names what is missing or malformed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HookError(400, "bad_body", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise HookError(400, "bad_body", "the body must be a JSON object")
    if fmt == "generic":
        return _generic(data, body)
    return _enveloped(data, body, _ENVELOPES[fmt])


@dataclass(frozen=True)
class _Envelope:
    """Where an app's webhook keeps things: the event's key, which events are contact, the SMS
    event, the object holding the SMS, and its id / sender / text / time keys."""

    event_key: str
    contact: tuple[str, ...]
    sms_event: str
    inner_key: str
    id_key: str
    sender_keys: tuple[str, ...]
    text_key: str
    time_key: str
    outer_time_key: str | None = None


_ENVELOPES = {
    "capcom6": _Envelope("event", ("system:ping",), "sms:received", "payload", "messageId",
                         ("phoneNumber", "sender"), "message", "receivedAt"),
    "httpsms": _Envelope("type", ("phone.heartbeat.online", "phone.heartbeat.offline"), "message.phone.received",
                         "data", "message_id", ("contact",), "content", "timestamp", "time"),
}


def _enveloped(data: dict, body: bytes, spec: _Envelope) -> Posted:
    event = _text(data.get(spec.event_key), spec.event_key, 64)
    if event in spec.contact:
        return Posted("contact", event)
    if event != spec.sms_event:
        return Posted("other", event)
    inner = data.get(spec.inner_key)
    if not isinstance(inner, dict):
        raise HookError(400, "bad_body", f"{event} without a {spec.inner_key} object")
    sender = next((inner[k] for k in spec.sender_keys if inner.get(k)), None)
    when = inner.get(spec.time_key) or (data.get(spec.outer_time_key) if spec.outer_time_key else None)
    return _sms(event, inner.get(spec.id_key) or data.get("id"), sender, inner.get(spec.text_key), when, body)


def _generic(data: dict, body: bytes) -> Posted:
    return _sms("sms", data.get("id"), data.get("from"), data.get("text"), data.get("received_at"), body)


def _sms(event: str, ref: Any, sender: Any, text: Any, when: Any, body: bytes) -> Posted:
    sender = _text(sender, "sender (from / phoneNumber / contact)", MAX_SENDER)
    text = _text(text, "text (text / message / content)", MAX_TEXT)
    received = _moment(when)
    if ref is not None and not isinstance(ref, (str, int)):
        raise HookError(400, "bad_body", "the message id must be a string")
    ref = str(ref).strip()[:120] if ref not in (None, "") else ""
    if not ref:  # no id from the forwarder: the same SMS posted twice hashes the same
        stamp = received.isoformat() if received else ""
        ref = "sha256:" + hashlib.sha256(f"{sender}\n{text}\n{stamp}".encode()).hexdigest()[:48]
    return Posted("sms", event, ref=ref, sender=sender, text=text, received_at=received)


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HookError(400, "bad_body", f"{what} is missing or not a string")
    if len(value) > limit:
        raise HookError(400, "bad_body", f"{what} is over {limit} characters")
    return value.strip()


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset (naive ones are refused: whose clock?), or None when absent."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise HookError(400, "bad_body", "the received time must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HookError(400, "bad_body", f"received time {value[:40]!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise HookError(400, "bad_body", f"received time {value[:40]!r} has no UTC offset")
    return moment.astimezone(timezone.utc)


# ---------------------------------------------------------------- storing


def store(source: Source, posted: Posted, body: bytes) -> tuple[InboundSms, bool]:
    """Keep the SMS (once per ref) and queue its reading after the commit; (row, created)."""
    now = utcnow()
    with db.transaction():
        row = InboundSms.get_or_none(InboundSms.source == source.name, InboundSms.ref == posted.ref)
        created = row is None
        if created:
            row_id = (InboundSms.insert(
                source=source.name, ref=posted.ref, format=source_format(source), sender=posted.sender,
                text=posted.text, received_at=posted.received_at, raw=body[:MAX_BODY].decode("utf-8", "replace"),
                status=InboundSmsStatus.NEW, created_at=now).on_conflict_ignore().execute())
            row = InboundSms.get_or_none(InboundSms.source == source.name, InboundSms.ref == posted.ref)
            created = bool(row_id) and row is not None and row.id == row_id
            if created:
                audit.record("sms.received", f"source:{source.name}", actor=f"source:{source.name}",
                             ref=posted.ref)  # not the sender: it may be a person's number
                jobqueue.enqueue("sms_ingest", row.id, job_id=ingest_job_id(row.id))
        touch(source, now)
    return row, created


def heard(source: Source, posted: Posted) -> None:
    """An authenticated post that is not an SMS to read: contact, or httpSMS saying the phone
    went offline (alarm "phone_offline" until it is back)."""
    if posted.event == "phone.heartbeat.offline":
        sources.raise_alarm(source.id, "phone_offline", "httpSMS reports the phone offline (no heartbeat "
                                                        "for an hour): its SMS are not reaching Paywatch")
        return
    touch(source)
    sources.clear_alarm(source.id, "phone_offline")


def touch(source: Source, now: datetime | None = None) -> None:
    """Record contact from the phone (any authenticated post, pings included)."""
    now = now or utcnow()
    sources.record_pass(source.id, ok=True, now=now, last_contact_at=now)
    sources.clear_alarm(source.id, "silent")


def ingest_job_id(row_id: int) -> str:
    return f"sms-ingest-{row_id}"


def waiting(older_than_s: float = 10, limit: int = 500) -> list[int]:
    """Ids of stored SMS still unread after `older_than_s` seconds (the sweep re-enqueues them)."""
    cutoff = datetime.fromtimestamp(time.time() - older_than_s, timezone.utc)
    return [row.id for row in InboundSms.select(InboundSms.id).where(
        InboundSms.status == InboundSmsStatus.NEW, InboundSms.created_at <= cutoff)
        .order_by(InboundSms.id).limit(limit)]
