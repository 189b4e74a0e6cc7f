"""How fast this machine is right now: a fixed amount of work, timed, printed by the benches.

A bench's payments/s or milliseconds mean little alone: these 2-core VMs differ by 2× from one
session's machine to the next, and one machine's speed moves by a third within the hour. So the
benches print this reference when they start and when they end. Two runs' figures compare only
as far as their references agree; a run whose reference moved by more than a tenth between its
start and end ran on a machine that changed speed under it, and says so.

Two parts, each the best of five runs, in milliseconds (lower is faster):
- python: the interpreter's own work, the kind that matching and building rows do (dicts,
  f-strings, a regular expression, a JSON round trip, datetimes, a sort); no I/O;
- sqlite: 20,000 rows into an in-memory table with two indexes in one transaction, then a range
  count: the C library's work, no disk.

The benches time it in a fresh interpreter of its own, so that what a bench process holds by
its end (a heap of a million rows, SQLite's caches) does not colour the figure. Run alone
(`.venv/bin/python bench/machine.py`) it prints the reference once.
"""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

RUNS = 5
DRIFT = 0.10  # start and end further apart than this: the machine changed speed during the run
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_ROWS = [(i * 7919 % 10007, f"n{i % 101}", f"2026-01-01 {i % 24:02d}:{i % 60:02d}:{i % 59:02d}")
         for i in range(20_000)]


def _python_work() -> int:
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(3000):
        row = {"reference": f"PW-{i:06d}", "amount_minor": 1000 + i * 37 % 5000,
               "customer_name": f"Customer {i % 97}, Kampala", "created_at": base + timedelta(seconds=i)}
        row["key"] = _NOT_WORD.sub(" ", row["customer_name"].lower()).strip()
        rows.append(json.loads(json.dumps(row, default=str, sort_keys=True)))
    rows.sort(key=lambda r: (r["amount_minor"], r["reference"]))
    return len(rows)


def _sqlite_work() -> int:
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, amount INTEGER, name TEXT, at TEXT)")
        con.execute("CREATE INDEX t_amount ON t (amount, name)")
        con.execute("CREATE INDEX t_at ON t (at)")
        with con:
            con.executemany("INSERT INTO t (amount, name, at) VALUES (?, ?, ?)", _ROWS)
        return con.execute("SELECT count(*) FROM t WHERE amount BETWEEN 100 AND 5000").fetchone()[0]
    finally:
        con.close()


def _best_ms(work) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best * 1000


@dataclass(frozen=True)
class Reference:
    python_ms: float
    sqlite_ms: float

    def __str__(self) -> str:
        return f"python {self.python_ms:.1f} ms, sqlite {self.sqlite_ms:.1f} ms"


def measure() -> Reference:
    """The reference, timed in this process (about half a second of work)."""
    return Reference(_best_ms(_python_work), _best_ms(_sqlite_work))


def reference() -> Reference:
    """The reference now, timed in a fresh interpreter (this file run with --json)."""
    out = subprocess.run([sys.executable, __file__, "--json"], capture_output=True, text=True, check=True).stdout
    return Reference(**json.loads(out))


def started_line(start: Reference) -> str:
    return (f"machine reference at start: {start} (fixed work, best of {RUNS}; lower is faster: "
            f"bench/machine.py)")


def ended_line(start: Reference, end: Reference) -> str:
    """The reference at the end of a run, and whether the machine held its speed meanwhile."""
    moved = {name: getattr(end, f"{name}_ms") / getattr(start, f"{name}_ms") - 1 for name in ("python", "sqlite")}
    change = ", ".join(f"{name} {value:+.0%}" for name, value in moved.items())
    verdict = ("the machine held its speed" if all(abs(v) <= DRIFT for v in moved.values())
               else f"the machine changed speed during the run (more than {DRIFT:.0%}): "
                    f"compare this run's figures with another's only with care")
    return f"machine reference at end: {end} ({change} since the start: {verdict})"


if __name__ == "__main__":
    now = measure()
    if sys.argv[1:] == ["--json"]:
        print(json.dumps({"python_ms": now.python_ms, "sqlite_ms": now.sqlite_ms}))
    else:
        print(started_line(now).replace(" at start", ""))
