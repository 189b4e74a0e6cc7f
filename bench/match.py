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
"""
from __future__ import annotations

import argparse
import contextlib
import random
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from peewee import fn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webapp import create_app  # noqa: E402
from webapp.config import load_settings  # noqa: E402
from webapp.domain import ledger
from webapp.plumbing.devstack import start_redis  # noqa: E402
from webapp.storage import db
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
def fresh_schema(database_url: str):
    """A PostgreSQL schema of its own for one size (dropped after): every size starts from an empty
    database, ids from 1, as SQLite's fresh file does (a DELETE kept the ids counting and broke size 2)."""
    import psycopg2

    schema = "pwbench_" + secrets.token_hex(6)
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def run(size: int, payments: int, per_amount: int, database_url: str | None, seed_value: int,
        batch: int = 100) -> dict:
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp, (
            fresh_schema(database_url) if database_url else contextlib.nullcontext(f"sqlite:///{tmp}/bench.db")) as url:
        # A throw-away Redis: confirmations enqueue their WhatsApp jobs, as in production.
        redis = start_redis(Path(tmp) / "redis", persist=False)
        app = build_app(url, Path(tmp), redis.url)
        with app.app_context(), db.database.connection_context():
            started = time.perf_counter()
            seed(size, per_amount, rng)
            seeded = time.perf_counter() - started
            todo = observations(size, payments * 2, rng)
            single, batched = todo[:payments], todo[payments:]
            outcomes: dict[str, int] = {}
            started = time.perf_counter()
            for observation in single:
                result = ledger.ingest_payment(observation, actor="bench")
                outcomes[result.decision.action] = outcomes.get(result.decision.action, 0) + 1
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            for i in range(0, len(batched), batch):
                for result in ledger.ingest_payments(batched[i:i + batch], actor="bench"):
                    outcomes[result.decision.action] = outcomes.get(result.decision.action, 0) + 1
            elapsed_batched = time.perf_counter() - started
        redis.stop()
        db.database.obj.close()
    return {"size": size, "seed_s": seeded, "per_payment_ms": elapsed / payments * 1000,
            "rate": payments / elapsed, "batched_ms": elapsed_batched / payments * 1000,
            "batched_rate": payments / elapsed_batched, "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--per-amount", type=int, default=10, help="open requests sharing an amount")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100, help="payments per transaction in the batched run")
    args = parser.parse_args(argv)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"ingest + match, one process, {backend}, {args.payments} payments per size, "
          f"~{args.per_amount} open requests per amount")
    print(f"{'':>14} {'one per transaction':>24} {f'batches of {args.batch}':>24}")
    print(f"{'open requests':>14} {'payments/s':>11} {'ms/payment':>12} {'payments/s':>11} {'ms/payment':>12}"
          f" {'seed s':>7}  outcomes (both runs)")
    results = []
    for size in args.sizes:
        r = run(size, args.payments, args.per_amount, args.database_url, args.seed, args.batch)
        results.append(r)
        print(f"{r['size']:>14,} {r['rate']:>11,.0f} {r['per_payment_ms']:>12.3f} {r['batched_rate']:>11,.0f}"
              f" {r['batched_ms']:>12.3f} {r['seed_s']:>7.1f}  {r['outcomes']}", flush=True)
    if len(results) > 1:
        for key, label in (("per_payment_ms", "one per transaction"), ("batched_ms", "batched")):
            ratio = results[-1][key] / results[0][key]
            print(f"{label}: cost at {results[-1]['size']:,} / cost at {results[0]['size']:,} = {ratio:.2f}x (goal ≤ 1.5x)")
    at_100k = next((r for r in results if r["size"] == 100_000), None)
    if at_100k:
        for key, label in (("rate", "one per transaction"), ("batched_rate", "batched")):
            verdict = "meets" if at_100k[key] >= 1000 else "misses"
            print(f"at 100,000 open requests, {label}: {at_100k[key]:,.0f} payments/s ({verdict} the goal of ≥ 1,000/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
