"""Connections to a business's own billing database (MySQL/MariaDB via PyMySQL, PostgreSQL via psycopg2).

One persistent connection per URL per process at most (hotspot hosts cap connections
per hour): connection(url) hands back the one this process holds, checks it is alive,
and opens a new one only when it is gone — after a failure not before a back-off
(0.5 s doubling to 60 s), so a database that is down is not hammered. Both drivers take
`%s` placeholders; identifiers are quoted per dialect (quote()). MySQL sessions read
committed data (READ COMMITTED), so a compare-and-set that lost can look again.
"""
from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 60.0
CONNECT_TIMEOUT_S = 5
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class BillingDbError(Exception):
    """The billing database cannot be reached or refused a statement; the message says which."""


@dataclass
class Target:
    dialect: str  # "mysql" or "postgresql"
    host: str
    port: int
    user: str
    password: str
    database: str
    options: str = ""  # PostgreSQL only: libpq options from ?options=… (e.g. -csearch_path=billing)

    def describe(self) -> str:  # never the password
        return f"{self.dialect}://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_url(url: str) -> Target:
    """mysql://user:pass@host:3306/db or postgresql://user:pass@host:5432/db; BillingDbError otherwise."""
    parts = urlsplit(url or "")
    scheme = {"mysql": "mysql", "mariadb": "mysql", "mysql+pymysql": "mysql",
              "postgresql": "postgresql", "postgres": "postgresql"}.get(parts.scheme)
    if scheme is None:
        raise BillingDbError(f"a billing database URL starts with mysql:// or postgresql://, got {parts.scheme or '?'}://")
    database = parts.path.lstrip("/")
    if not parts.hostname or not database:
        raise BillingDbError("a billing database URL needs a host and a database name (…@host:port/db)")
    options = (parse_qs(parts.query).get("options") or [""])[0] if scheme == "postgresql" else ""
    return Target(scheme, parts.hostname, parts.port or (3306 if scheme == "mysql" else 5432),
                  unquote(parts.username or ""), unquote(parts.password or ""), unquote(database), options)


def quote(dialect: str, name: str) -> str:
    """A table or column name, checked and quoted for `dialect`."""
    if not IDENT.match(name or ""):
        raise BillingDbError(f"{name!r} is not a plain table or column name (letters, digits, _)")
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


@dataclass
class Connection:
    """One open connection to a billing database."""

    target: Target
    raw: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dialect(self) -> str:
        return self.target.dialect

    def q(self, name: str) -> str:
        return quote(self.dialect, name)

    def open(self) -> "Connection":
        t = self.target
        try:
            if t.dialect == "mysql":
                import pymysql

                self.raw = pymysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                           database=t.database, connect_timeout=CONNECT_TIMEOUT_S,
                                           read_timeout=30, write_timeout=30, autocommit=True, charset="utf8mb4")
                with self.raw.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            else:
                import psycopg2

                self.raw = psycopg2.connect(host=t.host, port=t.port, user=t.user, password=t.password or None,
                                            dbname=t.database, connect_timeout=CONNECT_TIMEOUT_S,
                                            **({"options": t.options} if t.options else {}))
                self.raw.autocommit = True
        except Exception as exc:  # each driver has its own error tree; all mean "not reachable"
            raise BillingDbError(f"cannot connect to {t.describe()}: {_short(exc)}") from None
        return self

    def alive(self) -> bool:
        if self.raw is None:
            return False
        try:
            self.fetch("SELECT 1")
            return True
        except BillingDbError:
            return False

    def close(self) -> None:
        if self.raw is not None:
            try:
                self.raw.close()
            except Exception:  # already broken: nothing to release
                pass
            self.raw = None

    def fetch(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Rows of one statement, outside any transaction (autocommit)."""
        with self.lock:
            return self._run(sql, params, rows=True)

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        """One statement outside any transaction (autocommit); returns its row count."""
        with self.lock:
            return self._run(sql, params, rows=False)

    def _run(self, sql: str, params, rows: bool):
        try:
            with self.raw.cursor() as cur:
                cur.execute(sql, tuple(params))
                return list(cur.fetchall()) if rows else cur.rowcount
        except Exception as exc:
            if _broken(exc):
                self.close()
            raise BillingDbError(f"{self.target.describe()}: {_short(exc)}") from None

    @contextmanager
    def transaction(self) -> Iterator["Tx"]:
        """One transaction: commit when the block ends, roll back when it raises."""
        with self.lock:
            if self.raw is None:
                raise BillingDbError(f"{self.target.describe()}: connection lost")
            try:
                if self.dialect == "mysql":
                    self.raw.begin()
                else:
                    self.raw.autocommit = False
                tx = Tx(self)
                yield tx
                self.raw.commit()
            except BaseException as exc:
                try:
                    if self.raw is not None:
                        self.raw.rollback()
                except Exception:
                    self.close()
                if isinstance(exc, BillingDbError) or not isinstance(exc, Exception):
                    raise
                if _broken(exc):
                    self.close()
                raise BillingDbError(f"{self.target.describe()}: {_short(exc)}") from exc
            finally:
                if self.raw is not None and self.dialect == "postgresql":
                    try:
                        self.raw.autocommit = True
                    except Exception:
                        self.close()


class Tx:
    """Statements inside Connection.transaction()."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def fetch(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        return self.conn._run(sql, params, rows=True)

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        return self.conn._run(sql, params, rows=False)


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"


def _broken(exc: Exception) -> bool:
    """The connection itself failed (not the statement): drop it and reconnect next time."""
    name = type(exc).__name__
    return name in ("OperationalError", "InterfaceError", "InternalError") or isinstance(exc, (OSError, EOFError))


# ---------------------------------------------------------------- one per URL per process

@dataclass
class _Held:
    conn: Connection | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""


_held: dict[str, _Held] = {}
_held_lock = threading.Lock()


def connection(url: str, *, clock=time.monotonic) -> Connection:
    """This process's connection to `url`, reconnecting when needed (with back-off after a failure)."""
    target = parse_url(url)
    with _held_lock:
        held = _held.setdefault(url, _Held())
    if held.conn is not None and held.conn.alive():
        return held.conn
    if held.conn is not None:
        held.conn.close()
        held.conn = None
    now = clock()
    if now < held.retry_at:
        raise BillingDbError(f"{held.last_error} (next try in {held.retry_at - now:.1f} s)")
    try:
        held.conn = Connection(target).open()
    except BillingDbError as exc:
        held.failures += 1
        held.last_error = str(exc)
        held.retry_at = now + min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (held.failures - 1))
        raise
    held.failures, held.retry_at = 0, 0.0
    return held.conn


def opened_count() -> int:
    """How many billing connections this process holds open (health, tests)."""
    return sum(1 for h in _held.values() if h.conn is not None and h.conn.raw is not None)


def close_all() -> None:
    """Close every billing connection of this process and forget back-offs (worker shutdown, tests)."""
    with _held_lock:
        for held in _held.values():
            if held.conn is not None:
                held.conn.close()
        _held.clear()
