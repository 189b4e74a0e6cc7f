"""API fuzz: N hostile requests at every /api/v1 endpoint of a real gunicorn; counts 5xx and the slowest.

    python bench/fuzz_api.py [--requests 20000] [--seed 1]

Starts, on one machine: a throw-away redis-server (webapp.plumbing.devstack.start_redis), a fresh
SQLite database (migrated), an admin API key, and `gunicorn wsgi:app` with the project's
gunicorn.conf.py (2 workers × 4 threads, 30-s worker timeout). Requests are drawn by
hypothesis from sandbox/hostile.py (huge/deep/odd JSON, wrong types, boundary numbers,
control characters, odd headers, forged cursors, huge ids) for the endpoints read from the
app's URL map, and sent over one keep-alive HTTP connection. Prints requests tried, 5xx seen
(GET /api/v1/health's 503 is counted apart: it reports that no worker runs here, by design),
status counts, the slowest requests and whether gunicorn killed a worker.
Goal: 0 server errors, no request over ~1 s, no worker killed.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sandbox.hostile import HostileRequest, api_routes, hostile_request  # noqa: E402
from webapp.plumbing.devstack import free_port, start_redis  # noqa: E402

BIN = ROOT / ".venv" / "bin"


def main() -> None:
    args = _args()
    work = Path(tempfile.mkdtemp(prefix="pw-fuzz-"))
    redis = start_redis(work / "redis", persist=False)
    port = free_port()
    env = {**os.environ, "PAYWATCH_ENV": "test", "DATABASE_URL": f"sqlite:///{work / 'paywatch.db'}",
           "REDIS_URL": redis.url, "SECRET_KEY": "fuzz-secret-" + "x" * 20, "PAYWATCH_INSTANCE_PATH": str(work),
           "PAYWATCH_TIMEZONE": "Africa/Kampala", "PAYWATCH_PHONE_REGION": "UG", "PAYWATCH_CURRENCY": "UGX",
           "PYTHONPATH": str(ROOT)}
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    # A limit above what the run sends: every request should reach the validation it fuzzes, not a 429.
    created = subprocess.run([*flask, "apikeys", "create", "fuzz", "--role", "admin", "--rate-limit",
                              f"{max(args.requests * 2, 1000)} per hour"], env=env, cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
    key = created.split(": ", 1)[1].split()[0]
    log = (work / "gunicorn.log").open("w")
    web = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                            "wsgi:app"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(port)
        routes = _routes(env)
        stats = _fire(routes, port, key, args.requests, args.seed)
    finally:
        web.terminate()
        web.wait(timeout=30)
        log.close()
        redis.stop()
    _report(stats, routes, (work / "gunicorn.log").read_text(errors="replace"), args)
    shutil.rmtree(work, ignore_errors=True)  # the report has what its log said; a run that raised keeps it


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer within 30 s")


def _routes(env: dict) -> list:
    from webapp import create_app
    from webapp.config import load_settings

    return api_routes(create_app(load_settings(env)))


class Stats:
    def __init__(self):
        self.tried = 0
        self.server_errors: list[tuple[int, HostileRequest, str]] = []
        self.health_503 = 0
        self.statuses: Counter = Counter()
        self.per_route: Counter = Counter()
        self.slowest: list[tuple[float, str, str, int]] = []
        self.stalls = 0


def _fire(routes: list, port: int, key: str, count: int, seed: int) -> Stats:
    stats = Stats()
    conn = [http.client.HTTPConnection("127.0.0.1", port, timeout=30)]

    def send(hostile: HostileRequest) -> tuple[int, bytes]:
        for attempt in (1, 2):  # the server may close a keep-alive connection (e.g. after a 413)
            try:
                conn[0].request(hostile.method, hostile.path, body=hostile.body,
                                headers={**hostile.headers, "Authorization": f"Bearer {key}"})
                response = conn[0].getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError, BrokenPipeError) as exc:
                conn[0].close()
                conn[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if attempt == 2:
                    raise RuntimeError(f"{hostile.method} {hostile.path[:80]}: {exc!r}") from exc
        raise AssertionError("unreachable")

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data):
        hostile = data.draw(hostile_request(routes))
        started = time.perf_counter()
        try:
            status, body = send(hostile)
        except (TimeoutError, RuntimeError):
            status, body = 0, b""
            stats.stalls += 1
        took = time.perf_counter() - started
        stats.tried += 1
        stats.statuses[status] += 1
        stats.per_route[f"{hostile.method} {_route_of(hostile.path, routes)}"] += 1
        stats.slowest = sorted([*stats.slowest, (took, hostile.method, hostile.path[:90], status)], reverse=True)[:5]
        if hostile.path.startswith("/api/v1/health") and status == 503:
            stats.health_503 += 1
        elif status >= 500:
            stats.server_errors.append((status, hostile, body[:300].decode(errors="replace")))

    random.seed(seed)
    one()
    return stats


def _route_of(path: str, routes: list) -> str:
    bare = path.split("?", 1)[0]
    for route in sorted(routes, key=lambda r: -len(r.rule)):
        prefix = route.rule.split("<", 1)[0]
        if bare == route.rule or ("<" in route.rule and bare.startswith(prefix)
                                  and bare.count("/") == route.rule.count("/")):
            return route.rule
    return bare


def _report(stats: Stats, routes: list, gunicorn_log: str, args: argparse.Namespace) -> None:
    killed = gunicorn_log.count("WORKER TIMEOUT")
    print(f"API fuzz: {stats.tried} hostile requests at {len(routes)} endpoints "
          f"(gunicorn, SQLite, seed {args.seed})")
    print(f"  server errors (5xx):       {len(stats.server_errors)}")
    print(f"  stalls (no answer in 30 s): {stats.stalls}")
    print(f"  workers killed by timeout: {killed}")
    print(f"  /health 503 (no worker runs here, by design): {stats.health_503}")
    print("  statuses: " + ", ".join(f"{code}: {n}" for code, n in sorted(stats.statuses.items())))
    print("  per endpoint: " + ", ".join(f"{name} {n}" for name, n in sorted(stats.per_route.items())))
    print("  slowest:")
    for took, method, path, status in stats.slowest:
        print(f"    {took * 1000:8.1f} ms  {status}  {method} {path}")
    for status, hostile, body in stats.server_errors[:10]:
        print(f"  5xx {status}: {hostile.method} {hostile.path[:120]} headers={hostile.headers} "
              f"body={(hostile.body or b'')[:200]!r} → {body}")


if __name__ == "__main__":
    main()
