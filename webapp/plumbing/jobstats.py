"""How long jobs take, by job name: counted in Redis by every worker, read by /metrics.

One Redis hash per job name holds a Prometheus histogram (cumulative bucket counts,
sum, count) and counts by outcome, so any number of worker processes add to the same
series and a scrape of any web process reads all of them.
"""
from __future__ import annotations

from redis import Redis

KEY = "paywatch:jobstats:{name}"
NAMES_KEY = "paywatch:jobstats:names"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
MAX_NAMES = 200  # job names are ours (JOBS); a cap keeps odd descriptions from growing the set


def record(conn: Redis, name: str, seconds: float, outcome: str) -> None:
    """Add one run of job `name` that took `seconds` and ended `outcome` (finished, failed…)."""
    if conn.scard(NAMES_KEY) >= MAX_NAMES and not conn.sismember(NAMES_KEY, name):
        return
    key = KEY.format(name=name)
    pipe = conn.pipeline(transaction=False)
    pipe.sadd(NAMES_KEY, name)
    for bound in BUCKETS:
        if seconds <= bound:
            pipe.hincrby(key, f"le:{bound}", 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", seconds)
    pipe.hincrby(key, f"outcome:{outcome}", 1)
    pipe.execute()


def read(conn: Redis) -> dict[str, dict]:
    """{job name: {"buckets": [(bound, cumulative count)…], "count", "sum", "outcomes": {…}}}."""
    names = sorted(n.decode() for n in conn.smembers(NAMES_KEY))
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(KEY.format(name=name))
    stats = {}
    for name, raw in zip(names, pipe.execute()):
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        stats[name] = {
            "buckets": [(bound, int(fields.get(f"le:{bound}", 0))) for bound in BUCKETS],
            "count": int(fields.get("count", 0)),
            "sum": float(fields.get("sum", 0.0)),
            "outcomes": {k.removeprefix("outcome:"): int(v) for k, v in fields.items() if k.startswith("outcome:")},
        }
    return stats
