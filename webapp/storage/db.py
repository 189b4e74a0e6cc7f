"""The database handle: one DatabaseProxy, initialised from DATABASE_URL.

Connections open and close only at the edges: the web request hooks (below) and
the job decorator in jobs/__init__.py. Domain code never opens one.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, TypeVar

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse as parse_url

from webapp.config import ROOT, Settings

database = DatabaseProxy()
T = TypeVar("T")

SQLITE_PRAGMAS = {
    "journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000, "synchronous": "normal",
    # Page cache and memory map sized for a large ledger (cache_size in KiB when negative).
    "cache_size": -65536, "mmap_size": 268435456,
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
    database.initialize(db)
    return db


def upgrade(db: Database | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    from playhouse.migrations import Runner

    target = db or database.obj
    with target.connection_context():
        return Runner(target, str(MIGRATIONS)).up()


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
    dropped (a savepoint rolled back takes its callbacks along).
    """
    stack = getattr(_local, "stack", None)
    outermost = stack is None
    if outermost:
        _local.stack = stack = []
    mark = len(stack)
    try:
        # SQLite: take the write lock at BEGIN, so two writers queue instead of one
        # failing when it upgrades its read lock (SQLITE_BUSY mid-transaction).
        immediate = outermost and isinstance(database.obj, SqliteDatabase)
        with database.atomic("IMMEDIATE") if immediate else database.atomic():
            yield
    except BaseException:
        if outermost:
            _local.stack = None
        else:
            del stack[mark:]  # a rolled-back savepoint's callbacks go with it
        raise
    if outermost:
        _local.stack = None
        for callback in stack:
            callback()


def in_transaction() -> bool:
    """True inside transaction() (callbacks then wait for the outermost commit)."""
    return getattr(_local, "stack", None) is not None


def after_commit(callback: Callable[[], T]) -> T | None:
    """Run `callback` now when outside transaction(), else after the outermost commit."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        return callback()
    stack.append(callback)
    return None


@contextmanager
def count_queries():
    """Count the SQL statements the current database runs inside the block: `with count_queries() as n: …; n[0]`.

    For the N+1 guard test and bench/pages.py; it wraps execute_sql on the database object
    for the block only (every query of peewee goes through it).
    """
    target = database.obj
    counter = [0]
    shadowed = "execute_sql" in vars(target)  # already wrapped by an outer count
    original = target.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        counter[0] += 1
        return original(sql, params, *args, **kwargs)

    target.execute_sql = counting
    try:
        yield counter
    finally:
        if shadowed:
            target.execute_sql = original
        else:
            del target.execute_sql  # back to the class's method
