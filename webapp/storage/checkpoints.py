"""SQLite's WAL checkpoints on a thread of their own, not in the transaction that commits.

In WAL mode SQLite copies the log back into the database file (a checkpoint) from inside
the COMMIT that takes the log past `wal_autocheckpoint` pages: that commit waits for it,
and the wait grows with the database (at 1M open requests a batch of 100 payments spent
0.42 ms a payment in COMMIT against 0.09 at 10k, bench/match.py --breakdown). Here a
daemon thread of each process runs `PRAGMA wal_checkpoint(PASSIVE)` every INTERVAL
seconds on a connection of its own: it copies what is committed without waiting for
readers or writers, and Python's sqlite3 lets go of the GIL while it runs, so on a
second core it costs the committing thread nothing. `wal_autocheckpoint` stays set
(db.SQLITE_PRAGMAS): should this thread fall behind or stop, a commit checkpoints as
before, so the log grows no longer than it did without it. Several processes each running one is safe:
one checkpoint runs at a time and the others return at once (SQLITE_BUSY, no wait).

PostgreSQL needs none of this (its checkpointer is a server process).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

from webapp.storage import sqlite_uri

log = logging.getLogger(__name__)

INTERVAL = 0.25  # seconds between checkpoints: ~1,000 log pages at full ingest speed
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

# A fork while the thread is inside SQLite would give the child SQLite's internal mutexes held
# by a thread the child does not have (rq forks its scheduler; bench/match.py --processes forks
# ingesters): the thread holds _inside while it is in SQLite, and a fork waits for it.
_inside = threading.Lock()
os.register_at_fork(before=_inside.acquire, after_in_parent=_inside.release, after_in_child=_inside.release)


class Checkpointer:
    """A daemon thread checkpointing the SQLite database at `path` until stop()."""

    def __init__(self, path: str, interval: float = INTERVAL):
        self.path = path
        self.interval = interval
        self.runs = 0  # checkpoints run (not counting those another connection was running)
        self.last: tuple[int, int] | None = None  # the last run's (pages in the log, pages copied back)
        self.last_error: str | None = None
        self._connection: sqlite3.Connection | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sqlite-checkpoints:{Path(path).name}",
                                        daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def turn(self) -> None:
        """One checkpoint, what the thread does every `interval`: open the connection once the file is
        there, copy the log back. A lock another connection holds skips the turn; another error is
        logged (once while it lasts) and the connection opened again next turn."""
        try:
            if self._connection is None:
                if not Path(self.path).exists():
                    return  # not created yet (the first connection creates it)
                with _inside:
                    self._connection = self._connect()
            with _inside:
                self._checkpoint(self._connection)
            self.last_error = None
        except sqlite3.Error as error:  # e.g. the file is gone, or not a database yet
            if getattr(error, "sqlite_errorcode", None) in _BUSY:
                return  # a writer or another checkpoint holds a lock it needs: next turn
            if str(error) != self.last_error:
                log.warning("SQLite checkpoint of %s failed: %s", self.path, error)
            self.last_error = str(error)
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            with _inside:
                self._connection.close()
            self._connection = None

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.turn()
        finally:
            self.close()

    def _connect(self) -> sqlite3.Connection:
        # mode=rw: never create a database that is not there; autocommit: never hold a snapshot.
        connection = sqlite3.connect(sqlite_uri(self.path, "rw"), uri=True, isolation_level=None,
                                     check_same_thread=False, timeout=0)
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        busy, log_pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy:
            return  # another connection is checkpointing: it does the work
        self.runs += 1
        self.last = (log_pages, copied)  # (-1, -1) when the database is not in WAL mode


_current: Checkpointer | None = None
_lock = threading.Lock()


def follow(path: str | None) -> Checkpointer | None:
    """Checkpoint the SQLite database at `path` from now on (None: none, e.g. PostgreSQL),
    stopping the thread that checkpointed another one. One thread per process."""
    global _current
    with _lock:
        if _current is not None and _current.path == path and _current.alive:
            return _current
        if _current is not None:
            _current.stop()
            _current = None
        if path and path != ":memory:":
            _current = Checkpointer(path).start()
        return _current


def current() -> Checkpointer | None:
    return _current
