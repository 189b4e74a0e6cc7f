"""Can the database's statements run beside Python work in one CPython process? (issue 19's ingest goal)

    .venv/bin/python bench/overlap.py                 # SQLite; Python work ≈ 0.65 ms a "payment"
    .venv/bin/python bench/overlap.py --python-work 80
    .venv/bin/python bench/overlap.py --database-url postgresql://postgres@127.0.0.1:5432/test

`bench/match.py --breakdown` splits a batched payment into the database's part and this
process's own work, and prints what running the two side by side would reach at best. This
checks how much of that a writer thread can give in CPython. A synthetic "payment" (Python:
evidence dicts built and sorted; database: an INSERT into a table with many indexes, and for a
quarter of them a 10-row status flip in a 100k-row table with several indexes on status; a
COMMIT every 100) runs in one thread, then with its statements handed to a writer thread
through a queue, at three GIL switch intervals. The main thread builds every statement and its
parameters; the writer only runs them.

- SQLite runs in this process: its driver lets the GIL go while a statement runs, but binding
  the parameters and reading the answer need the GIL back.
- PostgreSQL runs in a server process of its own, so its work can use the other core while
  this one matches. psycopg2 fills the parameters in on the client, so several statements can
  also travel as one string (one round trip): measured in one thread (a payment's statements
  together) and on a writer thread that sends everything that piled up since its last round
  trip (the thread then needs the GIL once per round trip, not once per statement). The tables
  live in a schema of their own, dropped after; they imitate the ledger's `payment` (12 indexes)
  and `payment_request` (20, four of them on status).

A model, not the ledger: in the ledger a request's compare-and-set and the new WhatsApp rows need
their answer before the payment goes on, so every payment waits for the database at least once.
A write-behind built on this for the ledger (2026-12-07) kept this process and the server
alternating all the same (docs/performance/ingest.md).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import queue
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from match import fresh_schema  # noqa: E402  (bench/match.py: a PostgreSQL schema of its own, dropped after)

PAYMENTS = 3000
BATCH = 100
REQUESTS = 100_000


class SQLiteSide:
    label = "SQLite"

    def __init__(self, path: str):
        self.version = sqlite3.sqlite_version
        self.conn = conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA synchronous=normal")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INT, b TEXT, c INT, d TEXT, e INT, f TEXT)")
        for column in "abcdef":
            conn.execute(f"CREATE INDEX t_{column} ON t ({column})")
        conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, status TEXT, amount INT, x INT)")
        for n, columns in enumerate(("status, amount", "amount, status", "status, x", "status, id")):
            conn.execute(f"CREATE INDEX r_{n} ON r ({columns})")
        rng = random.Random(0)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO r (status, amount, x) VALUES ('pending', ?, ?)",
                         [(rng.randrange(10_000), rng.randrange(10**6)) for _ in range(REQUESTS)])
        conn.execute("COMMIT")

    def statements(self, i: int, rng: random.Random) -> list[tuple[str, tuple]]:
        ids = [rng.randrange(1, REQUESTS + 1) for _ in range(10 if i % 4 == 2 else 1)]
        return [
            ("INSERT INTO t (a, b, c, d, e, f) VALUES (?, ?, ?, ?, ?, ?)", _row(rng)),
            ("UPDATE r SET status = CASE status WHEN 'pending' THEN 'review' ELSE 'pending' END "
             f"WHERE id IN ({','.join('?' * len(ids))})", tuple(ids)),
        ]

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def run(self, sql, params=None) -> None:
        self.conn.execute(sql, params or ())

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    joined = None  # SQLite's driver runs one statement a call (and no round trip to save)

    def close(self) -> None:
        self.conn.close()


class PostgresSide:
    label = "PostgreSQL"

    def __init__(self, url: str):
        import psycopg2

        self.conn = conn = psycopg2.connect(url)  # its search_path: a schema of its own (fresh_schema)
        self.cursor = cur = conn.cursor()
        cur.execute("SHOW server_version")
        self.version = cur.fetchone()[0].split()[0]
        cur.execute("CREATE TABLE t (id serial PRIMARY KEY, a int, b text, c int, d text, e int, f text)")
        for columns in (*"abcdef", "a, b", "c, d", "e, f", "a, c", "b, d", "d, f"):
            cur.execute(f"CREATE INDEX ON t ({columns})")
        cur.execute("CREATE TABLE r (id serial PRIMARY KEY, status text, amount int, x int, y int, z text)")
        for columns in ("status, amount", "amount, status", "status, x", "status, id", "x", "y", "z", "x, y",
                        "y, z", "amount", "x, z", "amount, x", "amount, y", "amount, z", "id, x", "id, y",
                        "id, z", "y, x", "z, x"):
            cur.execute(f"CREATE INDEX ON r ({columns})")
        cur.execute("INSERT INTO r (status, amount, x, y, z) SELECT 'pending', (random() * 10000)::int, "
                    "(random() * 1e6)::int, (random() * 1e6)::int, md5(g::text) "
                    f"FROM generate_series(1, {REQUESTS}) g")
        conn.commit()
        cur.execute("ANALYZE")
        conn.commit()

    def statements(self, i: int, rng: random.Random) -> list[tuple[str, tuple]]:
        ids = [rng.randrange(1, REQUESTS + 1) for _ in range(10 if i % 4 == 2 else 1)]
        return [
            ("INSERT INTO t (a, b, c, d, e, f) VALUES (%s, %s, %s, %s, %s, %s)", _row(rng)),
            ("UPDATE r SET status = CASE status WHEN 'pending' THEN 'review' ELSE 'pending' END "
             "WHERE id = ANY(%s)", (ids,)),
        ]

    def begin(self) -> None:  # psycopg2 opens the transaction with the first statement
        pass

    def run(self, sql, params=None) -> None:
        self.cursor.execute(sql, params)

    def commit(self) -> None:
        self.conn.commit()

    def joined(self, statements: list[tuple[str, tuple]]) -> bytes:
        """The statements as one string: sent in one round trip."""
        return b"; ".join(self.cursor.mogrify(sql, params) for sql, params in statements)

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _row(rng: random.Random) -> tuple:
    return (rng.randrange(10**6), f"x{rng.random()}", rng.randrange(10**6), f"y{rng.random()}",
            rng.randrange(10**6), f"z{rng.random()}")


def python_work(i: int, rounds: int) -> int:
    total = 0
    for k in range(rounds):
        evidence = [{"signal": s, "points": (i * k) % 60, "detail": f"{s} for candidate {k} of payment {i}"}
                    for s in ("amount", "phone", "name", "reference", "source", "window")]
        total += sum(e["points"] for e in evidence)
        sorted(evidence, key=lambda e: (-e["points"], e["signal"]))
    return total


def alone(side, rounds: int) -> tuple[float, float]:
    started = time.perf_counter()
    for i in range(PAYMENTS):
        python_work(i, rounds)
    python = time.perf_counter() - started
    rng = random.Random(1)
    started = time.perf_counter()
    for first in range(0, PAYMENTS, BATCH):
        side.begin()
        for i in range(first, first + BATCH):
            for sql, params in side.statements(i, rng):
                side.run(sql, params)
        side.commit()
    return python, time.perf_counter() - started


def sequential(side, rounds: int, joined: bool = False) -> float:
    rng = random.Random(1)
    started = time.perf_counter()
    for first in range(0, PAYMENTS, BATCH):
        side.begin()
        for i in range(first, first + BATCH):
            python_work(i, rounds)
            statements = side.statements(i, rng)
            if joined:
                side.run(side.joined(statements))
            else:
                for sql, params in statements:
                    side.run(sql, params)
        side.commit()
    return time.perf_counter() - started


def with_writer(side, rounds: int, piled: bool = False) -> float:
    """The statements on a writer thread: one at a time, or (`piled`, PostgreSQL) all that piled up
    since its last round trip as one string."""
    rng = random.Random(1)
    todo: queue.SimpleQueue = queue.SimpleQueue()

    def writer() -> None:
        done = False
        while not done:
            items = [todo.get()]
            while piled and not todo.empty():
                items.append(todo.get())
            statements = []
            for item in items:
                if item is None or item in ("begin", "commit"):
                    if statements:
                        side.run(side.joined(statements))
                        statements = []
                    if item is None:
                        done = True
                    elif item == "begin":
                        side.begin()
                    else:
                        side.commit()
                elif piled:
                    statements.append(item)
                else:
                    side.run(*item)
            if statements:
                side.run(side.joined(statements))

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.perf_counter()
    for first in range(0, PAYMENTS, BATCH):
        todo.put("begin")
        for i in range(first, first + BATCH):
            python_work(i, rounds)
            for statement in side.statements(i, rng):
                todo.put(statement)
        todo.put("commit")
    todo.put(None)
    thread.join()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python-work", type=int, default=200, help="rounds of Python work a payment")
    parser.add_argument("--database-url", help="a PostgreSQL database (default: a SQLite file)")
    args = parser.parse_args(argv)
    ms = 1000 / PAYMENTS
    with tempfile.TemporaryDirectory(prefix="pw-overlap-") as tmp, (
            fresh_schema(args.database_url) if args.database_url else contextlib.nullcontext()) as url:
        side = PostgresSide(url) if url else SQLiteSide(os.path.join(tmp, "overlap.db"))
        try:
            print(f"python {sys.version.split()[0]}, {side.label} {side.version}, {os.cpu_count()} CPUs, load "
                  f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {PAYMENTS} payments, COMMIT every "
                  f"{BATCH}")
            python, database = alone(side, args.python_work)
            best = max(python, database)
            print(f"Python alone {python * ms:.3f} ms, database alone {database * ms:.3f} ms a payment: side by "
                  f"side at best {best * ms:.3f} ms ({(python + database) / best:.2f}×)")
            for interval in (0.005, 0.001, 0.0002):
                sys.setswitchinterval(interval)
                one, two = sequential(side, args.python_work), with_writer(side, args.python_work)
                line = (f"GIL switch interval {interval * 1000:g} ms: one thread {one * ms:.3f} ms, statements on a "
                        f"writer thread {two * ms:.3f} ms a payment ({one / two:.2f}×)")
                if side.joined:
                    joined = sequential(side, args.python_work, joined=True)
                    piled = with_writer(side, args.python_work, piled=True)
                    line += (f"; one thread, a payment's statements as one string {joined * ms:.3f} ms "
                             f"({one / joined:.2f}×); writer thread sending what piled up as one string "
                             f"{piled * ms:.3f} ms ({one / piled:.2f}×)")
                print(line)
        finally:
            side.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
