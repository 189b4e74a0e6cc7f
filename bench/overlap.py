"""Can SQLite's statements run beside Python work in one CPython process? (issue 19's ingest goal)

    .venv/bin/python bench/overlap.py                 # Python work ≈ 0.65 ms, database ≈ 0.3 ms a "payment"
    .venv/bin/python bench/overlap.py --python-work 80

`bench/match.py --breakdown` splits a batched payment into the database's part and this
process's own work, and prints what running the two side by side would reach at best. This
checks how much of that a writer thread can give in CPython: SQLite's driver lets the GIL go
while a statement runs, but binding its parameters and reading its answer need the GIL back.
A synthetic "payment" (Python: evidence dicts built and sorted; database: an INSERT into a
table with six indexes, and for a quarter of them a 10-row status flip in a 100k-row table
with four indexes on status; a COMMIT every 100) runs sequentially, then with its statements
handed to a writer thread through a queue, at three GIL switch intervals.
"""
from __future__ import annotations

import argparse
import os
import queue
import random
import sqlite3
import sys
import tempfile
import threading
import time

PAYMENTS = 3000
BATCH = 100


def setup(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
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
                     [(rng.randrange(10_000), rng.randrange(10**6)) for _ in range(100_000)])
    conn.execute("COMMIT")
    return conn


def database_work(conn: sqlite3.Connection, i: int, rng: random.Random) -> None:
    conn.execute("INSERT INTO t (a, b, c, d, e, f) VALUES (?, ?, ?, ?, ?, ?)",
                 (rng.randrange(10**6), f"x{rng.random()}", rng.randrange(10**6), f"y{rng.random()}",
                  rng.randrange(10**6), f"z{rng.random()}"))
    ids = [rng.randrange(1, 100_001) for _ in range(10 if i % 4 == 2 else 1)]
    conn.execute(f"UPDATE r SET status = CASE status WHEN 'pending' THEN 'review' ELSE 'pending' END "
                 f"WHERE id IN ({','.join('?' * len(ids))})", ids)


def python_work(i: int, rounds: int) -> int:
    total = 0
    for k in range(rounds):
        evidence = [{"signal": s, "points": (i * k) % 60, "detail": f"{s} for candidate {k} of payment {i}"}
                    for s in ("amount", "phone", "name", "reference", "source", "window")]
        total += sum(e["points"] for e in evidence)
        sorted(evidence, key=lambda e: (-e["points"], e["signal"]))
    return total


def alone(conn: sqlite3.Connection, rounds: int) -> tuple[float, float]:
    started = time.perf_counter()
    for i in range(PAYMENTS):
        python_work(i, rounds)
    python = time.perf_counter() - started
    rng = random.Random(1)
    started = time.perf_counter()
    for first in range(0, PAYMENTS, BATCH):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(first, first + BATCH):
            database_work(conn, i, rng)
        conn.execute("COMMIT")
    return python, time.perf_counter() - started


def sequential(conn: sqlite3.Connection, rounds: int) -> float:
    rng = random.Random(1)
    started = time.perf_counter()
    for first in range(0, PAYMENTS, BATCH):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(first, first + BATCH):
            python_work(i, rounds)
            database_work(conn, i, rng)
        conn.execute("COMMIT")
    return time.perf_counter() - started


def with_writer(conn: sqlite3.Connection, rounds: int) -> float:
    rng = random.Random(1)
    todo: queue.SimpleQueue = queue.SimpleQueue()

    def writer() -> None:
        while (item := todo.get()) is not None:
            if item == "begin":
                conn.execute("BEGIN IMMEDIATE")
            elif item == "commit":
                conn.execute("COMMIT")
            else:
                database_work(conn, item, rng)

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.perf_counter()
    for first in range(0, PAYMENTS, BATCH):
        todo.put("begin")
        for i in range(first, first + BATCH):
            python_work(i, rounds)
            todo.put(i)
        todo.put("commit")
    todo.put(None)
    thread.join()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python-work", type=int, default=200, help="rounds of Python work a payment")
    args = parser.parse_args(argv)
    ms = 1000 / PAYMENTS
    print(f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {PAYMENTS} payments, COMMIT every {BATCH}")
    with tempfile.TemporaryDirectory(prefix="pw-overlap-") as tmp:
        conn = setup(os.path.join(tmp, "overlap.db"))
        python, database = alone(conn, args.python_work)
        print(f"Python alone {python * ms:.3f} ms, database alone {database * ms:.3f} ms a payment: side by side "
              f"at best {max(python, database) * ms:.3f} ms ({(python + database) / max(python, database):.2f}×)")
        for interval in (0.005, 0.001, 0.0002):
            sys.setswitchinterval(interval)
            one, two = sequential(conn, args.python_work), with_writer(conn, args.python_work)
            print(f"GIL switch interval {interval * 1000:g} ms: one thread {one * ms:.3f} ms, statements on a "
                  f"writer thread {two * ms:.3f} ms a payment ({one / two:.2f}×)")
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
