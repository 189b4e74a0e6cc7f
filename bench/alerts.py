"""Pending alerts: how late they reach WhatsApp, and whether a request paid just before
its due time ever gets one.

    .venv/bin/python bench/alerts.py                  # 300 requests over 30 s, 5-s delay
    .venv/bin/python bench/alerts.py --requests 600 --spread 60 --workers 2

Real parts: a throw-away redis-server, a SQLite file, `rq worker --with-scheduler`
processes, and the sandbox wppconnect server, which stamps each message when it
arrives. Requests are created at random times; a share of them is paid (through
ledger.ingest_payment) a fraction of a second before the alert is due. Lateness
is the sandbox's arrival time minus (created_at + delay). Goals: p99 ≤ 1.5 s late,
none early by more than the clock's grain, and 0 false alerts.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.server import ServerThread  # noqa: E402
from sandbox.whatsapp import connect_session  # noqa: E402
from sandbox.whatsapp import make_app as make_whatsapp
from webapp import create_app  # noqa: E402
from webapp.config import load_settings  # noqa: E402
from webapp.domain import ledger, options
from webapp.plumbing.devstack import start_redis  # noqa: E402
from webapp.storage import db
from webapp.storage.models import PaymentRequest, utcnow  # noqa: E402

SECRET, SESSION = "bench-secret", "paywatch"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--spread", type=float, default=30.0, help="seconds over which requests appear")
    parser.add_argument("--delay", type=int, default=5, help="pending-alert delay in seconds (120 in production)")
    parser.add_argument("--paid-share", type=float, default=0.25, help="share paid just before the alert is due")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="pw-alerts-"))
    redis = start_redis(tmp / "redis", persist=False)
    wa = ServerThread(make_whatsapp(SECRET, step_seconds=0.01, ack_delays=None)).start()
    env = {
        "PAYWATCH_ENV": "test", "SECRET_KEY": "bench-" + "x" * 20, "DATABASE_URL": f"sqlite:///{tmp}/alerts.db",
        "REDIS_URL": redis.url, "PAYWATCH_INSTANCE_PATH": str(tmp), "WPPCONNECT_URL": wa.url,
        "WPPCONNECT_SECRET_KEY": SECRET, "WPPCONNECT_SESSION": SESSION, "PAYWATCH_CURRENCY": "UGX",
        "PAYWATCH_PHONE_REGION": "UG", "PAYWATCH_PENDING_ALERT_SECONDS": str(args.delay), "LOG_LEVEL": "WARNING",
    }
    workers = []
    try:
        connect_session(wa.url, SESSION, SECRET)
        app = create_app(load_settings(env))
        with app.app_context():
            db.upgrade()
            with db.database.connection_context():
                # Pacing is the subject of other tests; here it would only measure the caps.
                # Every cap, the transactional budget and the per-recipient ones included (all the bench's
                # agent alerts go to one phone).
                options.update({"send_gap_ms": 0, "cap_per_minute": 10000, "cap_transactional_per_minute": 10000,
                                "cap_per_hour": 100000, "cap_per_day": 1000000, "cap_per_recipient_hour": 1000,
                                "cap_per_recipient_day": 10000}, actor="bench")
        bin_dir = Path(sys.executable).parent
        for _ in range(args.workers):
            workers.append(subprocess.Popen(
                [str(bin_dir / "rq"), "worker", "--with-scheduler", "--url", redis.url, "-w", "jobs.worker.Worker",
                 "fast", "default", "slow"],
                cwd=ROOT, env={**os.environ, **env}, stdout=open(tmp / f"worker-{len(workers)}.log", "w"),
                stderr=subprocess.STDOUT))
        time.sleep(3)  # let the workers start before the clock matters
        plan = sorted((rng.uniform(0, args.spread), i) for i in range(args.requests))
        paid_ahead = {i for _, i in plan if rng.random() < args.paid_share}
        created: dict[int, PaymentRequest] = {}
        payments: list[tuple[float, int]] = []
        start = time.monotonic()
        with app.app_context(), db.database.connection_context():
            pending = list(plan)
            while pending or payments:
                now = time.monotonic() - start
                if pending and pending[0][0] <= now:
                    _, i = pending.pop(0)
                    created[i] = ledger.create_request(ledger.NewRequest(
                        amount_minor=1000 + i, currency="UGX", customer_name=f"Customer {i}",
                        customer_phone=f"+25677{1000000 + i}", source="bench"), actor="bench")
                    if i in paid_ahead:
                        payments.append((now + args.delay - rng.uniform(0.1, 0.5), i))
                        payments.sort()
                    continue
                if payments and payments[0][0] <= now:
                    _, i = payments.pop(0)
                    r = created[i]
                    ledger.ingest_payment(ledger.PaymentObservation(
                        source="bench", source_ref=f"pay-{i}", amount_minor=r.amount_minor, currency="UGX",
                        received_at=utcnow(), sender_phone=r.customer_phone), actor="bench")
                    continue
                time.sleep(0.005)
        settle = time.monotonic() + args.delay + 15
        expected = args.requests - len(paid_ahead)
        while time.monotonic() < settle:
            alerts = [m for m in requests.get(f"{wa.url}/_sandbox/messages", timeout=5).json()["messages"]
                      if "still pending" in m["body"]]
            if len(alerts) >= expected:
                time.sleep(2)  # a late false alert would still arrive
                break
            time.sleep(0.5)
        messages = requests.get(f"{wa.url}/_sandbox/messages", timeout=5).json()["messages"]
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
        wa.stop()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the requests were read already; nothing else needs the files
    by_phone = {r.customer_phone.lstrip("+"): (i, r) for i, r in created.items()}
    lateness, false_alerts, alerted = [], 0, set()
    for m in messages:
        if "still pending" not in m["body"]:
            continue
        i, r = by_phone[m["phone"]]
        alerted.add(i)
        if i in paid_ahead:
            false_alerts += 1
            continue
        due = (r.created_at + timedelta(seconds=args.delay)).timestamp()
        lateness.append(m["time"] - due)
    missing = len([i for i in created if i not in paid_ahead and i not in alerted])
    print(f"pending alerts: {args.requests} requests over {args.spread:.0f} s, delay {args.delay} s, "
          f"{args.workers} worker(s); {len(paid_ahead)} paid 0.1–0.5 s before their alert was due")
    if lateness:
        print(f"lateness (s): p50 {percentile(lateness, 50):.3f}  p95 {percentile(lateness, 95):.3f}  "
              f"p99 {percentile(lateness, 99):.3f}  max {max(lateness):.3f}  earliest {min(lateness):+.3f}  "
              f"mean {statistics.mean(lateness):.3f}")
    print(f"alerts sent {len(lateness)}, missing {missing}, false alerts (paid before due) {false_alerts}")
    verdict = lateness and percentile(lateness, 99) <= 1.5 and min(lateness) > -1.0 and false_alerts == 0 and not missing
    print("goal (p99 ≤ 1.5 s, none early, 0 false, none missing): " + ("met" if verdict else "NOT met"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
