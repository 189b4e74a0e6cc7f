"""In-memory state of the sandbox WhatsApp server: sessions, messages, faults, acks.

Everything here is plain Python guarded by one lock; `sandbox/whatsapp.py` turns it
into wppconnect-server's HTTP contract (shared/contracts/wppconnect.md).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import bcrypt
import requests

log = logging.getLogger(__name__)

VERSION = "2.10.4"
INITIALIZING, QRCODE, CONNECTED, CLOSED = "INITIALIZING", "QRCODE", "CONNECTED", "CLOSED"
STATES = (INITIALIZING, QRCODE, "PHONECODE", CONNECTED, CLOSED)
SEND_FAULTS = ("error", "timeout", "reset", "hang", "disconnect", "ack_failed", "slow", "stale")
HISTORY_FAULTS = ("history_error", "history_timeout")  # get-messages
FAULT_KINDS = SEND_FAULTS + HISTORY_FAULTS
# A valid 1x1 PNG: the sandbox has no QR library, and clients only display the bytes.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

_SEPARATORS = re.compile(r"\s*[,;]\s*")
_NOT_WORD = re.compile(r"[^A-Za-z0-9_ ]")  # JS /[^\w ]/ without the u flag
_ON_WHATSAPP = re.compile(r"[1-9][0-9]{7,14}")  # full international form, no leading 0


class Refusal(Exception):
    """An HTTP answer decided before the work is done: `status` and JSON `body`."""

    def __init__(self, status: int, body: Any):
        super().__init__(status, body)
        self.status, self.body = status, body


DISCONNECTED = {"response": None, "status": "Disconnected",
                "message": "A sessão do WhatsApp não está ativa."}
SEND_ERROR = {"status": "Error", "message": "Erro ao enviar a mensagem.", "error": {}}


def contact_ids(phone: Any, *, is_group: bool = False, is_newsletter: bool = False,
                is_lid: bool = False) -> list[str]:
    """wppconnect's `contactToArray`: a string or list of strings -> WhatsApp ids.

    Strings split on , and ; ; each piece loses everything from '@' and every char
    but [A-Za-z0-9_ ] (spaces stay, so "256 772 123456" later fails the lookup).
    Raises TypeError for any other type, as `.split` throws in the real server.
    """
    if isinstance(phone, str):
        pieces = _SEPARATORS.split(phone)
    elif isinstance(phone, list):
        pieces = phone
    else:
        raise TypeError(f"phone.split is not a function ({type(phone).__name__})")
    ids = []
    for piece in pieces:
        if not isinstance(piece, str):
            raise TypeError(f"contact.split is not a function ({type(piece).__name__})")
        user = piece.split("@", 1)[0]
        if not (is_group or is_newsletter):
            user = _NOT_WORD.sub("", user)
        if user:
            ids.append(user + _suffix(user, is_group, is_newsletter, is_lid))
    return ids


def _suffix(user: str, is_group: bool, is_newsletter: bool, is_lid: bool) -> str:
    if is_group:
        return "@g.us"
    if is_newsletter:
        return "@newsletter"
    # Long ids are taken for LIDs, as the real server does.
    return "@lid" if is_lid or len(user) > 14 else "@c.us"


@dataclass
class Session:
    name: str
    status: str | None = None  # None: no entry (never started, or dropped)
    since: float = 0.0  # when `status` began, on the `now` clock
    held: bool = False  # forced by a control endpoint: no automatic progress
    linked: bool = False  # phone linked: a restart needs no QR scan
    webhook: str | None = None
    urlcode: str = ""


@dataclass
class Message:
    session: str
    to: str  # the chat: the other party's id, whichever way the message went
    body: str
    own: str
    ack: int
    id: str = ""
    t: float = field(default_factory=time.time)
    webhook: str | None = None
    from_me: bool = True  # False: the other party wrote it
    via_api: bool = True  # False: written outside the API (POST /_sandbox/chat-message)

    def wire(self) -> dict:
        """The serialized wppconnect Message (the fields worth using, plus a few)."""
        t = int(self.t)
        sender, receiver = (self.own, self.to) if self.from_me else (self.to, self.own)
        return {"id": self.id, "ack": self.ack, "body": self.body, "content": self.body,
                "type": "chat", "t": t, "timestamp": t, "from": sender, "to": receiver,
                "fromMe": self.from_me, "chatId": self.to, "isGroupMsg": self.to.endswith("@g.us"),
                "isMedia": False, "isNotification": False, "quotedMsgId": None}

    def record(self) -> dict:
        """The row `GET /_sandbox/messages` lists."""
        return {"session": self.session, "phone": self.to.split("@", 1)[0], "to": self.to,
                "body": self.body, "id": self.id, "ack": self.ack, "failed": self.ack < 0,
                "time": self.t}


@dataclass
class Fault:
    kind: str
    count: int | None = None  # sends left; None: until reset
    seconds: float = 0.0
    session: str | None = None  # None: every session

    def as_dict(self) -> dict:
        return {"kind": self.kind, "count": self.count, "seconds": self.seconds,
                "session": self.session}


class AckClock:
    """Calls `deliver(item)` after a delay, from one background thread.

    The thread starts on the first `schedule` and exits when nothing is pending,
    so an idle sandbox (or a finished test) leaves no thread behind.
    """

    def __init__(self, deliver: Callable[[Any], None]):
        self._deliver = deliver
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, item: Any) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), item))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-acks",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._heap:
                    self._thread = None
                    return
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                item = heapq.heappop(self._heap)[2]
            self._deliver(item)  # outside the lock: it may POST a webhook


class SandboxState:
    """All the sandbox's state. Every public method takes the lock itself."""

    def __init__(self, secret_key: str, *, auto_pair: bool, step_seconds: float,
                 now: Callable[[], float], qr_timeout: float | None,
                 ack_delays: tuple[float, float] | None, own_number: str,
                 logout_seconds: float):
        self.secret_key, self.auto_pair, self.step = secret_key, auto_pair, step_seconds
        self.now, self.qr_timeout, self.ack_delays = now, qr_timeout, ack_delays
        self.own = f"{own_number}@c.us"
        self.logout_seconds = logout_seconds
        self.lock = threading.RLock()
        self.acks = AckClock(self._deliver_ack)
        self._good_tokens: set[tuple[str, str]] = set()
        self.reset()

    def reset(self) -> None:
        """Forget sessions, messages, unknown numbers, faults and pending acks."""
        with self.lock:
            self.sessions: dict[str, Session] = {}
            self.messages: list[Message] = []
            self.by_id: dict[str, Message] = {}
            self.not_on_whatsapp: set[str] = set()
            self.faults: list[Fault] = []
        self.acks.clear()

    # -- tokens ------------------------------------------------------------------
    def new_token(self, name: str) -> str:
        """bcrypt (cost 10) of name+secret with '/'->'_' and '+'->'-'."""
        hashed = bcrypt.hashpw((name + self.secret_key).encode(), bcrypt.gensalt(10))
        return hashed.decode().replace("/", "_").replace("+", "-")

    def token_ok(self, name: str, token: str) -> bool:
        """The server's check; good pairs are cached since tokens never expire."""
        token = token.replace("_", "/").replace("-", "+")
        with self.lock:
            if (name, token) in self._good_tokens:
                return True
        try:
            ok = bcrypt.checkpw((name + self.secret_key).encode(), token.encode())
        except ValueError:  # not a bcrypt hash at all
            return False
        if ok:
            with self.lock:
                self._good_tokens.add((name, token))
        return ok

    # -- sessions ----------------------------------------------------------------
    def session(self, name: str) -> Session:
        """The session `name` (created empty), moved on to where time has brought it."""
        with self.lock:
            s = self.sessions.setdefault(name, Session(name))
            self._advance(s)
            return s

    def _advance(self, s: Session) -> None:
        if s.held:
            return
        t = self.now()
        if s.status == INITIALIZING and t - s.since >= self.step:
            s.since += self.step
            # A linked phone reconnects straight away, as after a server restart.
            s.status = CONNECTED if s.linked else QRCODE
        if s.status == QRCODE and self.auto_pair and t - s.since >= self.step:
            s.status, s.linked, s.since = CONNECTED, True, s.since + self.step
        elif s.status == QRCODE and self.qr_timeout is not None \
                and t - s.since >= self.qr_timeout:
            s.status = None  # the library's autoClose drops the entry

    def snapshot(self, name: str) -> dict:
        """status-session's body for `name`."""
        with self.lock:
            s = self.session(name)
            if s.status in (None, CLOSED):
                return {"status": CLOSED, "qrcode": None}
            body: dict = {"status": s.status, "qrcode": None}
            if s.status == QRCODE:
                body["qrcode"] = "data:image/png;base64," + PNG_B64
                body["urlcode"] = s.urlcode
            body["version"] = VERSION
            return body

    def start(self, name: str, webhook: str | None) -> dict:
        """Start `name` unless it runs; returns the state *before* the start."""
        with self.lock:
            before = self.snapshot(name)
            s = self.session(name)
            if s.status in (None, CLOSED):
                s.status, s.since, s.held = INITIALIZING, self.now(), False
                s.webhook = webhook if isinstance(webhook, str) and webhook else None
                s.urlcode = f"2@{secrets.token_urlsafe(48)},{secrets.token_urlsafe(32)}"
            return before

    def force(self, name: str, status: str | None) -> None:
        """Put `name` in `status` (None drops the entry) and hold it there."""
        with self.lock:
            s = self.session(name)
            s.status, s.since, s.held = status, self.now(), True
            if status == CONNECTED:
                s.linked = True

    def scan(self, name: str) -> bool:
        """Pair a session showing its QR code; False when there is no QR to scan."""
        with self.lock:
            s = self.session(name)
            if s.status != QRCODE:
                return False
            s.status, s.since, s.held, s.linked = CONNECTED, self.now(), False, True
            return True

    def close(self, name: str) -> bool:
        """close-session: reset the entry; True only if a live client was closed."""
        with self.lock:
            s = self.session(name)
            if s.status is None:
                return False
            was = s.status
            s.status, s.held = CLOSED, False
            # INITIALIZING/QRCODE have no browser client to close yet: 500 anyway.
            return was in (CONNECTED, CLOSED)

    def drop(self, name: str, *, unlink: bool) -> None:
        """Drop the entry (phone disconnected, logout); `unlink` forgets the pairing."""
        with self.lock:
            s = self.session(name)
            s.status, s.held = None, False
            s.linked = s.linked and not unlink

    def require_connected(self, name: str) -> Session:
        """The statusConnection gate's first half: 404 Disconnected unless CONNECTED."""
        s = self.session(name)
        if s.status != CONNECTED:
            raise Refusal(404, DISCONNECTED)
        return s

    # -- numbers, faults, messages ---------------------------------------------
    def exists(self, wid: str) -> bool:
        """checkNumberStatus: full international digits that were not marked unknown."""
        user = wid.split("@", 1)[0]
        with self.lock:
            return bool(_ON_WHATSAPP.fullmatch(user)) and user not in self.not_on_whatsapp

    def mark_unknown(self, phones: list[str]) -> list[str]:
        with self.lock:
            self.not_on_whatsapp.update(re.sub(r"\D", "", str(p)) for p in phones)
            return sorted(self.not_on_whatsapp)

    def add_fault(self, fault: Fault) -> list[dict]:
        with self.lock:
            self.faults.append(fault)
            return [f.as_dict() for f in self.faults]

    def take_fault(self, name: str, kinds: tuple[str, ...]) -> Fault | None:
        """The first fault of one of `kinds` for `name`, counting one call against it."""
        with self.lock:
            for fault in self.faults:
                if fault.session in (None, name) and fault.kind in kinds:
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self.faults.remove(fault)
                    return fault
            return None

    def send(self, name: str, wid: str, body: str, *, failed: bool) -> Message:
        """Record one accepted message (ack 1, or -1 when `failed`); acks follow."""
        with self.lock:
            msg = Message(name, wid, body, self.own, -1 if failed else 1,
                          webhook=self.sessions[name].webhook)
            msg.id = f"true_{wid}_3EB0{secrets.token_hex(8).upper()}"
            self.messages.append(msg)
            self.by_id[msg.id] = msg
        if not failed and self.ack_delays:
            first, second = self.ack_delays
            self.acks.schedule(first, (msg.id, 2))
            self.acks.schedule(first + second, (msg.id, 3))
        return msg

    def add_to_chat(self, name: str, wid: str, body: str, *, from_me: bool, age: float) -> Message:
        """A message written outside the API into the chat with `wid`, `age` seconds ago:
        by the other party, or (`from_me`) typed on our phone. Kept in time order."""
        with self.lock:
            msg = Message(name, wid, body, self.own, 1, t=time.time() - age,
                          from_me=from_me, via_api=False)
            msg.id = f"{'true' if from_me else 'false'}_{wid}_3EB0{secrets.token_hex(8).upper()}"
            at = len(self.messages)
            while at and self.messages[at - 1].t > msg.t:
                at -= 1
            self.messages.insert(at, msg)
            self.by_id[msg.id] = msg
            return msg

    def chat(self, name: str, wid: str) -> list[Message] | None:
        """Every message of the session's chat with `wid`, oldest first; None: no such chat."""
        with self.lock:
            found = [m for m in self.messages if m.session == name and m.to == wid]
            return found or None

    def message(self, name: str, msg_id: str) -> Message | None:
        with self.lock:
            msg = self.by_id.get(msg_id)
            return msg if msg is not None and msg.session == name else None

    def records(self, phone: str | None = None, session: str | None = None) -> list[dict]:
        with self.lock:
            return [m.record() for m in self.messages
                    if m.via_api and (phone is None or m.to.split("@", 1)[0] == phone)
                    and (session is None or m.session == session)]

    def _deliver_ack(self, item: tuple[str, int]) -> None:
        msg_id, ack = item
        with self.lock:
            msg = self.by_id.get(msg_id)
            if msg is None or msg.ack < 0 or msg.ack >= ack:
                return
            msg.ack = ack
            payload = {"event": "onack", "session": msg.session,
                       **msg.wire(), "id": _id_object(msg.id, msg.to)}
            webhook = msg.webhook
        if webhook:
            _post_webhook(webhook, payload)


def _id_object(msg_id: str, to: str) -> dict:
    return {"fromMe": True, "remote": to, "id": msg_id.rsplit("_", 1)[-1],
            "_serialized": msg_id}


def _post_webhook(url: str, payload: dict) -> None:
    # The real server logs failed webhook calls and never retries them.
    try:
        requests.post(url, json=payload, timeout=5).raise_for_status()
    except requests.RequestException as exc:
        log.warning("webhook %s for %s failed: %s", payload["event"], payload["id"], exc)
