"""Webhook latency and throughput: request paid → signed webhook received by the sandbox receiver.

    python bench/webhooks.py [--events 300] [--gap-ms 100] [--burst 400]

Real parts on one machine: a fresh SQLite database, a throw-away redis-server of its own
(BENCH_REDIS_URL names another; never flushed from here), the sandbox webhook receiver in
this process, and one `rq worker -w jobs.worker.Worker --with-scheduler fast` (the webhook queue).
One endpoint listens to request.paid.

1. Latency: `--events` requests are paid one after the other (`--gap-ms` apart) through
   ledger.ingest_payment (the matcher pays them); for each, the time from the payment being
   reported (and from its commit) to the receiver accepting the signed POST. p50/p95/p99/max.
   Goal: p95 ≤ 1 s.
2. Throughput of one worker: with the worker stopped, `--burst` requests are paid (their jobs
   wait in Redis); the worker is started and deliveries/s is counted from the first
   delivery received to the last.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webapp.plumbing.devstack import start_redis  # noqa: E402


def main() -> None:
    args = _args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="pw-webhooks-"))
    local = None if os.environ.get("BENCH_REDIS_URL") else start_redis(work / "redis", persist=False)
    redis_url = os.environ.get("BENCH_REDIS_URL") or local.url
    env = {**os.environ, "PAYWATCH_ENV": "test", "DATABASE_URL": f"sqlite:///{work / 'paywatch.db'}",
           "REDIS_URL": redis_url, "SECRET_KEY": "bench-secret-" + "x" * 20, "PAYWATCH_INSTANCE_PATH": str(work),
           "PAYWATCH_TIMEZONE": "Africa/Kampala", "PAYWATCH_PHONE_REGION": "UG", "PAYWATCH_CURRENCY": "UGX",
           "PAYWATCH_WEBHOOKS_ALLOW_PRIVATE": "1", "PYTHONPATH": str(ROOT)}
    os.environ.update(env)
    from sandbox.server import ServerThread
    from sandbox.webhook_receiver import make_app as make_receiver

    receiver = ServerThread(make_receiver()).start()
    state = receiver.app.extensions["receiver"]
    app, secret = _prepare(receiver.url)
    state.secrets[:] = [secret]
    worker = None
    try:
        worker = _worker(env, work, "latency")
        requests_ = _requests(app, args.events, 1000)
        print(f"latency: paying {args.events} requests, {args.gap_ms} ms apart, one worker", flush=True)
        paid = _pay(app, requests_, gap_s=args.gap_ms / 1000)
        got = state.wait_for(len(paid), timeout=60 + len(paid))
        _latency(paid, got)
        _stop(worker)
        worker = None

        state.reset()
        state.secrets[:] = [secret]
        requests_ = _requests(app, args.burst, 500_000)
        paid = _pay(app, requests_, gap_s=0)
        print(f"\nthroughput: {len(paid)} deliveries queued with no worker running; starting one", flush=True)
        worker = _worker(env, work, "burst")
        got = state.wait_for(len(paid), timeout=120 + len(paid))
        _throughput(paid, got)
    finally:
        if worker:
            _stop(worker)
        receiver.stop()
        if local:
            local.stop()
        shutil.rmtree(work, ignore_errors=True)


def _args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="requests paid one by one (latency); ≥ 200")
    parser.add_argument("--gap-ms", type=float, default=100.0,
                        help="pause between two payments (latency); below one worker's pace, so no backlog builds")
    parser.add_argument("--burst", type=int, default=400, help="deliveries queued at once (throughput)")
    return parser.parse_args()


def _prepare(receiver_url: str):
    from webapp import create_app
    from webapp.domain import webhooks
    from webapp.storage import db

    app = create_app()
    with app.app_context(), db.database.connection_context():
        db.upgrade()
        endpoint = webhooks.create_endpoint(receiver_url + "/bench", ["request.paid"], actor="bench")
    return app, endpoint.secret


def _worker(env: dict, work: Path, name: str) -> subprocess.Popen:
    import redis
    from rq import Worker

    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rq"), "worker", "--with-scheduler", "-w", "jobs.worker.Worker",
         "--url", env["REDIS_URL"], "fast"],
        cwd=ROOT, env=env, stdout=open(work / f"worker-{name}.log", "w"), stderr=subprocess.STDOUT)
    conn = redis.Redis.from_url(env["REDIS_URL"])
    deadline = time.time() + 60
    while process.pid not in {w.pid for w in Worker.all(connection=conn)}:
        if time.time() > deadline or process.poll() is not None:
            raise SystemExit(f"the worker did not start: {(work / f'worker-{name}.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _requests(app, count: int, base: int) -> list:
    from webapp.domain import ledger
    from webapp.storage import db

    made = []
    with app.app_context(), db.database.connection_context():
        for i in range(count):
            made.append(ledger.create_request(ledger.NewRequest(
                amount_minor=base + i * 10, currency="UGX", customer_name="Bench Payer",
                customer_phone=f"+25677{base + i:07d}", expires_in=timedelta(hours=1)), actor="bench"))
    return made


def _pay(app, requests_, gap_s: float) -> dict[str, tuple[float, float]]:
    """Pay each request through the ledger; reference → (reported at, committed at)."""
    from webapp.domain import ledger
    from webapp.storage import db
    from webapp.storage.models import utcnow

    paid = {}
    with app.app_context(), db.database.connection_context():
        for request in requests_:
            reported = time.time()
            result = ledger.ingest_payment(ledger.PaymentObservation(
                source="api", source_ref=f"bench-{request.reference}", amount_minor=request.amount_minor,
                currency="UGX", received_at=utcnow(), transaction_id=f"BX{request.id:08d}",
                note=request.reference), actor="bench")
            if result.payment.request_id != request.id:
                raise SystemExit(f"{request.reference} was not paid by its payment: {result.decision}")
            paid[request.reference] = (reported, time.time())
            if gap_s:
                time.sleep(gap_s)  # a benchmark, not a test: payments arrive at a steady pace
    return paid


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _arrivals(got: list[dict]) -> dict[str, dict]:
    return {json.loads(g["body"])["data"]["reference"]: g for g in got}


def _latency(paid: dict, got: list[dict]) -> None:
    arrived = _arrivals(got)
    from_report = [arrived[ref]["received_at"] - t[0] for ref, t in paid.items() if ref in arrived]
    from_commit = [arrived[ref]["received_at"] - t[1] for ref, t in paid.items() if ref in arrived]
    verified = sum(1 for g in got if g["verified"] == [0])
    print(f"{'from':<18}{'n':>5}{'lost':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, values in (("payment reported", from_report), ("commit", from_commit)):
        if not values:
            print(f"{name:<18}{0:>5}{len(paid):>6}")
            continue
        print(f"{name:<18}{len(values):>5}{len(paid) - len(values):>6}"
              + "".join(f"{_pct(values, q) * 1000:>9.1f}" for q in (50, 95, 99)) + f"{max(values) * 1000:>9.1f}")
    print(f"signatures verified by the receiver (standardwebhooks): {verified}/{len(got)}")
    p95 = _pct(from_report, 95) if from_report else float("inf")
    print(f"goal p95 ≤ 1 s: {'met' if p95 <= 1.0 and len(from_report) == len(paid) else 'NOT met'} "
          f"(p95 {p95 * 1000:.1f} ms)")


def _throughput(paid: dict, got: list[dict]) -> None:
    times = sorted(g["received_at"] for g in got)
    lost = len(paid) - len(_arrivals(got))
    if len(times) < 2:
        print(f"throughput: only {len(times)} deliveries arrived")
        return
    span = times[-1] - times[0]
    print(f"one worker: {len(times)} deliveries in {span:.2f} s (first to last) = "
          f"{(len(times) - 1) / span:.1f} deliveries/s; lost {lost}")


if __name__ == "__main__":
    main()
