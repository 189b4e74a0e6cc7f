"""Statements whose answer nobody waits for, run by PostgreSQL while this thread goes on.

A batch of payments (ledger.ingest_payments) writes rows it has already decided — a new
payment, its candidates, the requests it moves to review, the audit events — and reads
nothing back from those statements. On PostgreSQL each of them still costs a round trip and
the server's work on its indexes, during which this process waits. Inside sending(), such a
statement goes to a writer thread instead (sqlcache's `wait=False`): the thread sends all that
has piled up as one string (psycopg2 fills in the parameters on the client, so one round trip
carries many statements) while this thread matches the next payment, and the server uses the
other core. bench/overlap.py measures what that gives in CPython: a writer that sends one
statement at a time gains little (it waits for the GIL after each answer), one that sends what
has piled up gains nearly all.

Nothing else changes: every statement runs on the same connection, in the transaction, in the
order it was issued. Any statement that does need its answer (anything peewee runs, a COMMIT)
first waits until the writer has run everything before it (the database object below calls
settle()). The one difference is when an error is seen: a statement sent ahead that fails
(a duplicate key, say) raises Failed at the next statement that waits, or at the COMMIT — not
at the line that sent it. Failed is no DatabaseError, so no handler on the way mistakes it for
its own statement's error; the batch catches it and its cause (sending() is for whole units of
work that roll back together). SQLite runs in this process (nothing to overlap): sending() does
nothing there and `wait=False` statements run at once.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from peewee import PostgresqlDatabase, __exception_wrapper__

_local = threading.local()


class Failed(Exception):
    """A statement sent ahead failed; `error` is what the database raised (as peewee raises it)."""

    def __init__(self, error: Exception):
        super().__init__(f"a statement sent ahead failed: {error}")
        self.error = error


class _Writer:
    """The writer thread of one sending() block, and what waits for it."""

    def __init__(self, database: PostgresqlDatabase):
        self.connection = database.connection()
        self.pending: list[tuple[str, list]] = []
        self.busy = False
        self.closed = False
        self.error: Exception | None = None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self.thread.start()

    def send(self, sql: str, params: list) -> None:
        with self.changed:
            if self.error is None:  # after a failure the transaction is lost: nothing more runs
                self.pending.append((sql, params))
                self.changed.notify()

    def _run(self) -> None:
        cursor = self.connection.cursor()
        with self.changed:
            while True:
                while not self.pending and not self.closed:
                    self.changed.wait()
                if not self.pending:
                    return
                chunk, self.pending = self.pending, []
                self.busy = True
                self.changed.release()
                failed = None
                try:
                    # Filled in here, by the one thread using the connection now (libpq's rule:
                    # escaping a string reads the connection's settings).
                    with __exception_wrapper__:  # the driver's errors as peewee's (IntegrityError …)
                        cursor.execute(b";\n".join(cursor.mogrify(sql, params) for sql, params in chunk))
                except Exception as error:  # kept for the thread that waits; the transaction is lost
                    failed = error
                finally:
                    self.changed.acquire()
                self.busy = False
                if failed is not None and self.error is None:
                    self.error = failed
                    self.pending.clear()
                self.changed.notify_all()

    def settle(self) -> None:
        """Wait until everything sent has run; raise Failed (once) if any of it failed."""
        with self.changed:
            while self.pending or self.busy:
                self.changed.wait()
            error, self.error = self.error, None
        if error is not None:
            raise Failed(error) from error

    def discard(self) -> None:
        """Drop what has not run yet and any failure (the transaction is being rolled back)."""
        with self.changed:
            self.pending.clear()
            while self.busy:
                self.changed.wait()
            self.error = None

    def stop(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.thread.join()


def current() -> _Writer | None:
    """This thread's writer inside sending(), else None."""
    return getattr(_local, "writer", None)


def settle() -> None:
    """Wait for this thread's statements sent ahead (nothing outside sending()); raises Failed."""
    writer = getattr(_local, "writer", None)
    if writer is not None:
        writer.settle()


def discard() -> None:
    writer = getattr(_local, "writer", None)
    if writer is not None:
        writer.discard()


@contextmanager
def sending(database):
    """Statements sent with sqlcache's `wait=False` inside the block run on a writer thread
    (PostgreSQL; elsewhere, or when a block is already open on this thread, nothing changes).
    Leaving the block waits for them (raising Failed if one failed); open the block outside
    the transaction it serves, so that its COMMIT or ROLLBACK settles or discards them.
    `database` must be a db.Postgres (it waits for them before each statement that waits)."""
    if not hasattr(database, "send_ahead") or current() is not None:
        yield
        return
    writer = _Writer(database)
    _local.writer = writer
    try:
        yield
        writer.settle()
    finally:
        _local.writer = None
        writer.discard()
        writer.stop()
