"""flask commands for operators: `ops check worker|scheduler|watcher|web` (container healthchecks)
and `db backup PATH` / `db restore PATH`.

`ops check` exits 0 when the process is doing its job and 1 (printing why) when not:
- worker: a worker on this host (container) is registered in Redis with a fresh heartbeat
  and serves every queue between the live workers (webapp.domain.health.workers);
- scheduler: the scheduler process beat in the last 30 s and every recurring job is registered;
- watcher: the mailbox watcher's main loop beat recently, and every enabled IDLE mailbox
  source had contact with its server (IDLE renewal or a fetch trigger) within two renewals;
- web: /healthz-equivalent checks of the database and Redis.
"""
from __future__ import annotations

import socket
import sys
import time
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from webapp.domain import health
from webapp.plumbing import jobqueue
from webapp.plumbing.logs import safe_url
from webapp.storage import backups, db
from webapp.storage.models import Source, SourceKind, utcnow

ops_cli = AppGroup("ops", help="Operators: health checks for containers.")
WATCHER_MAX_AGE = 120  # the watcher beats every rescan (30 s by default)
IDLE_LIMIT_S = 25 * 60  # jobs.mailbox_watch renews IDLE at least this often


def _fail(reason: str) -> None:
    click.echo(f"FAIL: {reason}")
    sys.exit(1)


@ops_cli.command("check")
@click.argument("part", type=click.Choice(("worker", "scheduler", "watcher", "web")))
@click.option("--any-host", is_flag=True, help="worker: any live worker counts, not only one on this host.")
def ops_check(part: str, any_host: bool) -> None:
    """Exit 0 when PART is doing its job, 1 (with the reason) when not."""
    try:
        conn = jobqueue.redis_connection()
        conn.ping()
    except Exception as exc:  # Redis down: no part can do its job
        _fail(f"Redis does not answer ({type(exc).__name__}: {exc})")
    if part == "worker":
        state = health.workers(conn)
        host = socket.gethostname()
        mine = [w for w in state["each"] if w["live"] and (any_host or w["hostname"] == host)]
        if not mine:
            _fail(f"no live worker on {host} (registered here: "
                  f"{[w['name'] for w in state['each'] if w['hostname'] == host]}; live anywhere: {state['count']})")
        click.echo(f"ok: {len(mine)} live worker(s) on {host}, heartbeat "
                   f"{max(w['heartbeat_age_s'] for w in mine)} s ago")
    elif part == "scheduler":
        with db.database.connection_context():
            state = health.recurring_scheduler(conn, database_ok=True)
        age = state["process_heartbeat_age_s"]
        # Its own job only: the process loops and holds the schedule (the heartbeat job also needs a
        # worker, which the worker check covers).
        if age is None or age > health.HEARTBEAT_MAX_AGE or state["missing"]:
            _fail(f"scheduler beat {age} s ago, missing: {', '.join(state['missing']) or 'none'}")
        click.echo(f"ok: scheduler beat {state['process_heartbeat_age_s']} s ago, {state['registered']} jobs registered")
    elif part == "watcher":
        _check_watcher(conn)
    else:
        with db.database.connection_context():
            checks, _ = health.health()
        down = [name for name in ("database", "redis") if not checks[name]["ok"]]
        if down:
            _fail(", ".join(f"{name}: {checks[name].get('error')}" for name in down))
        click.echo("ok: database and Redis answer")


def _check_watcher(conn) -> None:
    beat = conn.get(jobqueue.WATCHER_BEAT_KEY)
    age = None if beat is None else round(time.time() - float(beat), 1)
    if age is None or age > WATCHER_MAX_AGE:
        _fail(f"the mailbox watcher has not beaten for {age if age is not None else 'ever'} s")
    now = utcnow()
    late = []
    with db.database.connection_context():
        rows = Source.select().where(Source.kind == SourceKind.MAILBOX, Source.enabled == True)  # noqa: E712
        for source in rows:
            if (source.config or {}).get("idle", True) is False:
                continue
            renew = min(max(source.interval_s, 10), IDLE_LIMIT_S)
            contact = (source.state or {}).get("last_contact_at")
            seen = datetime.fromisoformat(contact) if contact else None
            if seen is None or now - seen > timedelta(seconds=2 * renew + 60):
                late.append(f"{source.name} (last contact {contact or 'never'})")
    if late:
        _fail("no IDLE contact: " + ", ".join(late))
    click.echo(f"ok: watcher beat {age} s ago; every IDLE mailbox in contact")


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False))
def db_backup(path: str) -> None:
    """Write a consistent copy of the database to PATH (SQLite file or pg_dump archive)."""
    url = current_app.config["PAYWATCH"].database_url
    try:
        written = backups.backup(url, path)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {safe_url(url)} to {written} ({written.stat().st_size} bytes)")


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_restore(path: str, yes: bool) -> None:
    """Replace the database's content with the backup PATH (stop the other processes first)."""
    url = current_app.config["PAYWATCH"].database_url
    if not yes:
        click.confirm(f"Replace everything in {safe_url(url)} with {path}?", abort=True)
    if not db.database.is_closed():
        db.database.close()
    try:
        backups.restore(url, path)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    applied = db.upgrade()  # a backup from an older version gets this version's migrations
    click.echo(f"restored {safe_url(url)} from {path}" + (f"; then applied {', '.join(applied)}" if applied else ""))
