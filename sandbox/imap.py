"""A real IMAP server for tests and the demo: pymap's in-memory ("dict") backend.

`start_imap()` runs the server in a background thread with its own asyncio loop
and returns once it accepts connections. We do not call `pymap.main.run()`: it
installs SIGINT/SIGTERM handlers, which only the main thread may do and which
would steal Ctrl-C from pytest. Mail is added the way a real MTA-less test would
add it: an IMAP APPEND through imapclient (`append()`).

    server = start_imap(users={"shop": "secret"})
    append(server, "shop", "secret", "INBOX", raw_bytes)
    ...
    server.stop()
"""
from __future__ import annotations

import asyncio
import threading
import weakref
from argparse import Namespace
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from imapclient import IMAPClient
from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import DictBackend
from pymap.backend.dict import Identity as DictIdentity
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pymap.user import Passwords, UserMetadata

_START_TIMEOUT_S = 10.0


@dataclass
class ImapServer:
    """A running sandbox IMAP server; `stop()` closes it and joins its thread."""

    host: str
    port: int
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _stopped: asyncio.Event = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    _restart: asyncio.Event = field(repr=False, default=None)
    _restarted: threading.Event = field(repr=False, default_factory=threading.Event)

    def stop(self) -> None:
        """Stop accepting connections, drop open ones and end the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=_START_TIMEOUT_S)

    def restart(self, down_s: float = 1.0) -> None:
        """What a server restart looks like to clients: every connection drops, nothing
        listens for `down_s` seconds, then the same port accepts again. Mail is kept."""
        self._restarted.clear()
        self._loop.call_soon_threadsafe(lambda: (setattr(self, "_down_s", down_s), self._restart.set()))
        if not self._restarted.wait(_START_TIMEOUT_S + down_s):
            raise RuntimeError("sandbox IMAP server did not come back after a restart")

    def __enter__(self) -> "ImapServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _args(host: str, port: int, user: str, password: str) -> Namespace:
    """The argparse namespace pymap's Config.from_args expects (no TLS, no files)."""
    return Namespace(
        host=host, port=port, debug=False, cert=None, key=None, tls=False,
        passlib_cfg=None, proxy_protocol=None, demo_data=False,
        demo_user=user, demo_password=password, inherited_sockets=None,
    )


async def _add_user(backend: DictBackend, name: str, password: str) -> None:
    config = backend.config
    hashed = await Passwords(config).hash_password(password)
    identity = DictIdentity(name, backend.login, None, frozenset())
    await identity.set(UserMetadata(config, name, password=hashed))


async def _serve(host: str, port: int, users: dict[str, str], ready: dict,
                 started: threading.Event) -> None:
    """Run until ready["stopped"] is set; report the bound port through `ready`."""
    try:
        first, *others = users.items()
        # reject_dnsbl=False: the default would look the client up in DNS
        # blocklists; invalid_user_sleep=0: no deliberate delay on bad logins;
        # an asyncio cpu_subsystem hashes passwords inline instead of starting
        # a thread pool that nothing would shut down.
        backend, config = await DictBackend.init(
            _args(host, port, *first), reject_dnsbl=False, invalid_user_sleep=0.0,
            cpu_subsystem=Subsystem.for_executor(None))
        config.apply_context()
        for name, password in others:
            await _add_user(backend, name, password)
        serve = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(backend.login, config))
        writers: weakref.WeakSet = weakref.WeakSet()

        async def callback(reader, writer):
            writers.add(writer)  # so a restart can drop every open connection
            await serve(reader, writer)  # (it hands the connection to a task of its own)

        stopped, restart = asyncio.Event(), asyncio.Event()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            server = await asyncio.start_server(callback, host=host, port=port)
            port = server.sockets[0].getsockname()[1]
            ready.update(port=port, stopped=stopped, restart=restart, loop=asyncio.get_running_loop())
            started.set()
            while True:
                waits = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(restart.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiting in waits:
                    waiting.cancel()
                server.close()
                for writer in list(writers):
                    writer.transport.abort()
                await server.wait_closed()
                if stopped.is_set():
                    break
                restart.clear()
                await asyncio.sleep(ready["server"]._down_s)
                server = await asyncio.start_server(callback, host=host, port=port)
                ready["server"]._restarted.set()
    except BaseException as exc:  # reported to the starting thread, never lost
        ready["error"] = exc
        started.set()
        raise


def start_imap(host: str = "127.0.0.1", port: int = 0,
               users: dict[str, str] | None = None) -> ImapServer:
    """Start an in-memory IMAP server on (host, port); port 0 picks a free one.

    `users` maps login name to password (default {"user": "pass"}). Returns once
    the server listens; raises RuntimeError when it could not start.
    """
    users = dict(users or {"user": "pass"})
    if not users:
        raise ValueError("start_imap needs at least one user")
    ready: dict = {}
    started = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(_serve(host, port, users, ready, started)),
        name="sandbox-imap", daemon=True)
    thread.start()
    if not started.wait(_START_TIMEOUT_S) or "error" in ready:
        raise RuntimeError(f"sandbox IMAP server did not start: {ready.get('error')!r}")
    server = ImapServer(host=host, port=ready["port"], _loop=ready["loop"],
                        _stopped=ready["stopped"], _thread=thread, _restart=ready["restart"])
    ready["server"] = server
    return server


def connect(server: ImapServer, user: str, password: str) -> IMAPClient:
    """A logged-in imapclient connection to `server` (plain TCP, no TLS).

    Raises imapclient.exceptions.LoginError for a wrong user or password.
    """
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    try:
        client.login(user, password)
    except BaseException:
        client.shutdown()  # a refused login must not leak the socket
        raise
    return client


def append(server: ImapServer, user: str, password: str, folder: str,
           raw_bytes: bytes) -> None:
    """Deliver one message into `folder` (created when missing), unseen."""
    client = connect(server, user, password)
    try:
        if folder.upper() != "INBOX" and not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, raw_bytes, flags=())
    finally:
        client.logout()
