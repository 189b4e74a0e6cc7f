"""Chaos: traffic through every source and the API while the parts Paywatch leans on fail.

    python bench/chaos.py [--seconds 180] [--workers 2] [--database-url URL] [--short] [--json]

Runs real processes on one machine: the web app (gunicorn), N `rq worker --with-scheduler`,
the scheduler process (`flask jobs scheduler`), `flask mailbox watch`, on a fresh database
(SQLite by default; a PostgreSQL URL gets a fresh schema) and a redis-server of its own;
the sandbox WhatsApp, portal, ioTec gateway (with callbacks to the web app) and IMAP
servers in this process. Traffic for
`--seconds`: requests through the API (an integrator that retries with its Idempotency-Key
until it gets an answer), each paid through one channel — a provider SMS forwarded to the
mailbox (some forwarded twice, some also reported through the API: one transaction, several
reports), the API, the gateway (collect), the portal — and some never paid. Meanwhile, at
fixed fractions of the run: a worker is SIGKILLed (and replaced, as a supervisor would),
Redis is flushed, WhatsApp answers ~30 % 5xx and some sends time out after the message went
out, Redis is stopped for 10 s and started again empty, the IMAP server restarts, the portal
logs every session out. Then faults stop and the run waits for the work to settle.

It prints the invariants (all must be 0) and how long work took to resume after the last
disruption (goal ≤ 1 min); `--json` prints them as one JSON object on the last line. Exit
status 1 when an invariant fails. `--short` (used by tests/test_chaos.py) runs ~60 s of traffic.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

WA_SECRET, WA_SESSION = "chaos-secret", "paywatch"
IMAP_USER, IMAP_PASSWORD = "shop", "shop-pass"
PORTAL_USER, PORTAL_PASSWORD = "demo", "demo-pass"
IOTEC = {"IOTEC_CLIENT_ID": "sandbox-client", "IOTEC_CLIENT_SECRET": "sandbox-secret",
         "IOTEC_CALLBACK_SECRET": "chaos-callback"}
SETTLE_S = 300


@dataclass
class Money:
    """One payment the traffic made: how it went out, and what Paywatch should end up with."""

    channel: str  # mail, api, gateway, portal
    reference: str | None  # the request it pays (None for portal rows: the portal names it)
    transaction_id: str
    reports: int = 1  # how many reports of this one transaction were sent


@dataclass
class Run:
    money: list[Money] = field(default_factory=list)
    unpaid: list[str] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    last_disruption: float = 0.0
    resumed_at: float | None = None
    api_errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, start: float) -> None:
        self.events.append((round(time.time() - start, 1), what))
        print(f"[{time.time() - start:6.1f}s] {what}", flush=True)


def main() -> int:
    args = _args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the sandbox servers' access logs
    work = Path(tempfile.mkdtemp(prefix="pw-chaos-"))
    stack = Stack(args, work)
    try:
        stack.up()
        run = Run()
        start = time.time()
        chaos = threading.Thread(target=stack.chaos, args=(run, start), daemon=True)
        chaos.start()
        stack.traffic(run, start)
        chaos.join()
        run.note("traffic over; faults off; waiting for the work to settle", start)
        resumed = stack.settle(run)
        result = stack.invariants(run, resumed)
    finally:
        stack.down()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _report(result, args)
    return 0 if all(result[k] == 0 for k in INVARIANTS) and result["resumed_minutes"] <= 1 else 1


INVARIANTS = ("payments_lost", "payments_duplicated", "requests_paid_twice", "messages_sent_twice",
              "outbox_rows_stuck")


def _args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="seconds of traffic")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a fresh schema is made)")
    parser.add_argument("--short", action="store_true", help="60 s of traffic (the test's variant)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.short:
        args.seconds = min(args.seconds, 60.0)
    return args


class Stack:
    """Everything the run starts, and the faults it causes."""

    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.rng = random.Random(args.seed)
        self.processes: dict[str, subprocess.Popen] = {}
        self.servers: list = []
        self.schema = None

    # ------------------------------------------------------------------ set-up

    def up(self) -> None:
        from sandbox.gateway import DEFAULT_WALLET_ID, start_ticker
        from sandbox.gateway import make_app as make_gateway
        from sandbox.imap import start_imap
        from sandbox.portal import make_app as make_portal
        from sandbox.server import ServerThread
        from sandbox.whatsapp import connect_session
        from sandbox.whatsapp import make_app as make_whatsapp
        from webapp.plumbing.devstack import free_port, start_redis

        self.redis_port = free_port()
        self.redis = start_redis(self.work / "redis", self.redis_port, persist=False)
        self.redis_url = self.redis.url
        self.web_port = free_port()
        self.web = f"http://127.0.0.1:{self.web_port}"
        self.whatsapp = ServerThread(make_whatsapp(WA_SECRET, step_seconds=0.01, ack_delays=None)).start()
        self.portal = ServerThread(make_portal(seed_rows=0)).start()
        self.gateway_app = make_gateway(advance_after_s=2.0, callback_url=f"{self.web}/hooks/gateway/gw",
                                        callback_header_name="X-Chaos", callback_header_value=IOTEC["IOTEC_CALLBACK_SECRET"])
        self.gateway = ServerThread(self.gateway_app).start()
        self.ticker = start_ticker(self.gateway_app)
        self.imap = start_imap(users={IMAP_USER: IMAP_PASSWORD})
        self.servers = [self.whatsapp, self.portal, self.gateway]
        connect_session(self.whatsapp.url, WA_SESSION, WA_SECRET, timeout=30)
        self.env = {
            **os.environ, "PAYWATCH_ENV": "test", "DATABASE_URL": self._database_url(),
            "REDIS_URL": self.redis_url, "SECRET_KEY": "chaos-secret-key-" + "x" * 16,
            "PAYWATCH_INSTANCE_PATH": str(self.work / "instance"), "PAYWATCH_TIMEZONE": "Africa/Kampala",
            "PAYWATCH_PHONE_REGION": "UG", "PAYWATCH_CURRENCY": "UGX", "PAYWATCH_PENDING_ALERT_SECONDS": "20",
            "PAYWATCH_REQUEST_TTL_MINUTES": "3", "WPPCONNECT_URL": self.whatsapp.url,
            "WPPCONNECT_SECRET_KEY": WA_SECRET, "WPPCONNECT_SESSION": WA_SESSION,
            "SHOP_IMAP_USER": IMAP_USER, "SHOP_IMAP_PASSWORD": IMAP_PASSWORD,
            "ACME_PORTAL_USER": PORTAL_USER, "ACME_PORTAL_PASSWORD": PORTAL_PASSWORD, **IOTEC,
            "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
        }
        os.environ.update(self.env)  # this process's own app (set-up, checks) reads the same settings
        self._prepare(DEFAULT_WALLET_ID)
        self._start("web", ["gunicorn", "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2",
                            "--timeout", "60", "wsgi:app"])
        for n in range(self.args.workers):
            self._start(f"worker{n}", self._worker())
        self._start("scheduler", [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "scheduler",
                                  "--interval", "1"])
        self._start("watcher", [sys.executable, "-m", "flask", "--app", "wsgi", "mailbox", "watch"])
        _wait(lambda: _answers(f"{self.web}/healthz"), 60, "the web app")

    def _database_url(self) -> str:
        if not self.args.database_url:
            return f"sqlite:///{self.work / 'paywatch.db'}"
        import psycopg2

        self.schema = "chaos_" + secrets.token_hex(5)
        with psycopg2.connect(self.args.database_url) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {self.schema}")
        sep = "&" if "?" in self.args.database_url else "?"
        return f"{self.args.database_url}{sep}options={quote(f'-csearch_path={self.schema}')}"

    def _prepare(self, wallet_id: str) -> None:
        from webapp import create_app
        from webapp.domain import apikeys, options, sources
        from webapp.storage import db

        app = create_app()
        with app.app_context(), db.database.connection_context():
            db.upgrade()
            options.update({"send_gap_ms": 0, "cap_per_minute": 10000, "cap_per_hour": 100000,
                            "cap_per_day": 1000000, "cap_per_recipient_hour": 1000, "cap_per_recipient_day": 1000},
                           actor="chaos")
            # Its own limit, above what the run sends: the chaos run measures faults, not throttling.
            self.key = apikeys.create("chaos", "staff", rate_limit="100000 per hour")[1]
            sources.save({"kind": "mailbox", "name": "shop-mail", "interval_s": 30, "config": {
                "host": self.imap.host, "port": self.imap.port, "ssl": False, "idle": True,
                "username_env": "SHOP_IMAP_USER", "password_env": "SHOP_IMAP_PASSWORD",
                "trusted_senders": ["sms-relay@shop.example"]}}, actor="chaos")
            sources.save({"kind": "gateway", "name": "gw", "interval_s": 3, "config": {
                "provider": "iotec", "auth_url": self.gateway.url, "api_url": self.gateway.url,
                "client_id_env": "IOTEC_CLIENT_ID", "client_secret_env": "IOTEC_CLIENT_SECRET",
                "wallet_id": wallet_id, "currency": "ITX",
                "callback_header_name": "X-Chaos", "callback_header_env": "IOTEC_CALLBACK_SECRET"}}, actor="chaos")
            portal = json.loads((ROOT / "sandbox" / "demo" / "portal.json").read_text())
            portal.update(name="acme-portal", interval_s=5)
            portal["config"]["base_url"] = self.portal.url
            sources.save(portal, actor="chaos")
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "schedule"], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise SystemExit(done.stdout + done.stderr)

    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def _worker(self) -> list[str]:
        return [self._bin("rq"), "worker", "--with-scheduler", "-w", "jobs.worker.Worker", "--url", self.redis_url,
                "fast", "default", "slow"]

    def _start(self, name: str, command: list[str]) -> None:
        if command[0] == "gunicorn":
            command[0] = self._bin("gunicorn")
        log = open(self.work / f"{name}.log", "a")
        self.processes[name] = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def down(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.ticker.set()
        for server in self.servers:
            server.stop()
        self.imap.stop()
        self.redis.stop()
        if self.schema:
            import psycopg2

            with psycopg2.connect(self.args.database_url) as conn, conn.cursor() as cur:
                cur.execute(f"DROP SCHEMA {self.schema} CASCADE")

    # ------------------------------------------------------------------ traffic

    def api(self, method: str, path: str, body: dict | None = None, key: str | None = None,
            run: Run | None = None) -> dict:
        """An integrator's call: retried with the same Idempotency-Key until it is answered (4xx is an answer)."""
        headers = {"Authorization": f"Bearer {self.key}"}
        if key:
            headers["Idempotency-Key"] = key
        for attempt in range(120):
            try:
                response = requests.request(method, f"{self.web}/api/v1{path}", json=body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                if run:
                    run.api_errors[type(exc).__name__] += 1
                time.sleep(0.5)
                continue
            if response.status_code >= 500 or response.status_code == 409 and "in_progress" in response.text:
                if run:
                    run.api_errors[f"HTTP {response.status_code}"] += 1
                time.sleep(0.5)
                continue
            if response.status_code >= 400:
                raise SystemExit(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
            return response.json()
        raise SystemExit(f"{method} {path} never got an answer")

    def traffic(self, run: Run, start: float) -> None:
        from sandbox.imap import append
        from sandbox.mail import mtn_payment

        n = 0
        deadline = start + self.args.seconds
        while time.time() < deadline:
            n += 1
            channel = ("mail", "api", "gateway", "portal", "mail", "api", "unpaid")[n % 7]
            phone = f"+25677{n:07d}"
            amount = 1000 + n * 10
            name = f"Chaos Payer {n}"
            try:
                self._one(run, channel, n, phone, amount, name, append, mtn_payment)
            except Exception as exc:  # a sandbox call caught mid-restart: count it, go on
                run.api_errors[f"traffic {type(exc).__name__}"] += 1
            time.sleep(max(0.0, 0.8 - (time.time() % 0.8)))

    def _one(self, run: Run, channel: str, n: int, phone: str, amount: int, name: str, append, mtn_payment) -> None:
        body = {"amount": str(amount), "currency": "UGX", "customer_name": name, "customer_phone": phone}
        if channel == "portal":
            txn = f"PRT{n:08d}"
            row = {"customer": name, "phone": phone, "agent": "AG1", "amount": amount, "status": "Pending",
                   "reference": f"INV-{n:05d}"}
            added = requests.post(f"{self.portal.url}/_sandbox/payments", json=row, timeout=5).json()
            pid = added["payments"][0]["id"]
            threading.Timer(self.rng.uniform(3, 10), lambda: requests.post(
                f"{self.portal.url}/_sandbox/payments/{pid}", json={"status": "Completed"}, timeout=5)).start()
            with run.lock:
                run.money.append(Money("portal", None, pid))
            return
        if channel == "gateway":
            body.update(gateway="gw", collect=True)
        created = self.api("POST", "/requests", body, key=f"req-{n}", run=run)
        reference = created["reference"]
        if channel == "unpaid":
            run.unpaid.append(reference)
            return
        if channel == "gateway":
            with run.lock:
                run.money.append(Money("gateway", reference, created.get("external_id") or reference))
            return
        txn = f"{n:011d}"
        if channel == "api":
            self.api("POST", "/payments", {"source_ref": f"bank-{n}", "amount": str(amount), "currency": "UGX",
                                           "sender_name": name, "sender_phone": phone, "transaction_id": txn,
                                           "note": reference}, run=run)
            with run.lock:
                run.money.append(Money("api", reference, txn))
            return
        reports = 1
        raw = mtn_payment(amount, sender_name=name, sender_phone=phone, transaction_id=txn, rng=self.rng).raw
        append(self.imap, IMAP_USER, IMAP_PASSWORD, "INBOX", raw)
        if self.rng.random() < 0.3:  # forwarded twice: another Message-ID, the same transaction
            again = mtn_payment(amount, sender_name=name, sender_phone=phone, transaction_id=txn, rng=self.rng).raw
            append(self.imap, IMAP_USER, IMAP_PASSWORD, "INBOX", again)
            reports += 1
        if self.rng.random() < 0.3:  # and the bank's integration reports it too
            self.api("POST", "/payments", {"source_ref": f"bank-mail-{n}", "amount": str(amount), "currency": "UGX",
                                           "transaction_id": txn, "sender_phone": phone}, run=run)
            reports += 1
        with run.lock:
            run.money.append(Money("mail", reference, txn, reports))

    # ------------------------------------------------------------------ faults

    def chaos(self, run: Run, start: float) -> None:
        plan = [(0.15, self.kill_worker), (0.30, self.flush_redis), (0.40, self.whatsapp_faults_on),
                (0.55, self.redis_outage), (0.65, self.restart_imap), (0.75, self.portal_logout),
                (0.90, self.whatsapp_faults_off)]
        self.faulty = threading.Event()
        for fraction, action in plan:
            delay = start + fraction * self.args.seconds - time.time()
            if delay > 0:
                time.sleep(delay)
            action(run, start)

    def kill_worker(self, run: Run, start: float) -> None:
        name = "worker0"
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()
        run.note("worker0 SIGKILLed", start)
        time.sleep(3)
        self._start(name, self._worker())  # what a supervisor does
        run.note("worker0 replaced", start)
        run.last_disruption = time.time()

    def flush_redis(self, run: Run, start: float) -> None:
        from redis import Redis

        Redis.from_url(self.redis_url).flushall()
        run.note("Redis flushed (FLUSHALL)", start)
        run.last_disruption = time.time()

    def whatsapp_faults_on(self, run: Run, start: float) -> None:
        self.faulty.set()
        threading.Thread(target=self._whatsapp_faults, daemon=True).start()
        run.note("WhatsApp: ~30 % of sends answer 5xx, some time out after sending", start)

    def _whatsapp_faults(self) -> None:
        """Keep one fault queued for the next send, 5xx three times in ten, a timeout now and then."""
        timeouts = 0
        seen = 0
        while self.faulty.is_set():
            try:
                count = len(requests.get(f"{self.whatsapp.url}/_sandbox/messages", timeout=5).json()["messages"])
                queued = requests.get(f"{self.whatsapp.url}/_sandbox/faults", timeout=5).json()["faults"]
                if count != seen and not queued:
                    seen = count
                    roll = self.rng.random()
                    if roll < 0.3:
                        requests.post(f"{self.whatsapp.url}/_sandbox/faults", json={"kind": "error", "count": 1},
                                      timeout=5)
                    elif roll < 0.35 and timeouts < 3:
                        timeouts += 1
                        requests.post(f"{self.whatsapp.url}/_sandbox/faults",
                                      json={"kind": "timeout", "count": 1, "seconds": 25}, timeout=5)
            except requests.RequestException:
                pass
            time.sleep(0.1)

    def whatsapp_faults_off(self, run: Run, start: float) -> None:
        self.faulty.clear()
        time.sleep(0.3)
        requests.delete(f"{self.whatsapp.url}/_sandbox/faults", timeout=5)
        run.note("WhatsApp faults off", start)

    def redis_outage(self, run: Run, start: float) -> None:
        from webapp.plumbing.devstack import start_redis

        self.redis.stop()
        run.note("Redis stopped", start)
        time.sleep(10)
        self.redis = start_redis(self.work / "redis", self.redis_port, persist=False)
        run.note("Redis started again, empty", start)
        run.last_disruption = time.time()

    def restart_imap(self, run: Run, start: float) -> None:
        self.imap.restart(down_s=2.0)
        run.note("IMAP server restarted (connections dropped, mail kept)", start)
        run.last_disruption = time.time()
        threading.Thread(target=self._watch_resume, args=(run, start), daemon=True).start()

    def _watch_resume(self, run: Run, start: float) -> None:
        """After the last disruption: the moment every kind of work is flowing again."""
        from webapp import create_app
        from webapp.storage import db

        app = create_app()
        # The database object this thread opens and closes its connection on: another thread's
        # create_app() (settle()) re-points the db.database proxy meanwhile, and a context entered
        # on one object must be left on the same one.
        own = db.database.obj
        deadline = time.time() + SETTLE_S
        waited: list[str] = []  # what resumption waited for at the last look (said when it comes)
        while time.time() < deadline and run.resumed_at is None:
            with app.app_context(), own.connection_context():
                state = _state(run)
                if state["resumed"]:
                    run.resumed_at = time.time()
                    last = f" (the last to resume: {', '.join(waited)})" if waited else ""
                    run.note(f"all work resumed {run.resumed_at - run.last_disruption:.0f} s after the last "
                             f"disruption{last}", start)
                else:
                    waited = state["waiting"]
            time.sleep(1)

    def portal_logout(self, run: Run, start: float) -> None:
        requests.post(f"{self.portal.url}/_sandbox/sessions/expire", json={}, timeout=5)
        run.note("portal logged every session out", start)

    # ------------------------------------------------------------------ after

    def settle(self, run: Run) -> float | None:
        """Wait until the work is done; returns seconds from the last disruption to work resumed."""
        from webapp import create_app
        from webapp.storage import db

        app = create_app()
        own = db.database.obj  # as in _watch_resume: leave the connection on the object it was opened on
        deadline = time.time() + SETTLE_S
        while time.time() < deadline:
            with app.app_context(), own.connection_context():
                state = _state(run)
            if state["resumed"] and state["settled"] and run.resumed_at is not None:
                break
            time.sleep(1)
        return None if run.resumed_at is None else run.resumed_at - run.last_disruption

    def invariants(self, run: Run, resumed: float | None) -> dict:
        from webapp import create_app
        from webapp.storage import db

        app = create_app()
        with app.app_context(), db.database.connection_context():
            result = _invariants(run, self.whatsapp.url)
        result["resumed_minutes"] = round(resumed / 60, 2) if resumed is not None else 99.0
        result["api_retries"] = dict(run.api_errors)
        result["events"] = run.events
        result["settings"] = {"seconds": self.args.seconds, "workers": self.args.workers,
                              "database": "postgresql" if self.args.database_url else "sqlite"}
        return result


def _state(run: Run) -> dict:
    """Whether work has resumed (sends flowing, sources passing) and whether it has all settled."""
    from datetime import timedelta

    from webapp.storage.models import Notification, NotificationStatus, Payment, Source, utcnow

    now = utcnow()
    overdue = Notification.select().where(
        Notification.status.in_((NotificationStatus.PENDING, NotificationStatus.SENDING)),
        Notification.due_at < now - timedelta(seconds=15)).count()
    since = _aware(run.last_disruption)
    silent = [s.name for s in Source.select() if not (_contact(s) is not None and _contact(s) > since)]
    expected = sum(1 for m in run.money if m.channel != "portal")
    seen = Payment.select().where(Payment.source != "acme-portal").count()
    # Portal rows turn Completed up to 10 s after they are added, and the next pass reads them.
    portal_expected = sum(1 for m in run.money if m.channel == "portal")
    portal_seen = Payment.select().where(Payment.source == "acme-portal", Payment.source_ref.endswith(":paid")).count()
    return {"resumed": overdue == 0 and not silent,
            "settled": overdue == 0 and seen >= expected and portal_seen >= portal_expected,
            "waiting": ([f"{overdue} WhatsApp message(s) overdue"] if overdue else [])
                       + [f"source {name}" for name in silent]}


def _contact(source):
    """A source's last sign of life: a good pass, or (the watcher's IDLE) a contact."""
    from datetime import datetime

    contact = (source.state or {}).get("last_contact_at")
    moments = [m for m in (source.last_ok_at, datetime.fromisoformat(contact) if contact else None) if m]
    return max(moments) if moments else None


def _aware(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc)


def _invariants(run: Run, whatsapp_url: str) -> dict:
    from datetime import timedelta

    from peewee import fn

    from webapp.storage.models import Notification, NotificationStatus, Payment, PaymentRequest, PaymentSighting, utcnow

    lost = duplicated = 0
    for money in run.money:
        if money.channel == "portal":
            rows = Payment.select().where(Payment.source == "acme-portal",
                                          Payment.source_ref == f"{money.transaction_id}:paid")
        elif money.channel == "gateway":
            request = PaymentRequest.get(PaymentRequest.reference == money.reference)
            rows = Payment.select().where(Payment.source == "gw", Payment.source_ref == f"{request.external_id}:paid")
        else:
            rows = Payment.select().where(Payment.transaction_id == money.transaction_id)
        count = rows.count()
        lost += count == 0
        duplicated += max(0, count - 1)
    paid_twice = (PaymentRequest.select(PaymentRequest.id).join(Payment, on=(Payment.request == PaymentRequest.id))
                  .where(Payment.status == "confirmed").group_by(PaymentRequest.id)
                  .having(fn.COUNT(Payment.id) > 1).count())
    messages = requests.get(f"{whatsapp_url}/_sandbox/messages", timeout=10).json()["messages"]
    sent_twice = sum(n - 1 for n in Counter((m["phone"], m["body"]) for m in messages).values() if n > 1)
    stuck = Notification.select().where(
        Notification.status.in_((NotificationStatus.PENDING, NotificationStatus.SENDING)),
        Notification.due_at < utcnow() - timedelta(seconds=30)).count()
    by_status = Counter(Notification.select(Notification.status).tuples().execute())
    return {
        "payments_lost": lost, "payments_duplicated": duplicated, "requests_paid_twice": paid_twice,
        "messages_sent_twice": sent_twice, "outbox_rows_stuck": stuck,
        "money_sent": len(run.money), "reports_sent": sum(m.reports for m in run.money),
        "sightings": PaymentSighting.select().count(), "requests_unpaid_on_purpose": len(run.unpaid),
        "requests": dict(Counter(s for (s,) in PaymentRequest.select(PaymentRequest.status).tuples())),
        "notifications": {status: n for (status,), n in by_status.items()},
        "whatsapp_messages": len(messages),
    }


def _report(result: dict, args) -> None:
    print("\nchaos run:", json.dumps(result["settings"]))
    print(f"  money sent {result['money_sent']} ({result['reports_sent']} reports; {result['sightings']} recorded "
          f"as sightings), requests {result['requests']}, WhatsApp messages {result['whatsapp_messages']}, "
          f"outbox {result['notifications']}")
    print(f"  API calls retried by the integrator: {result['api_retries'] or 'none'}")
    for key in INVARIANTS:
        print(f"  {key.replace('_', ' '):<34}{result[key]:>6}   (goal 0)")
    print(f"  {'minutes until all work resumed':<34}{result['resumed_minutes']:>6}   (goal ≤ 1)")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "events"}))


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 600
    except requests.RequestException:
        return False


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
