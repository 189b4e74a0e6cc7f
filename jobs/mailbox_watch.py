"""The mailbox watcher (`flask --app wsgi mailbox watch`): IMAP IDLE on every enabled mailbox source.

One thread per source holds an IDLE connection; whatever the server says during
IDLE — except flag changes, expunges and keep-alives (_news) — is taken as "something
changed" and enqueues a fetch (jobs.mailbox.request_fetch,
one waiting pass per source however many notifications arrive). Every connect
enqueues a fetch too, so mail that arrived while we were away is read. Any
error — a dropped socket, a BYE — closes the connection and reconnects with
exponential backoff (1 s doubling to 60 s). IDLE responses are read here
(_idle_responses), not with imapclient's idle_check: that one reads from a
non-blocking socket, so a response that reaches us in two TCP segments (pymap
writes `* 3 FETCH ` and then `(FLAGS (\\Seen))`, the FETCH our own \\Seen causes)
came back as "unterminated line" and cost a reconnect on nearly every new mail
(imapclient #519). The watch state counts `connects`. IDLE is re-issued every
`interval_s` (at most 25 min, inside the 29-min limit of RFC 2177); each renewal
is a round trip that proves the server alive and is recorded as the source's
`last_contact_at`, and asks for a fetch too: one that Redis lost (flushed, restarted)
is made good within `interval_s`. While Redis does not answer, the IMAP connection
stays and the fetch is asked for again every second. A server without IDLE is polled every `interval_s` from here.
The Source table is re-read every `rescan_s`: sources added, removed, disabled
or changed are picked up without a restart. Sources with `"idle": false` are left
to rq-scheduler (webapp.domain.sources.sync_schedule).
"""
from __future__ import annotations

import logging
import random
import re
import select
import socket
import ssl
import threading
import time
from typing import Any

from flask import Flask
from imapclient import IMAPClient
from redis.exceptions import RedisError

from jobs.imap_account import MailboxError, close, connect, mailbox_config
from jobs.mailbox import request_fetch
from webapp.domain import sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Source, SourceKind, utcnow

log = logging.getLogger("jobs.mailbox_watch")

IDLE_LIMIT_S = 25 * 60
BACKOFF_MAX_S = 60.0
_CHECK_S = 1.0  # how long one wait for IDLE responses blocks: the latency of noticing `stop`
_LINE_S = 10.0  # the longest wait for the rest of a response line once it has begun


class _Disconnected(Exception):
    """The server closed the connection (BYE or end of stream)."""


def watch(app: Flask, stop: threading.Event, *, rescan_s: float = 30.0, renew_s: float | None = None) -> None:
    """Watch every enabled IDLE mailbox source until `stop` is set; then close every connection."""
    watchers: dict[int, SourceWatcher] = {}
    log.info("mailbox watcher started (re-reading sources every %.0f s)", rescan_s)
    try:
        while not stop.is_set():
            try:
                wanted = _wanted_sources(app)
            except Exception as exc:  # database briefly away: keep what runs, try again
                log.warning("mailbox watcher: cannot read sources: %s", exc)
                wanted = {sid: w.signature for sid, w in watchers.items()}
            for source_id in [s for s in watchers if watchers[s].signature != wanted.get(s)]:
                log.info("mailbox watcher: stopping source %s", watchers[source_id].source_name)
                watchers.pop(source_id).stop()
            for source_id, signature in wanted.items():
                if source_id not in watchers:
                    watchers[source_id] = SourceWatcher(app, source_id, signature, renew_s=renew_s)
                    watchers[source_id].start()
            _beat(app)
            stop.wait(min(rescan_s, 30.0))
    finally:
        for watcher in watchers.values():
            watcher.stop(join=False)
        for watcher in watchers.values():
            watcher.join(timeout=10)
        log.info("mailbox watcher stopped")


def _beat(app: Flask) -> None:
    """The watcher is alive (`flask ops check watcher` reads it; each source's IDLE contact is in its state)."""
    try:
        with app.app_context():
            jobqueue.redis_connection().set(jobqueue.WATCHER_BEAT_KEY, time.time(), ex=600)
    except RedisError as exc:
        log.debug("mailbox watcher: beat not written (%s)", exc)


def _wanted_sources(app: Flask) -> dict[int, tuple]:
    with app.app_context(), db.database.connection_context():
        rows = Source.select().where(Source.kind == SourceKind.MAILBOX, Source.enabled == True)  # noqa: E712
        return {s.id: (s.name, repr(sorted((s.config or {}).items())), s.interval_s) for s in rows
                if (s.config or {}).get("idle", True) is not False}


class SourceWatcher(threading.Thread):
    """One source's IDLE loop (see the module docstring); `stop()` ends it within ~1 s."""

    def __init__(self, app: Flask, source_id: int, signature: tuple, *, renew_s: float | None = None):
        name, _, interval_s = signature
        super().__init__(name=f"mailbox-watch-{name}", daemon=True)
        self.app, self.source_id, self.signature, self.source_name = app, source_id, signature, name
        self.renew_s = renew_s or min(max(interval_s, 10), IDLE_LIMIT_S)
        self.poll_s = max(interval_s, 5)
        self._stop_event = threading.Event()
        self._idling = False
        self._fetch_owed = False  # a fetch Redis could not take yet
        self.connects = 0  # IMAP sessions opened by this watcher (1 + reconnects)

    def stop(self, join: bool = True) -> None:
        self._stop_event.set()
        if join:
            self.join(timeout=10)

    def run(self) -> None:
        delay = 1.0
        while not self._stop_event.is_set():
            began, self._idling = time.monotonic(), False
            try:
                self._session()
            except MailboxError as exc:
                self._record(ok=False, error=str(exc), connected=False)
                if exc.permanent:
                    delay = BACKOFF_MAX_S
            except Exception as exc:  # any abort: reconnect and re-search (imapclient #519)
                self._record(ok=False, error=f"{type(exc).__name__}: {exc}", connected=False)
            if self._stop_event.is_set():
                break
            if self._idling and time.monotonic() - began > 2:
                delay = 0.2  # a good connection dropped (often #519 after our own \Seen): come back at once
            wait = delay * random.uniform(0.8, 1.2)
            log.info("mailbox %s: reconnecting in %.1f s", self.source_name, wait)
            self._stop_event.wait(wait)
            delay = min(max(delay * 2, 1.0), BACKOFF_MAX_S)

    def _session(self) -> None:
        with self.app.app_context():
            with db.database.connection_context():
                config = Source.get_by_id(self.source_id).config or {}
            cfg = mailbox_config(config)
        client = connect(cfg)
        self.connects += 1
        try:
            client.select_folder(cfg.folder, readonly=True)
            idle = client.has_capability("IDLE")
            self._record(ok=True, connected=True, mode="idle" if idle else "poll")
            self._trigger("connected")  # whatever arrived while we were away
            if idle:
                self._idle_loop(client)
            else:
                self._poll_loop(client)
        finally:
            close(client)

    def _idle_loop(self, client: IMAPClient) -> None:
        while not self._stop_event.is_set():
            client.idle()
            self._idling = True
            renew_at = time.monotonic() + self.renew_s
            while not self._stop_event.is_set() and time.monotonic() < renew_at:
                responses = _idle_responses(client, _CHECK_S)
                if self._fetch_owed:
                    self._trigger("retry")
                if responses:
                    if any(line.upper().startswith(b"* BYE") for line in responses):
                        raise _Disconnected("the server said BYE")
                    if _news(responses):
                        self._trigger("idle")
                elif _at_eof(client):
                    raise _Disconnected("the server closed the connection")
            _, responses = client.idle_done()
            self._trigger("idle" if responses else "renew")
            self._record(ok=True, connected=True, mode="idle")

    def _poll_loop(self, client: IMAPClient) -> None:
        while not self._stop_event.wait(self.poll_s):
            client.noop()
            self._trigger("poll")
            self._record(ok=True, connected=True, mode="poll")

    def _trigger(self, why: str) -> None:
        try:
            with self.app.app_context():
                job_id = request_fetch(self.source_id)
        except RedisError as exc:
            # Keep the IMAP connection: the fetch is asked for again every second until Redis answers.
            if not self._fetch_owed:
                log.warning("mailbox %s: %s, but the fetch could not be queued (%s); retrying", self.source_name,
                            why, exc)
            self._fetch_owed = True
            return
        self._fetch_owed = False
        if job_id:  # routine renewals and polls at DEBUG; new mail and reconnects at INFO
            log.log(logging.DEBUG if why in ("renew", "poll", "retry") else logging.INFO,
                    "mailbox %s: %s → fetch %s", self.source_name, why, job_id)

    def _record(self, *, ok: bool, connected: bool, error: str | None = None, mode: str | None = None) -> None:
        now = utcnow()
        watch_state: dict[str, Any] = {"connected": connected, "mode": mode, "at": now.isoformat(),
                                       "connects": self.connects}
        extra = {"last_contact_at": now} if ok else {}
        if not ok:
            log.warning("mailbox %s: %s", self.source_name, error)
        try:
            with self.app.app_context(), db.database.connection_context():
                sources.record_pass(self.source_id, ok=ok, error=error, watch=watch_state, **extra)
        except Exception as exc:  # the watch goes on without its bookkeeping
            log.warning("mailbox %s: cannot record state: %s", self.source_name, exc)


_NOT_NEWS = re.compile(rb"\* (\d+ (FETCH|EXPUNGE)|OK)\b", re.I)


def _news(lines: list[bytes]) -> bool:
    """Whether IDLE responses may mean new mail: anything but flag changes (a FETCH: our own
    \\Seen after a pass), expunges and keep-alive OKs. New mail always comes with EXISTS
    (RFC 3501 7.3.1); a FETCH alone asking for a pass would make one empty pass per mail,
    and a mail arriving meanwhile would wait for it."""
    return any(not _NOT_NEWS.match(line) for line in lines)


def _idle_responses(client: IMAPClient, timeout: float) -> list[bytes]:
    """The untagged lines the server sent during IDLE, waiting at most `timeout` for the first.

    Once something is readable, whole lines are read in blocking mode (a line split over
    TCP segments is waited for, up to _LINE_S), then more while more is already here.
    """
    sock = client.socket()
    if not _buffered(client) and not select.select([sock], [], [], timeout)[0]:
        return []
    lines: list[bytes] = []
    sock.settimeout(_LINE_S)
    try:
        while True:
            try:
                line = client._imap._get_line()  # imaplib: one CRLF-terminated line, or abort
            except IMAPClient.AbortError as exc:
                if "EOF" in str(exc):
                    raise _Disconnected("the server closed the connection") from None
                raise
            lines.append(line)
            if not _buffered(client):
                return lines
    finally:
        client._set_read_timeout()


def _buffered(client: IMAPClient) -> bool:
    """Bytes already received and not yet read: in the reader's buffer, TLS's, or the socket's."""
    sock = client.socket()
    if getattr(sock, "pending", None) and sock.pending():
        return True
    saved = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))  # non-blocking: b"" when nothing is here
    except (BlockingIOError, InterruptedError, ssl.SSLError):
        return False
    except (OSError, ValueError):
        return True  # let the read find out what is wrong
    finally:
        sock.settimeout(saved)


def _at_eof(client: IMAPClient) -> bool:
    """True when the peer closed the socket (idle_check returns [] at end of stream, no error)."""
    sock = client.socket()
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        # Readable yet idle_check read no line: peek (without the socket's timeout wait) for EOF.
        return bool(readable) and socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True
