"""The wppconnect-server adapter (contract: shared/contracts/wppconnect.md).

One recipient per request, digits-only international phone, every outcome
classified into SendResult or WhatsAppError (`kind`, `permanent`):

- 401 → "config" (wrong secret key or token): sending is paused until fixed;
- 404 "Disconnected" (also what a bad input type gives) → "disconnected", transient;
- 400 "… não existe" → "not_on_whatsapp", permanent for that number;
- 5xx, timeouts, connection errors → "server", transient (retried with backoff);
- 201 with an empty `response`, or an `ack` < 0 → "failed", permanent.

`unknown` marks an error after which the message may have gone out all the same: the
answer timed out or the connection broke after the request was sent, or a 5xx came
from something other than wppconnect (a proxy's 502/504). `recent_messages` reads the
chat (§1.11) so that the caller can look before it sends again.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import requests
from urllib3.exceptions import NewConnectionError

TIMEOUT = (3.05, 20)  # connect, read (seconds); the read part is WPPCONNECT_TIMEOUT
_tokens: dict[tuple[str, str, str], str] = {}
_lock = threading.Lock()


class WhatsAppError(Exception):
    def __init__(self, kind: str, message: str, *, permanent: bool, status: int | None = None,
                 unknown: bool = False):
        super().__init__(message)
        self.kind, self.message, self.permanent, self.status = kind, message, permanent, status
        self.unknown = unknown  # the request went out: it may have been carried out


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    ack: int | None
    to: str


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat as get-messages serialises it (fields read defensively)."""
    id: str
    body: str
    from_me: bool
    t: float | None  # unix seconds, None when the server gave no time
    ack: int | None


@dataclass(frozen=True)
class SessionState:
    status: str  # CLOSED / INITIALIZING / QRCODE / PHONECODE / CONNECTED
    qrcode: str | None  # data: URL of the QR image while pairing


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"value": body}


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (refused, no route, DNS)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _message_list(body: dict) -> list | None:
    """The messages in a get-messages answer: `response`, `response.data`, or the body itself."""
    for candidate in (body.get("value"), body.get("response"), body.get("data"), body.get("messages")):
        if isinstance(candidate, list):
            return candidate
        if isinstance(candidate, dict):
            for inner in (candidate.get("data"), candidate.get("messages")):
                if isinstance(inner, list):
                    return inner
    return None


def _chat_message(raw) -> ChatMessage | None:
    if not isinstance(raw, dict):
        return None
    msg_id, from_me = raw.get("id"), raw.get("fromMe")
    if isinstance(msg_id, dict):  # {fromMe, remote, id, _serialized}
        from_me = msg_id.get("fromMe") if from_me is None else from_me
        msg_id = msg_id.get("_serialized")
    if not isinstance(msg_id, str) or not msg_id:
        return None
    if from_me is None:
        from_me = msg_id.startswith("true_")
    body = raw.get("body") if isinstance(raw.get("body"), str) else raw.get("content")
    t = raw.get("t") if raw.get("t") is not None else raw.get("timestamp")
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        t = None
    elif t > 1e11:  # milliseconds
        t = t / 1000
    ack = raw.get("ack")
    return ChatMessage(msg_id, body if isinstance(body, str) else "", from_me is True, t,
                       ack if isinstance(ack, int) and not isinstance(ack, bool) else None)


class Client:
    """A wppconnect session: `token` given, or generated from the server's secret key (cached)."""

    def __init__(self, base_url: str, session: str, *, secret_key: str | None = None, token: str | None = None,
                 http: requests.Session | None = None, read_timeout: float = TIMEOUT[1]):
        if not (secret_key or token):
            raise WhatsAppError("config", "set WPPCONNECT_SECRET_KEY or WPPCONNECT_TOKEN", permanent=True)
        self.base = base_url.rstrip("/")
        self.session, self.secret_key, self.given_token = session, secret_key, token
        self.http = http or requests.Session()
        self.timeout = (TIMEOUT[0], read_timeout)

    # -------------------------------------------------------------- auth

    def token(self, *, fresh: bool = False) -> str:
        if self.given_token:
            return self.given_token
        key = (self.base, self.session, self.secret_key)
        with _lock:
            if not fresh and key in _tokens:
                return _tokens[key]
        url = f"{self.base}/api/{self.session}/{self.secret_key}/generate-token"
        try:
            response = self.http.post(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise WhatsAppError("server", f"cannot reach wppconnect at {self.base}: {type(exc).__name__}",
                                permanent=False) from None
        body = _json(response)
        if response.status_code == 400:
            raise WhatsAppError("config", "wppconnect refused the secret key (WPPCONNECT_SECRET_KEY)",
                                permanent=True, status=400)
        if response.status_code >= 300 or not body.get("token"):
            raise WhatsAppError("server", f"generate-token answered HTTP {response.status_code}",
                                permanent=False, status=response.status_code)
        with _lock:
            _tokens[key] = body["token"]
        return body["token"]

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        """One authenticated call; a 401 with a generated token gets one fresh token and one retry.

        A 401 whose body has a `status` comes from a controller, not from the token check
        (get-messages answers its errors with 401): it is returned to the caller.
        """
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token(fresh=attempt == 2)}"}
            try:
                response = self.http.request(method, f"{self.base}/api/{self.session}/{path}",
                                             headers=headers, timeout=self.timeout, **kwargs)
            except requests.ConnectTimeout:
                raise WhatsAppError("server", f"cannot reach wppconnect at {self.base}: ConnectTimeout",
                                    permanent=False) from None
            except requests.Timeout:
                raise WhatsAppError("server", "wppconnect did not answer in time", permanent=False,
                                    unknown=True) from None
            except requests.RequestException as exc:
                raise WhatsAppError("server", f"cannot reach wppconnect: {type(exc).__name__}",
                                    permanent=False, unknown=not _never_connected(exc)) from None
            refused = response.status_code == 401 and "status" not in _json(response)
            if not refused or self.given_token or attempt == 2:
                break
        if refused:
            raise WhatsAppError("config", "wppconnect refused our token (check WPPCONNECT_SECRET_KEY / "
                                "WPPCONNECT_TOKEN and WPPCONNECT_SESSION)", permanent=True, status=401)
        return response

    # -------------------------------------------------------------- messages

    def send_text(self, phone_e164: str, message: str) -> SendResult:
        digits = "".join(ch for ch in phone_e164 if ch.isdigit())
        if len(digits) < 8:
            raise WhatsAppError("failed", f"{phone_e164!r} is not a phone number", permanent=True)
        response = self._call("POST", "send-message", json={"phone": digits, "message": message})
        body = _json(response)
        if response.status_code == 404:
            raise WhatsAppError("disconnected", "the WhatsApp session is not connected", permanent=False, status=404)
        if response.status_code == 400 and "não existe" in str(body.get("message", "")):
            raise WhatsAppError("not_on_whatsapp", f"{phone_e164} is not on WhatsApp", permanent=True, status=400)
        if response.status_code >= 500:
            # wppconnect's own 500 ("Erro ao enviar a mensagem.") means the send threw; any
            # other 5xx (a proxy's 502/504) says nothing about whether it went out.
            raise WhatsAppError("server", f"wppconnect answered HTTP {response.status_code}: "
                                f"{str(body.get('message', ''))[:120]}", permanent=False, status=response.status_code,
                                unknown="status" not in body)
        if response.status_code not in (200, 201):
            raise WhatsAppError("failed", f"wppconnect answered HTTP {response.status_code}: "
                                f"{str(body.get('message', body))[:160]}", permanent=True, status=response.status_code)
        sent = body.get("response")
        if not isinstance(sent, list) or not sent or not isinstance(sent[0], dict):
            raise WhatsAppError("failed", "wppconnect accepted the call but sent nothing (empty response)",
                                permanent=True, status=response.status_code)
        message_info = sent[0]
        ack = message_info.get("ack")
        if isinstance(ack, int) and ack < 0:
            raise WhatsAppError("failed", f"WhatsApp refused the message (ack {ack})", permanent=True)
        provider_id = message_info.get("id")
        if isinstance(provider_id, dict):
            provider_id = provider_id.get("_serialized")
        return SendResult(str(provider_id or ""), ack if isinstance(ack, int) else None, str(message_info.get("to", "")))

    def recent_messages(self, phone_e164: str, count: int) -> list[ChatMessage]:
        """The latest `count` messages of the chat with `phone_e164` (§1.11), oldest first;
        [] when there is no such chat (nothing was ever sent to it). Raises WhatsAppError:
        "disconnected", "unsupported" (no such route: permanent) or "server" (transient)."""
        digits = "".join(ch for ch in phone_e164 if ch.isdigit())
        response = self._call("GET", f"get-messages/{digits}@c.us", params={"count": count})
        body = _json(response)
        if response.status_code == 404:
            if body.get("status") == "Disconnected":
                raise WhatsAppError("disconnected", "the WhatsApp session is not connected", permanent=False, status=404)
            raise WhatsAppError("unsupported", "this wppconnect-server has no get-messages route (HTTP 404)",
                                permanent=True, status=404)
        if response.status_code == 401:  # the controller's error answer (see _call)
            error = body.get("error")
            if isinstance(error, dict) and error.get("code") == "chat_not_found":
                return []
            raise WhatsAppError("server", f"wppconnect could not read the chat: {str(body.get('response'))[:120]}",
                                permanent=False, status=401)
        if response.status_code not in (200, 201):
            raise WhatsAppError("server", f"get-messages answered HTTP {response.status_code}", permanent=False,
                                status=response.status_code)
        listed = _message_list(body)
        if listed is None:
            raise WhatsAppError("server", "get-messages answered without a list of messages", permanent=False,
                                status=response.status_code)
        messages = [m for m in map(_chat_message, listed) if m is not None]
        return sorted(messages, key=lambda m: m.t if m.t is not None else float("inf"))

    def ack_of(self, provider_id: str) -> int | None:
        """The message's current ack (2 delivered, 3 read), or None when unknown."""
        response = self._call("GET", f"message-by-id/{provider_id}")
        if response.status_code not in (200, 201):
            return None
        data = (_json(response).get("response") or {}).get("data") or {}
        ack = data.get("ack")
        return ack if isinstance(ack, int) else None

    # -------------------------------------------------------------- session

    def session_state(self) -> SessionState:
        response = self._call("GET", "status-session")
        body = _json(response)
        if response.status_code >= 300:
            raise WhatsAppError("server", f"status-session answered HTTP {response.status_code}", permanent=False)
        return SessionState(str(body.get("status") or "CLOSED").upper(), body.get("qrcode"))

    def start_session(self, webhook: str | None = None) -> SessionState:
        payload = {"webhook": webhook} if webhook else {}
        response = self._call("POST", "start-session", json=payload)
        body = _json(response)
        if response.status_code >= 300:
            raise WhatsAppError("server", f"start-session answered HTTP {response.status_code}", permanent=False)
        return SessionState(str(body.get("status") or "CLOSED").upper(), body.get("qrcode"))

    def check_connection(self) -> bool:
        """check-connection-session: True when a live client exists (it may still be stale: the
        contract says it ignores the page's own answer); always HTTP 200 on the real server."""
        response = self._call("GET", "check-connection-session")
        if response.status_code >= 300:
            raise WhatsAppError("server", f"check-connection-session answered HTTP {response.status_code}",
                                permanent=False)
        return _json(response).get("status") is True

    def close_session(self) -> bool:
        response = self._call("POST", "close-session", json={})
        return response.status_code == 200
