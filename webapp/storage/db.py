"""The database handle: one DatabaseProxy, initialised from DATABASE_URL.

Connections open and close only at the edges: the web request hooks (below) and
the job decorator in jobs/__init__.py. Domain code never opens one.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Callable, TypeVar

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse as parse_url

from webapp.config import ROOT, Settings
from webapp.storage import checkpoints

database = DatabaseProxy()
T = TypeVar("T")

SQLITE_PRAGMAS = {
    "journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000, "synchronous": "normal",
    # Page cache and memory map sized for a large ledger (cache_size in KiB when negative).
    "cache_size": -65536, "mmap_size": 268435456,
    # Checkpoint the WAL every 10,000 pages (~40 MB) instead of SQLite's 1,000: a payment rewrites
    # ~19 pages, many of them the same hot index pages, which a longer WAL copies back once per
    # checkpoint instead of ten times (bench/match.py at 100k open requests, three alternating
    # pairs: +6 % batched, +17 % one per transaction). A checkpoint then takes ~50 ms instead of
    # ~8 ms, ten times less often. The WAL file is cut back to 64 MB after a checkpoint past it.
    # Each process also checkpoints every 0.25 s on a thread of its own (storage/checkpoints.py),
    # so a commit rarely gets there: this is the bound should that thread fall behind.
    "wal_autocheckpoint": 10000, "journal_size_limit": 67108864,
}
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_database(url: str) -> Database:
    """A peewee Database for `url` (sqlite:///PATH relative to the project, or postgresql://…)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not path.is_absolute():
            path = ROOT / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, timeout=5)
    params = parse_url(url.replace("postgres://", "postgresql://", 1))
    return PostgresqlDatabase(**params)


def init_db(settings: Settings) -> Database:
    """Point the proxy at the configured database and return it (no connection opened)."""
    db = make_database(settings.database_url)
    db.prepare_statements = settings.pg_prepare  # read by sqlcache (PostgreSQL only)
    database.initialize(db)
    checkpoints.follow(db.database if isinstance(db, SqliteDatabase) else None)
    return db


def upgrade(db: Database | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    from playhouse.migrations import Runner

    target = db or database.obj
    with target.connection_context():
        applied = Runner(target, str(MIGRATIONS)).up()
        if applied:
            refresh_statistics(db=target)
        return applied


def register_request_hooks(app) -> None:
    """A connection per web request, closed when the request ends."""

    @app.before_request
    def _open_connection() -> None:
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close_connection(exc) -> None:
        if not database.is_closed():
            database.close()


_local = threading.local()


@contextmanager
def transaction():
    """One database transaction; callbacks from after_commit() run once the outermost commits.

    Nested uses become savepoints. If a block raises, the callbacks it registered are
    dropped (a savepoint rolled back takes its callbacks along), and so are the rows it
    handed to buffered() and what it remembered with memo().
    """
    stack = getattr(_local, "stack", None)
    outermost = stack is None
    if outermost:
        _local.stack = stack = []
        _local.buffers, _local.memo = {}, {}
    mark = len(stack)
    buffers = _local.buffers
    marks = {key: len(rows) for key, (_, rows) in buffers.items()}
    try:
        # SQLite: take the write lock at BEGIN, so two writers queue instead of one
        # failing when it upgrades its read lock (SQLITE_BUSY mid-transaction).
        immediate = outermost and isinstance(database.obj, SqliteDatabase)
        with database.atomic("IMMEDIATE") if immediate else database.atomic():
            yield
            if outermost:
                _flush_buffers()
    except BaseException:
        if outermost:
            _local.stack = _local.buffers = _local.memo = None
        else:
            del stack[mark:]  # a rolled-back savepoint's callbacks go with it
            for key in list(buffers):
                if key in marks:
                    del buffers[key][1][marks[key]:]
                else:
                    del buffers[key]
            _local.memo.clear()  # it may remember rows the savepoint wrote
        raise
    if outermost:
        _local.stack = _local.buffers = _local.memo = None
        started = perf_counter()
        _run_callbacks(stack)
        if stack:
            for spent in _timings:
                _spend(spent, "after commit", perf_counter() - started)


def _run_callbacks(stack: list) -> None:
    """Each callback in order; those registered with one `batch` function go to it together,
    at the place of the first (so a transaction's jobs reach Redis in one round trip)."""
    batches: dict[Callable, list] = {}
    order = []
    for callback, batch in stack:
        if batch is None:
            order.append((callback, None))
        elif batch not in batches:
            batches[batch] = [callback]
            order.append((None, batch))
        else:
            batches[batch].append(callback)
    for callback, batch in order:
        if batch is None:
            callback()
        else:
            batch(batches[batch])


def in_transaction() -> bool:
    """True inside transaction() (callbacks then wait for the outermost commit)."""
    return getattr(_local, "stack", None) is not None


def after_commit(callback: Callable[[], T], *, batch: Callable[[list], None] | None = None) -> T | None:
    """Run `callback` now when outside transaction(), else after the outermost commit.

    With `batch`, the callbacks of one transaction registered with that same function are
    handed to it as one list after the commit, instead of being called one by one (outside
    a transaction `callback` is called alone, as ever)."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        return callback()
    stack.append((callback, batch))
    return None


def defer_foreign_keys() -> None:
    """For the rest of the current transaction, check foreign keys at its COMMIT instead of at
    each statement, so that it may write a row's dependants before the row (ingest_payments
    writes a batch's payments in one INSERT at its end, after their candidates and messages).
    A key still dangling at the COMMIT fails it, as it would have failed the statement. SQLite:
    every foreign key (PRAGMA defer_foreign_keys, which ends with the transaction); PostgreSQL:
    those declared DEFERRABLE (migration 0102: every one that references a payment)."""
    if isinstance(database.obj, SqliteDatabase):
        database.execute_sql("PRAGMA defer_foreign_keys = ON")
    elif isinstance(database.obj, PostgresqlDatabase):
        database.execute_sql("SET CONSTRAINTS ALL DEFERRED")


@contextmanager
def count_queries():
    """Count the SQL statements the current database runs inside the block: `with count_queries() as n: …; n[0]`.

    For the N+1 guard test and bench/pages.py; it wraps execute_sql on the database object
    for the block only (every query of peewee goes through it).
    """
    counter = [0]
    with _watching(lambda sql: counter.__setitem__(0, counter[0] + 1)):
        yield counter


@contextmanager
def recorded_queries():
    """The text of each SQL statement the current database runs inside the block, in order (a list
    filled as they run): for tests that check what a page reads, as count_queries() counts it."""
    statements: list[str] = []
    with _watching(statements.append):
        yield statements


@contextmanager
def _watching(seen: Callable[[str], None]):
    """Call seen(sql) for each statement run inside the block (blocks nest)."""

    def wrap(original):
        def watched(sql, params=None, *args, **kwargs):
            seen(sql)
            return original(sql, params, *args, **kwargs)
        return watched

    with _wrapping("execute_sql", wrap):
        yield


@contextmanager
def _wrapping(name: str, wrap: Callable):
    """The current database object's method `name` replaced by wrap(method) for the block only
    (every query of peewee goes through execute_sql, every COMMIT of a transaction through commit)."""
    target = database.obj
    shadowed = name in vars(target)  # already wrapped by an outer block
    original = getattr(target, name)
    setattr(target, name, wrap(original))
    try:
        yield
    finally:
        if shadowed:
            setattr(target, name, original)
        else:
            delattr(target, name)  # back to the class's method


_timings: list[dict[str, list]] = []  # the timed() blocks running now


@contextmanager
def timed():
    """Where a block's database time goes: yields {label: [count, seconds]}, one label per
    statement text (its execute and the fetching of its rows), "COMMIT" for the commits of
    transactions and "after commit" for the callbacks run after them (the jobs a transaction put
    on Redis). What is left of the block's wall time is this process's own work. For
    bench/match.py --breakdown; like count_queries(), it wraps the database object for the block."""
    spent: dict[str, list] = {}

    def wrap_execute(original):
        def execute_sql(sql, params=None, *args, **kwargs):
            started = perf_counter()
            cursor = original(sql, params, *args, **kwargs)
            return _TimedCursor(cursor, _spend(spent, sql, perf_counter() - started))
        return execute_sql

    def wrap_commit(original):
        def commit(*args, **kwargs):
            started = perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                _spend(spent, "COMMIT", perf_counter() - started)
        return commit

    _timings.append(spent)
    try:
        with _wrapping("execute_sql", wrap_execute), _wrapping("commit", wrap_commit):
            yield spent
    finally:
        _timings.remove(spent)


def _spend(spent: dict[str, list], label: str, seconds: float) -> list:
    entry = spent.get(label)
    if entry is None:
        entry = spent[label] = [0, 0.0]
    entry[0] += 1
    entry[1] += seconds
    return entry


class _TimedCursor:
    """A cursor whose fetches add to its statement's time (timed())."""

    def __init__(self, cursor, entry: list):
        self._cursor, self._entry = cursor, entry

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def _fetch(self, how, *args):
        started = perf_counter()
        try:
            return how(*args)
        finally:
            self._entry[1] += perf_counter() - started

    def fetchone(self):
        return self._fetch(self._cursor.fetchone)

    def fetchmany(self, *args):
        return self._fetch(self._cursor.fetchmany, *args)

    def fetchall(self):
        return self._fetch(self._cursor.fetchall)

    def __iter__(self):
        while (row := self.fetchone()) is not None:
            yield row


def buffered(key: str, write: Callable[[list], None], row) -> None:
    """Hand `row` to `write` (which stores many rows in one statement): now when outside
    transaction(), else together with every row buffered under `key`, just before the
    outermost commit (in the transaction, so they commit or roll back with it).

    Only for rows nothing reads back inside the transaction (the audit log)."""
    if not in_transaction():
        write([row])
        return
    _local.buffers.setdefault(key, (write, []))[1].append(row)


def _flush_buffers() -> None:
    buffers = _local.buffers
    while buffers:
        key = next(iter(buffers))
        write, rows = buffers.pop(key)
        if rows:
            write(rows)


def memo(key, compute: Callable[[], T]) -> T:
    """compute() once per outermost transaction (every call outside one computes): for rows a
    transaction reads many times and never changes itself, such as the webhook endpoints."""
    cache = getattr(_local, "memo", None)
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


BULK_ROWS = 1000  # a load of at least this many rows refreshes the statistics of its tables


def refresh_statistics(*models, db: Database | None = None) -> None:
    """Fresh planner statistics after a bulk load (migrations, imports, bench seeding):
    ANALYZE on PostgreSQL (until autovacuum gets to it, a freshly loaded table has none and
    the planner may walk the wrong index), PRAGMA optimize on SQLite. With `models`, only
    their tables (PostgreSQL); without, every table."""
    target = db or database.obj
    if isinstance(target, SqliteDatabase):
        target.execute_sql("PRAGMA optimize")
    elif models:
        for model in models:
            target.execute_sql(f'ANALYZE "{model._meta.table_name}"')
    else:
        target.execute_sql("ANALYZE")
