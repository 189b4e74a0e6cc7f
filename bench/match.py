"""Ingest + match throughput per process with 10k, 100k and 1M open requests.

    .venv/bin/python bench/match.py                   # SQLite, 10k / 100k / 1M
    .venv/bin/python bench/match.py --sizes 10000 100000 --payments 3000
    .venv/bin/python bench/match.py --database-url postgresql://postgres@127.0.0.1/test

For each size, a fresh database gets N open requests (bulk-inserted: amounts drawn
so that about `--per-amount` requests share each amount, as businesses with price
lists have), then `--payments` payments go through ledger.ingest_payment() one by
one in this process, exactly as a source job hands them over: half pay a request
with a matching phone (confirmed automatically), a quarter quote no signal among
several same-amount requests (review), a quarter match nothing (unmatched).
Two ways in, both measured: one payment per transaction (the API and the staff
form), and batches of `--batch` payments per transaction (ledger.ingest_payments,
what a source job uses for the mail or rows one pass read). Prints payments/s and
the cost per payment; the goal is ≥ 1,000/s at 100k and cost(1M) ≤ 1.5 × cost(10k).
`--processes N` also ingests `--payments` more in batches split over N forked processes
side by side, each with a connection of its own (rq workers running source jobs at once),
and prints the payments/s of all together and any batch that failed.

After seeding, the planner statistics are refreshed as after any bulk load
(db.refresh_statistics: ANALYZE on PostgreSQL, PRAGMA optimize on SQLite; `--no-analyze`
leaves them as a bulk load without it would). It also counts the SQL statements per
payment (a counter on the database's execute_sql), prints the settings it ran with and
how fast the machine was at the start and at the end (bench/machine.py), and with
`--explain` the plans of the hot statements at the largest size. `--pages-written` (SQLite)
counts, after the timed runs, the pages five more batches write, by table and index: what
a batch's COMMIT has to put in the WAL.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import peewee
from peewee import SqliteDatabase, fn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import machine  # noqa: E402  (bench/machine.py)
from webapp import create_app  # noqa: E402
from webapp.config import load_settings  # noqa: E402
from webapp.domain import ledger, options  # noqa: E402
from webapp.plumbing import heap  # noqa: E402
from webapp.plumbing.devstack import start_redis  # noqa: E402
from webapp.storage import db, sqlcache  # noqa: E402
from webapp.storage.models import PaymentRequest, utcnow  # noqa: E402


def build_app(database_url: str, workdir: Path, redis_url: str):
    settings = load_settings({
        "PAYWATCH_ENV": "test", "SECRET_KEY": "bench-" + "x" * 20, "DATABASE_URL": database_url,
        "PAYWATCH_INSTANCE_PATH": str(workdir), "PAYWATCH_CURRENCY": "UGX", "PAYWATCH_PHONE_REGION": "UG",
        "LOG_LEVEL": "WARNING", "REDIS_URL": redis_url,
    })
    app = create_app(settings)
    with app.app_context():
        db.upgrade()
    return app


def seed(n: int, per_amount: int, rng: random.Random) -> None:
    """N pending requests created in the last 10 minutes, expiring in 15."""
    now = utcnow()
    distinct = max(1, n // per_amount)
    rows = []
    with db.transaction():
        for i in range(n):
            created = now - timedelta(seconds=rng.randint(0, 600))
            rows.append({
                "reference": f"PW-B{i:08d}", "amount_minor": 1000 + rng.randrange(distinct) * 100,
                "requested_minor": 0, "currency": "UGX", "customer_name": f"Customer {i}",
                "customer_phone": f"+2567{i:08d}", "status": "pending", "source": "bench",
                "created_at": created, "expires_at": created + timedelta(minutes=15), "meta": {},
            })
            if len(rows) == 2000:
                PaymentRequest.insert_many(rows).execute()
                rows.clear()
        if rows:
            PaymentRequest.insert_many(rows).execute()


def observations(n_requests: int, count: int, rng: random.Random) -> list[ledger.PaymentObservation]:
    """Payments to ingest: half confirm by phone, a quarter go to review, a quarter match nothing."""
    low = PaymentRequest.select(fn.MIN(PaymentRequest.id)).scalar()  # ids need not start at 1 (PostgreSQL)
    picks = rng.sample(range(low, low + n_requests), count)
    wanted = {r.id: r for r in PaymentRequest.select().where(PaymentRequest.id.in_(picks))}
    result = []
    for i, pick in enumerate(picks):
        request = wanted[pick]
        kind = i % 4
        if kind in (0, 1):
            name, phone, amount = "", request.customer_phone, request.amount_minor
        elif kind == 2:
            name, phone, amount = "Someone Else", None, request.amount_minor
        else:
            name, phone, amount = "Stranger", None, 999_999_999 - i
        result.append(ledger.PaymentObservation(
            source="bench", source_ref=f"bench-{i}", amount_minor=amount, currency="UGX",
            received_at=utcnow(), sender_name=name, sender_phone=phone, note="",
        ))
    return result


@contextlib.contextmanager
def fresh_schema(database_url: str, keep: str | None = None):
    """A PostgreSQL schema of its own (dropped after, unless `keep` names it: bench/pages.py's --keep):
    every size starts from an empty database, ids from 1, as SQLite's fresh file does (a DELETE kept
    the ids counting and broke size 2)."""
    import psycopg2

    schema = keep or ("pwbench_" + secrets.token_hex(6))
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    sep = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        if not keep:
            with admin.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def explain(size: int) -> list[str]:
    """The plans of the set update that flips candidates to review and of the candidate lookup."""
    target = db.database.obj
    sqlite = isinstance(target, SqliteDatabase)
    p = target.param
    ids = [r.id for r in PaymentRequest.select(PaymentRequest.id).order_by(PaymentRequest.id).limit(11)]
    status = '+"status"' if sqlite else '("status" || \'\')'  # as sqlcache.update_returning_ids writes it
    statements = {
        "review flip": (f'UPDATE "payment_request" SET "status" = {p} WHERE "id" IN ({", ".join([p] * len(ids))}) '
                        f'AND {status} = {p}', ["review", *ids, "pending"]),
        "candidates": (f'SELECT "id" FROM "payment_request" WHERE "amount_minor" = {p} AND "currency" = {p} '
                       f'AND "created_at" <= {p} AND ("status" IN (\'pending\', \'review\') OR '
                       f'("status" = \'expired\' AND "expires_at" >= {p}))',
                       [1000, "UGX", PaymentRequest.created_at.db_value(utcnow()),
                        PaymentRequest.created_at.db_value(utcnow() - timedelta(days=3))]),
    }
    lines = []
    for label, (sql, params) in statements.items():
        rows = target.execute_sql(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, params).fetchall()
        lines.append(f"plan at {size:,}, {label}:")
        lines += ["    " + (str(row[-1]) if sqlite else str(row[0])) for row in rows]
    return lines


_LIST = re.compile(r"\((?:\s*(?:\?|%s|\$\d+)\s*,)+\s*(?:\?|%s|\$\d+)\s*\)")


def statement_label(sql: str) -> str:
    """A statement's text, short: the prepared statement an EXECUTE runs, lists of parameters as (…)."""
    text = " ".join(sqlcache.statement_of(sql).split())
    if text.startswith("PREPARE "):
        return "PREPARE (once per statement and connection)"
    text = _LIST.sub("(…)", text)
    return text if len(text) <= 90 else text[:89] + "…"


def breakdown(spent: dict[str, list], wall: float, payments: int, shown: int = 8) -> list[str]:
    """Where a batched payment's wall time went (db.timed()'s figures), and what running the
    database's part beside the rest would reach at best."""
    ms = 1000 / payments
    statements: dict[str, list] = {}
    for sql, (count, seconds) in spent.items():
        if sql in ("COMMIT", "after commit"):
            continue
        entry = statements.setdefault(statement_label(sql), [0, 0.0])
        entry[0] += count
        entry[1] += seconds
    ranked = sorted(statements.items(), key=lambda item: -item[1][1])
    lines = [f"  where a batched payment's {wall * ms:.3f} ms went (ms a payment; statements: execute and fetch):"]
    for label, (count, seconds) in ranked[:shown]:
        lines.append(f"    {seconds * ms:7.3f}  {count / payments:5.2f}×  {label}")
    rest = ranked[shown:]
    if rest:
        lines.append(f"    {sum(s for _, (_, s) in rest) * ms:7.3f}         {len(rest)} other statements")
    commit = spent.get("COMMIT", [0, 0.0])[1]
    redis = spent.get("after commit", [0, 0.0])[1]
    database = sum(s for _, (_, s) in ranked) + commit
    own = wall - database
    lines.append(f"    {commit * ms:7.3f}         COMMIT")
    lines.append(f"    {redis * ms:7.3f}         after the commit: the transaction's jobs put on Redis")
    lines.append(f"    {(own - redis) * ms:7.3f}         the rest of this process's work (matching, building rows)")
    lines.append(f"  the database's part {database * ms:.3f} ms, this process's {own * ms:.3f} ms: run side by side, "
                 f"at most {payments / max(database, own):,.0f} payments/s (now {payments / wall:,.0f})")
    return lines


def in_processes(todo: list[ledger.PaymentObservation], processes: int, batch: int,
                 outcomes: Counter) -> dict:
    """`todo` ingested by `processes` forked processes side by side, each its own share in batches
    of `batch` on a connection of its own, as rq workers running source jobs at once do. Returns the
    payments/s of all together, and the batches that failed (each error's text, first of each kind)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    shares = [todo[i::processes] for i in range(processes)]

    def work(share: list[ledger.PaymentObservation]) -> None:
        started, counts, errors = time.perf_counter(), Counter(), []
        for i in range(0, len(share), batch):
            try:
                for result in ledger.ingest_payments(share[i:i + batch], actor="bench"):
                    counts[result.decision.action] += 1
            except peewee.DatabaseError as error:  # counted and shown: a lost batch is a finding
                errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
        results.put((started, time.perf_counter(), counts, errors))
        db.database.obj.close()

    children = [context.Process(target=work, args=(share,)) for share in shares]
    for child in children:
        child.start()
    reports = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join()
    elapsed = max(r[1] for r in reports) - min(r[0] for r in reports)
    errors: Counter = Counter()
    for _, _, counts, failed in reports:
        outcomes.update(counts)
        errors.update(failed)
    done = sum(sum(r[2].values()) for r in reports)
    return {"processes": processes, "rate": done / elapsed, "done": done, "errors": dict(errors)}


PAGES_BATCHES = 5  # batches whose written pages --pages-written counts


def pages_written(batches: list[list[ledger.PaymentObservation]], shown: int = 14) -> list[str]:
    """Which tables and indexes a batch's transaction writes, in pages (SQLite): the WAL is emptied
    before each batch (a TRUNCATE checkpoint), then the frames the batch's commit appended are read
    from the WAL file and their page numbers named through the dbstat table. Counted, not timed."""
    path = Path(db.database.obj.database)
    counts: Counter = Counter()
    for observations_ in batches:
        for _ in range(100):  # the checkpoint thread's own connection (checkpoints.py) may be in one
            if db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                break
            time.sleep(0.05)
        else:
            return ["  pages written: the WAL could not be emptied (a reader held it)"]
        ledger.ingest_payments(observations_, actor="bench")
        data = Path(f"{path}-wal").read_bytes()
        page_size = int.from_bytes(data[8:12], "big")
        pages = {int.from_bytes(data[at:at + 4], "big") for at in range(32, len(data) - 23, 24 + page_size)}
        try:
            names = dict(db.database.execute_sql("SELECT pageno, name FROM dbstat").fetchall())
        except peewee.OperationalError as exc:  # a SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            return [f"  pages written: not counted ({exc})"]
        counts.update(names.get(page, "(free)") for page in pages)
    n = len(batches)
    total = sum(counts.values()) / n
    lines = [f"  pages a batch of {len(batches[0])} writes (SQLite; {n} batches after the timed runs, each "
             f"transaction's WAL frames by table or index): {total:,.0f} in all, "
             f"{total / len(batches[0]):.1f} a payment"]
    for name, count in counts.most_common(shown):
        lines.append(f"    {count / n:8.1f}  {count / n / total:6.1%}  {name}")
    rest = total - sum(c for _, c in counts.most_common(shown)) / n
    if len(counts) > shown:
        lines.append(f"    {rest:8.1f}  {rest / total:6.1%}  {len(counts) - shown} more tables and indexes")
    return lines


def server_pid() -> int | None:
    """The PostgreSQL backend process serving this connection (None on SQLite)."""
    if isinstance(db.database.obj, SqliteDatabase):
        return None
    return db.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]


def process_cpu_ns(pid: int) -> int | None:
    """CPU time process `pid` has run, ns (/proc/<pid>/schedstat: fine-grained, unlike /proc/<pid>/stat's
    clock ticks); None when it cannot be read (a server on another machine, a process gone)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds the backend process `pid` has used, when the server runs on this machine (else None)."""
    used = None if pid is None else process_cpu_ns(pid)
    return None if used is None else used / 1e9


def settings_used(args, backend: str) -> list[str]:
    """What this run used, so a figure can be read (and repeated) later."""
    lines = [f"python {platform.python_version()}, peewee {peewee.__version__}, {os.cpu_count()} CPUs, "
             f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start"]
    if args.database_url:
        import psycopg2

        with contextlib.closing(psycopg2.connect(args.database_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT version()")
            version = cur.fetchone()[0].split(" on ")[0]
            wanted = ("shared_buffers", "work_mem", "synchronous_commit", "fsync", "random_page_cost",
                      "effective_cache_size", "default_statistics_target")
            cur.execute("SELECT name, setting, COALESCE(unit, '') FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
                        (list(wanted),))
            values = ", ".join(f"{n}={v}{u}" for n, v, u in cur.fetchall())
        lines.append(f"{version}: {values}")
    else:
        import sqlite3

        lines.append(f"SQLite {sqlite3.sqlite_version}, pragmas {db.SQLITE_PRAGMAS}")
    lines.append(f"statistics after seeding: {'none (--no-analyze)' if args.no_analyze else 'refreshed'}"
                 f" ({'ANALYZE' if args.database_url else 'PRAGMA optimize'}); Redis: a throw-away one per size "
                 f"(confirmations enqueue their WhatsApp jobs); seed {args.seed}; "
                 f"{args.warmup} payments of warm-up (not timed; statistics refreshed after it), then "
                 f"{args.payments} payments one per transaction, then {args.payments} in batches of {args.batch}")
    return lines


def run(size: int, payments: int, per_amount: int, database_url: str | None, seed_value: int,
        batch: int = 100, analyze: bool = True, show_plans: bool = False, warmup: int = 1000,
        show_breakdown: bool = False, processes: int = 1, show_pages: bool = False) -> dict:
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp, (
            fresh_schema(database_url) if database_url else contextlib.nullcontext(f"sqlite:///{tmp}/bench.db")) as url:
        # A throw-away Redis: confirmations enqueue their WhatsApp jobs, as in production.
        redis = start_redis(Path(tmp) / "redis", persist=False)
        try:
            app = build_app(url, Path(tmp), redis.url)
            heap.freeze_startup()  # as an rq worker does once its app is built (jobs/worker.py)
            with app.app_context(), db.database.connection_context():
                started = time.perf_counter()
                seed(size, per_amount, rng)
                if analyze:
                    db.refresh_statistics()
                seeded = time.perf_counter() - started
                values = options.current()
                mode = (f"matching: mode {values.get('verification_mode')}, auto-confirm at "
                        f"{values.get('auto_confirm_threshold')}, tie margin {values.get('tie_margin')}")
                extra = PAGES_BATCHES * batch if show_pages else 0
                todo = observations(size, payments * (3 if processes > 1 else 2) + warmup + extra, rng)
                written, todo = todo[len(todo) - extra:], todo[:len(todo) - extra]
                warm, single = todo[:warmup], todo[warmup:warmup + payments]
                batched = todo[warmup + payments:warmup + 2 * payments]
                # A live ledger has payments, candidates and messages behind it, and statistics that
                # describe them (autovacuum analyzes a table once 10 % of it changed). Without a warm-up,
                # the just-seeded empty payment tables keep "0 rows" statistics for the whole run and
                # PostgreSQL checks every foreign key to a payment by reading the whole table.
                for i in range(0, len(warm), batch):
                    ledger.ingest_payments(warm[i:i + batch], actor="bench")
                if analyze and warm:
                    db.refresh_statistics()
                outcomes: Counter = Counter()
                with db.count_queries() as statements:
                    started, cpu = time.perf_counter(), time.process_time()
                    for observation in single:
                        result = ledger.ingest_payment(observation, actor="bench")
                        outcomes[result.decision.action] += 1
                    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                single_statements = statements[0]
                timing = db.timed() if show_breakdown else contextlib.nullcontext()
                backend_pid = server_pid() if show_breakdown else None
                server_before = server_cpu(backend_pid)
                with db.count_queries() as statements, timing as spent:
                    started, cpu_batched = time.perf_counter(), time.process_time()
                    for i in range(0, len(batched), batch):
                        for result in ledger.ingest_payments(batched[i:i + batch], actor="bench"):
                            outcomes[result.decision.action] += 1
                    elapsed_batched, cpu_batched = time.perf_counter() - started, time.process_time() - cpu_batched
                batched_statements = statements[0]
                server_after = server_cpu(backend_pid)
                where = breakdown(spent, elapsed_batched, payments) if show_breakdown else []
                if server_before is not None and server_after is not None:
                    server, ms = server_after - server_before, 1000 / payments
                    where.append(f"  CPU a payment: the PostgreSQL backend {server * ms:.3f} ms (read from /proc), "
                                 f"this process {cpu_batched * ms:.3f} ms, together "
                                 f"{(server + cpu_batched) * ms:.3f} ms against {elapsed_batched * ms:.3f} ms "
                                 f"of wall time")
                plans = explain(size) if show_plans else []
                if written:
                    plans = pages_written([written[i:i + batch] for i in range(0, len(written), batch)]) + plans
            side_by_side = None
            if processes > 1:  # this process's connection is closed by now: each child opens its own
                with app.app_context():
                    side_by_side = in_processes(todo[warmup + 2 * payments:], processes, batch, outcomes)
        finally:  # a failed run leaves no Redis running and no connection holding the schema
            redis.stop()
            if db.database.obj is not None:
                db.database.obj.close()
    return {"size": size, "seed_s": seeded, "per_payment_ms": elapsed / payments * 1000,
            "rate": payments / elapsed, "batched_ms": elapsed_batched / payments * 1000,
            "batched_rate": payments / elapsed_batched, "outcomes": outcomes, "mode": mode, "plans": plans,
            "breakdown": where, "side_by_side": side_by_side,
            "statements": single_statements / payments,
            "cpu_ms": cpu / payments * 1000, "batched_cpu_ms": cpu_batched / payments * 1000, "batched_statements": batched_statements / payments}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--per-amount", type=int, default=10, help="open requests sharing an amount")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100, help="payments per transaction in the batched run")
    parser.add_argument("--no-analyze", action="store_true",
                        help="leave the planner statistics as the bulk load left them")
    parser.add_argument("--warmup", type=int, default=1000,
                        help="payments ingested (not timed) before the statistics are refreshed and the timing starts")
    parser.add_argument("--explain", action="store_true", help="print the plans of the hot statements")
    parser.add_argument("--breakdown", action="store_true",
                        help="print where a batched payment's time goes, statement by statement")
    parser.add_argument("--pages-written", action="store_true",
                        help="SQLite: count the pages a batch's transaction writes, by table and index")
    parser.add_argument("--processes", type=int, default=1,
                        help="also ingest --payments more in batches, split over this many processes side by side")
    args = parser.parse_args(argv)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"ingest + match, one process, {backend}, {args.payments} payments per size, "
          f"~{args.per_amount} open requests per amount")
    start = machine.reference()
    for line in [*settings_used(args, backend), machine.started_line(start)]:
        print(f"  {line}")
    print("  ms/payment: wall time; cpu ms: this process's CPU time per payment (less sensitive to a"
          " loaded machine); stmts: SQL statements per payment")
    print(f"{'':>14} {'one per transaction':>37} {f'batches of {args.batch}':>37}")
    print(f"{'open requests':>14} {'payments/s':>11} {'ms/payment':>11} {'cpu ms':>7} {'stmts':>6} {'payments/s':>11}"
          f" {'ms/payment':>11} {'cpu ms':>7} {'stmts':>6} {'seed s':>7}  outcomes (all runs)")
    results = []
    for size in args.sizes:
        r = run(size, args.payments, args.per_amount, args.database_url, args.seed, args.batch,
                analyze=not args.no_analyze, show_plans=args.explain and size == max(args.sizes), warmup=args.warmup,
                show_breakdown=args.breakdown, processes=args.processes,
                show_pages=args.pages_written and not args.database_url)
        results.append(r)
        if len(results) == 1:
            print(f"  {r['mode']}")
        print(f"{r['size']:>14,} {r['rate']:>11,.0f} {r['per_payment_ms']:>11.3f} {r['cpu_ms']:>7.3f}"
              f" {r['statements']:>6.1f} {r['batched_rate']:>11,.0f} {r['batched_ms']:>11.3f}"
              f" {r['batched_cpu_ms']:>7.3f} {r['batched_statements']:>6.1f}"
              f" {r['seed_s']:>7.1f}  {dict(r['outcomes'])}", flush=True)
        for line in r["breakdown"] + r["plans"]:
            print(line)
        if r["side_by_side"]:
            side = r["side_by_side"]
            print(f"  {side['processes']} processes side by side, batches of {args.batch}: "
                  f"{side['rate']:,.0f} payments/s "
                  f"in all ({side['done']:,} ingested; failed batches: {side['errors'] or 'none'})")
    if len(results) > 1:
        for key, label in (("per_payment_ms", "one per transaction"), ("batched_ms", "batched")):
            ratio = results[-1][key] / results[0][key]
            print(f"{label}: cost at {results[-1]['size']:,} / cost at {results[0]['size']:,} = {ratio:.2f}x (goal ≤ 1.5x)")
    at_100k = next((r for r in results if r["size"] == 100_000), None)
    if at_100k:
        for key, label in (("rate", "one per transaction"), ("batched_rate", "batched")):
            verdict = "meets" if at_100k[key] >= 1000 else "misses"
            print(f"at 100,000 open requests, {label}: {at_100k[key]:,.0f} payments/s ({verdict} the goal of ≥ 1,000/s)")
    print(machine.ended_line(start, machine.reference()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
