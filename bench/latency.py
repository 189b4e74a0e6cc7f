"""Mail → WhatsApp latency: IMAP IDLE against polling every 5 s and every 120 s, and an SMS
posted by the phone (POST /hooks/sms/<source>) → WhatsApp, in one run.

    python bench/latency.py [--window 240] [--idle 40] [--poll5 30] [--poll120 8] [--sms 40]

Runs the real processes on one machine: the sandbox IMAP server (pymap) and the
sandbox WhatsApp server (in this process), `flask mailbox watch`, two
`rq worker --with-scheduler` and the scheduler process (`flask jobs scheduler`), on a fresh
SQLite database and a throw-away redis-server of its own (BENCH_REDIS_URL names another;
a database of a shared server is never flushed from here, since other stacks may live there). Three mailbox sources on three IMAP
users: one with IDLE, two polled by rq-scheduler (interval_s 5 and 120). For each
sample a request is created, then an MTN payment mail for it is appended at a
random moment inside the window; the latency is from the server accepting the
APPEND to the sandbox WhatsApp server accepting the customer's confirmation.
All three kinds run interleaved in the same window, so the run takes about
window + 130 s (~6 min by default); 120-s polling gets fewer samples because
each one costs up to two minutes of waiting (its p95/p99 rest on few samples).
Goal: IDLE p95 ≤ 1 s, ≥ 5× faster than 5-s polling, ≥ 100× faster than 120-s.

The `sms` samples run the web process too (gunicorn, as in production) with an `sms` source
in the capcom6 format: an MTN SMS is posted, signed, the way SMS Gateway for Android posts it
(sandbox/sms_forwarder.py); the latency is from the moment the POST is sent to the sandbox
WhatsApp server accepting the confirmation. Goal: SMS p95 ≤ 0.5 s.

Settings are the shipped defaults (printed at the start): WhatsApp pacing as a new
install has it (reminders 30/min, confirmations and alerts their own 60/min budget,
a 250-ms jittered gap between sends, hour/day/per-recipient caps), pending alerts after
120 s, two workers. `--caps-off` raises every cap and drops the gap, to time the path
alone. The machine's load average is printed too: figures from a shared machine vary;
ratios within one run hold better.
"""
from __future__ import annotations

import argparse
import json
import os
import random
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

MODES = {"idle": (True, 60), "poll5": (False, 5), "poll120": (False, 120)}
SMS_KEY = "bench-sms-signing-key-0123456789abcdefgh"


def main() -> None:
    args = _args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="pw-latency-"))
    local = None if os.environ.get("BENCH_REDIS_URL") else start_redis(work / "redis", persist=False)
    redis_url = os.environ.get("BENCH_REDIS_URL") or local.url
    env = {**os.environ, "PAYWATCH_ENV": "test", "DATABASE_URL": f"sqlite:///{work / 'paywatch.db'}",
           "REDIS_URL": redis_url, "SECRET_KEY": "bench-secret-" + "x" * 20, "PAYWATCH_INSTANCE_PATH": str(work),
           "PAYWATCH_TIMEZONE": "Africa/Kampala", "PAYWATCH_PHONE_REGION": "UG", "PAYWATCH_CURRENCY": "UGX",
           "PYTHONPATH": str(ROOT)}
    from sandbox.imap import append, start_imap
    from sandbox.mail import SMS_FORWARDER, mtn_payment
    from sandbox.server import ServerThread
    from sandbox.whatsapp import connect_session
    from sandbox.whatsapp import make_app as make_whatsapp

    imap = start_imap(users={mode: "pw" for mode in MODES})
    whatsapp = ServerThread(make_whatsapp("bench-secret", step_seconds=0.01, ack_delays=None)).start()
    env.update(WPPCONNECT_URL=whatsapp.url, WPPCONNECT_SECRET_KEY="bench-secret", WPPCONNECT_SESSION="paywatch",
               **{f"BENCH_IMAP_{m.upper()}": m for m in MODES}, BENCH_IMAP_PASSWORD="pw", BENCH_SMS_KEY=SMS_KEY)
    os.environ.update(env)
    connect_session(whatsapp.url, "paywatch", "bench-secret", timeout=30)
    app = _prepare(env, imap, work, SMS_FORWARDER, caps_off=args.caps_off)
    web_port = _free_port()
    processes = _start(env, work, web_port)
    try:
        _wait_watching(app)
        _wait_web(web_port)
        samples = _plan(args)
        print(f"{len(samples)} mails and SMS over {args.window} s; waiting up to {args.window + 150} s", flush=True)
        sent = _deliver(app, imap, samples, append, mtn_payment, f"http://127.0.0.1:{web_port}")
        results = _collect(whatsapp.url, sent, deadline=time.time() + args.window + 150)
        _report(results, sent)
        print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        whatsapp.stop()
        imap.stop()
        if local:
            local.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=240.0, help="seconds over which mail is appended")
    parser.add_argument("--idle", type=int, default=40)
    parser.add_argument("--poll5", type=int, default=30)
    parser.add_argument("--poll120", type=int, default=8)
    parser.add_argument("--sms", type=int, default=40, help="SMS posted to the hook")
    parser.add_argument("--caps-off", action="store_true",
                        help="raise every WhatsApp cap and drop the gap between sends (the path alone)")
    return parser.parse_args()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_web(port: int) -> None:
    import requests

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("the web process did not answer within 60 s")


CAPS_OFF = {"send_gap_ms": 0, "cap_per_minute": 10000, "cap_transactional_per_minute": 10000, "cap_per_hour": 100000,
            "cap_per_day": 1000000, "cap_per_recipient_hour": 1000, "cap_per_recipient_day": 10000}


def _prepare(env: dict, imap, work: Path, forwarder: str, *, caps_off: bool):
    from webapp import create_app
    from webapp.domain import options, sources
    from webapp.storage import db

    app = create_app()
    with app.app_context(), db.database.connection_context():
        db.upgrade()
        if caps_off:  # the path alone: no sample waits for a quota or a gap
            options.update({k: v for k, v in CAPS_OFF.items() if k in options.OPTIONS}, actor="bench")
        values = options.current()
        pacing = {k: v for k, v in values.items() if k.startswith(("cap_", "send_gap"))}
        print(f"settings: {'caps off' if caps_off else 'shipped defaults'}; pending alerts after "
              f"{values['pending_alert_seconds']} s; WhatsApp {json.dumps(pacing)}; 2 rq workers "
              "(jobs.worker.Worker: fast, default, slow), `mailbox watch`, `jobs scheduler --interval 1`; SQLite; "
              "sandbox IMAP (pymap) and WhatsApp in this process; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        for mode, (idle, interval) in MODES.items():
            sources.save({"kind": "mailbox", "name": f"bench-{mode}", "interval_s": interval, "config": {
                "host": imap.host, "port": imap.port, "ssl": False, "idle": idle, "providers": ["mtn_ug"],
                "username_env": f"BENCH_IMAP_{mode.upper()}", "password_env": "BENCH_IMAP_PASSWORD",
                "trusted_senders": [forwarder]}}, actor="bench")
        sources.save({"kind": "sms", "name": "bench-sms", "interval_s": 900, "config": {
            "format": "capcom6", "secret_env": "BENCH_SMS_KEY", "providers": ["mtn_ug"]}}, actor="bench")
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "schedule"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise SystemExit(done.stdout + done.stderr)
    return app


def _start(env: dict, work: Path, web_port: int) -> list[subprocess.Popen]:
    bin_dir, url = Path(sys.executable).parent, env["REDIS_URL"]
    commands = [
        [str(bin_dir / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{web_port}", "wsgi:app"],
        [sys.executable, "-m", "flask", "--app", "wsgi", "mailbox", "watch", "--rescan-seconds", "5"],
        [str(bin_dir / "rq"), "worker", "--with-scheduler", "-w", "jobs.worker.Worker", "--url", url,
         "fast", "default", "slow"],
        [str(bin_dir / "rq"), "worker", "-w", "jobs.worker.Worker", "--url", url, "fast", "default", "slow"],
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "scheduler", "--interval", "1"],
    ]
    return [subprocess.Popen(c, cwd=ROOT, env=env, stdout=open(work / f"p{i}.log", "w"), stderr=subprocess.STDOUT)
            for i, c in enumerate(commands)]


def _wait_watching(app) -> None:
    from webapp.storage import db
    from webapp.storage.models import Source

    deadline = time.time() + 60
    while time.time() < deadline:
        with app.app_context(), db.database.connection_context():
            state = Source.get(Source.name == "bench-idle").state or {}
        if (state.get("watch") or {}).get("mode") == "idle" and (state.get("watch") or {}).get("connected"):
            return
        time.sleep(0.2)
    raise SystemExit("the watcher did not start IDLE on bench-idle within 60 s")


def _plan(args) -> list[tuple[float, str]]:
    rng = random.Random()
    samples = [(rng.uniform(2, args.window), mode) for mode, n in
               (("idle", args.idle), ("poll5", args.poll5), ("poll120", args.poll120), ("sms", args.sms))
               for _ in range(n)]
    return sorted(samples)


def _deliver(app, imap, samples, append, render, web_url: str) -> dict[str, tuple[str, float]]:
    """Create each request, then append its mail (or post its SMS) at its moment;
    phone → (mode, append accepted at / SMS post sent at)."""
    from sandbox import sms_forwarder
    from webapp.domain import ledger
    from webapp.storage import db

    sent: dict[str, tuple[str, float]] = {}
    start = time.time()
    for index, (at, mode) in enumerate(samples):
        phone = f"+25677{index:07d}"
        amount = 1000 + index * 10
        with app.app_context(), db.database.connection_context():
            ledger.create_request(ledger.NewRequest(amount_minor=amount, currency="UGX", customer_name="Bench Payer",
                                                    customer_phone=phone, expires_in=timedelta(minutes=30)),
                                  actor="bench")
        if mode == "sms":
            text = sms_forwarder.mtn_received(amount, sender_name="Bench Payer", sender_phone=phone,
                                              transaction_id=f"9{index:010d}")
            delay = start + at - time.time()
            if delay > 0:
                time.sleep(delay)
            posted_at = time.time()
            response = sms_forwarder.post(web_url, "bench-sms", sms_forwarder.capcom6(SMS_KEY, "MTNMobMoney", text))
            if response.status_code != 202:
                raise SystemExit(f"the hook answered {response.status_code}: {response.text[:300]}")
            sent[phone.lstrip("+")] = (mode, posted_at)
            continue
        raw = render(amount, sender_name="Bench Payer", sender_phone=phone).raw
        delay = start + at - time.time()
        if delay > 0:
            time.sleep(delay)  # a benchmark, not a test: mail arrives when planned
        append(imap, mode, "pw", "INBOX", raw)
        sent[phone.lstrip("+")] = (mode, time.time())  # APPEND answered: the server has it
    return sent


def _collect(url: str, sent: dict, deadline: float) -> dict[str, list[float]]:
    import requests

    results: dict[str, list[float]] = {mode: [] for mode in (*MODES, "sms")}
    seen: set[str] = set()
    while time.time() < deadline and len(seen) < len(sent):
        for message in requests.get(f"{url}/_sandbox/messages", timeout=5).json()["messages"]:
            phone = message["phone"]
            if phone in sent and phone not in seen:
                seen.add(phone)
                mode, appended = sent[phone]
                results[mode].append(message["time"] - appended)
        # The server stamps each message: looking less often changes no figure, and the whole list
        # 20 times a second cost this process (which also runs the IMAP and WhatsApp servers) its CPU.
        time.sleep(0.5)
    return results


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _report(results: dict[str, list[float]], sent: dict) -> None:
    print(f"\n{'mode':<9}{'n':>4}{'lost':>6}{'p50 s':>9}{'p95 s':>9}{'p99 s':>9}{'max s':>9}")
    table = {}
    for mode in (*MODES, "sms"):
        values = results[mode]
        expected = sum(1 for m, _ in sent.values() if m == mode)
        if not values:
            print(f"{mode:<9}{0:>4}{expected:>6}")
            continue
        row = {q: _pct(values, q) for q in (50, 95, 99)}
        table[mode] = row
        print(f"{mode:<9}{len(values):>4}{expected - len(values):>6}{row[50]:>9.3f}{row[95]:>9.3f}"
              f"{row[99]:>9.3f}{max(values):>9.3f}")
    if {"idle", "poll5", "poll120"} <= set(table):
        idle = table["idle"][95]
        print(f"\nIDLE p95 {idle:.3f} s (goal ≤ 1 s); p95 ratio vs 5-s polling {table['poll5'][95] / idle:.1f}× "
              f"(goal ≥ 5×), vs 120-s polling {table['poll120'][95] / idle:.0f}× (goal ≥ 100×); "
              f"p50 ratios {table['poll5'][50] / table['idle'][50]:.1f}× and "
              f"{table['poll120'][50] / table['idle'][50]:.0f}×")
    if "sms" in table:
        print(f"SMS posted → WhatsApp p95 {table['sms'][95]:.3f} s (goal ≤ 0.5 s)")
    print(json.dumps({m: sorted(round(v, 3) for v in vs) for m, vs in results.items()}))


if __name__ == "__main__":
    main()
