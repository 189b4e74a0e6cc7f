"""`flask --app wsgi ops check worker|scheduler|watcher|web`: the compose healthchecks fail when the
process is not doing its job (worker live on this host, scheduler beat + schedule, watcher's IDLE contact)."""
from __future__ import annotations

import time
from datetime import timedelta

from tests.conftest import wait_for
from webapp.domain import sources
from webapp.plumbing import jobqueue
from webapp.storage.models import utcnow


def _check(runner, part: str):
    result = runner.invoke(args=["ops", "check", part])
    return result.exit_code, result.output


def test_worker_and_scheduler_checks_follow_the_real_processes(runner, start_worker, scheduler):
    code, output = _check(runner, "worker")
    assert code == 1 and "no live worker" in output
    start_worker()
    code, output = _check(runner, "worker")
    assert code == 0 and "1 live worker(s)" in output, output
    # The scheduler process beats and registers the schedule.
    wait_for(lambda: _check(runner, "scheduler")[0] == 0, timeout=45, message="the scheduler check to pass")


def test_the_scheduler_check_fails_without_a_scheduler(runner, redis_conn):
    code, output = _check(runner, "scheduler")
    assert code == 1 and "scheduler beat None s ago, missing: paywatch-recurring-" in output


def test_the_watcher_check_needs_its_beat_and_every_idle_mailbox_in_contact(runner, domain, redis_conn):
    code, output = _check(runner, "watcher")
    assert code == 1 and "has not beaten" in output
    redis_conn.set(jobqueue.WATCHER_BEAT_KEY, time.time())
    assert _check(runner, "watcher")[0] == 0  # no mailbox source: nothing to be in contact with
    source, _ = domain(sources.save, {"kind": "mailbox", "name": "shop-mail", "interval_s": 60, "config": {
        "host": "127.0.0.1", "port": 9, "username_env": "U", "password_env": "P"}}, actor="test")
    code, output = _check(runner, "watcher")
    assert code == 1 and "shop-mail (last contact never)" in output
    domain(sources.record_pass, source.id, ok=True, last_contact_at=utcnow())
    assert _check(runner, "watcher")[0] == 0
    domain(sources.record_pass, source.id, ok=True, last_contact_at=utcnow() - timedelta(minutes=5))
    assert _check(runner, "watcher")[0] == 1  # renewals every 60 s: 5 min of silence is a dead IDLE


def test_the_web_check_needs_the_database_and_redis(runner, redis_control):
    assert _check(runner, "web")[0] == 0
    redis_control.stop()
    try:
        code, output = _check(runner, "web")
        assert code == 1 and "Redis does not answer" in output
    finally:
        redis_control.start()
