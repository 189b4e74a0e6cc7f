"""A phone's SMS forwarder app, as Paywatch's POST /hooks/sms/<source> receives it.

Builds each app's request the way the app does (body bytes and headers) and posts it:
- "SMS Gateway for Android" (capcom6): `sms:received` / `system:ping` webhooks, signed with
  `X-Timestamp` and `X-Signature` = hex HMAC-SHA256(key, body + timestamp);
- httpSMS: a CloudEvent (`message.phone.received`, `phone.heartbeat.offline`…) with
  `Authorization: Bearer <JWT HS256 signed with the webhook's signing key>`;
- the generic JSON `{from, text, received_at}`, signed like capcom6.
Used by tests, the demo and bench/latency.py. This module never imports webapp or jobs.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timedelta, timezone

import jwt
import requests


def _signed(body: bytes, key: str, stamp: int | None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    signature = hmac.new(key.encode(), body + str(stamp).encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Timestamp": str(stamp), "X-Signature": signature}


def _iso(when: datetime | None) -> str:
    return (when or datetime.now(timezone.utc)).isoformat(timespec="milliseconds")


def capcom6(key: str, sender: str, text: str, *, received_at: datetime | None = None,
            message_id: str | None = None, stamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """An `sms:received` webhook of SMS Gateway for Android (its messageId is content-based)."""
    body = json.dumps({
        "deviceId": "ffffffffceb0b1db0000018e5a4d7c11", "event": "sms:received", "id": secrets.token_urlsafe(15),
        "payload": {"messageId": message_id or hashlib.sha1(f"{sender}{text}".encode()).hexdigest()[:8],
                    "message": text, "phoneNumber": sender, "simNumber": 1, "receivedAt": _iso(received_at)},
        "webhookId": "LreFUt-Z3sSq0JufY9uWB",
    }, separators=(",", ":")).encode()
    return body, _signed(body, key, stamp)


def capcom6_ping(key: str, *, stamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"deviceId": "ffffffffceb0b1db0000018e5a4d7c11", "event": "system:ping",
                       "id": secrets.token_urlsafe(15), "payload": {"health": {"status": "pass"}},
                       "webhookId": "ping-hook"}, separators=(",", ":")).encode()
    return body, _signed(body, key, stamp)


def httpsms(key: str, sender: str, text: str, *, received_at: datetime | None = None,
            message_id: str | None = None, owner: str = "+256700999888", event: str = "message.phone.received",
            issued: float | None = None) -> tuple[bytes, dict[str, str]]:
    """An httpSMS webhook (CloudEvents JSON) with its JWT."""
    data = {"message_id": message_id or secrets.token_hex(16), "user_id": "u-sandbox", "owner": owner,
            "encrypted": False, "contact": sender, "timestamp": _iso(received_at), "content": text, "sim": "SIM1"}
    if event != "message.phone.received":
        data = {"phone_id": "p-sandbox", "owner": owner, "user_id": "u-sandbox", "timestamp": _iso(received_at)}
    body = json.dumps({"specversion": "1.0", "id": secrets.token_hex(16), "source": "/v1/messages/receive",
                       "type": event, "datacontenttype": "application/json", "time": _iso(received_at),
                       "data": data}).encode()
    now = int(time.time() if issued is None else issued)
    token = jwt.encode({"iss": "api.httpsms.com", "sub": "u-sandbox", "aud": "paywatch", "iat": now,
                        "nbf": now, "exp": now + 600}, key, algorithm="HS256")
    return body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def generic(key: str, sender: str, text: str, *, received_at: datetime | None = None,
            message_id: str | None = None, stamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The generic JSON: {"from", "text", "received_at"} (+ "id" when the app has one)."""
    payload = {"from": sender, "text": text, "received_at": _iso(received_at)}
    if message_id:
        payload["id"] = message_id
    body = json.dumps(payload).encode()
    return body, _signed(body, key, stamp)


FORMATS = {"capcom6": capcom6, "httpsms": httpsms, "generic": generic}

EAT = timezone(timedelta(hours=3))  # Africa/Kampala: MTN Uganda writes its times in it


def mtn_received(amount: int, *, sender_name: str = "Grace Kato", sender_phone: str = "+256772123456",
                 transaction_id: str = "48213577201", when: datetime | str | None = None) -> str:
    """An MTN MoMo (Uganda) "You have received" SMS text (amount in UGX), as the phone gets it."""
    shown = "256" + "".join(ch for ch in sender_phone if ch.isdigit())[-9:]
    if not isinstance(when, str):
        when = (when or datetime.now(timezone.utc)).astimezone(EAT).strftime("%Y-%m-%d %H:%M:%S")
    return (f"You have received UGX {amount:,} from {sender_name}, {shown} on {when}. Reason: payment. "
            f"Your new balance: UGX {amount * 2}. Fee was UGX 0. ID: {transaction_id}.")


def post(base_url: str, source: str, request: tuple[bytes, dict[str, str]], *, timeout: float = 10) -> requests.Response:
    """Send one built request to Paywatch's hook for `source`."""
    body, headers = request
    return requests.post(f"{base_url.rstrip('/')}/hooks/sms/{source}", data=body, headers=headers, timeout=timeout)
