"""A long-running process freezes what start-up built (webapp.plumbing.heap), so the garbage
collector no longer walks it: the worker, the web app (wsgi.py), the watcher and the scheduler."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import gc, json
import wsgi
walked = len(gc.get_objects())  # what a full collection still walks
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": walked}))
"""


def test_the_web_app_freezes_what_start_up_built(tmp_path):
    env = {"PAYWATCH_ENV": "test", "SECRET_KEY": "heap-" + "x" * 30, "PATH": "/usr/bin:/bin",
           "DATABASE_URL": f"sqlite:///{tmp_path}/heap.db", "PAYWATCH_INSTANCE_PATH": str(tmp_path),
           "REDIS_URL": "redis://127.0.0.1:1/0", "LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    # Tens of thousands of objects (modules, routes, models, templates) out of the collector's
    # walk; the few left are what the script itself made after.
    assert counts["frozen"] > 20_000
    assert counts["walked"] < counts["frozen"] / 10
