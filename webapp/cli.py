"""flask commands (`flask --app wsgi …`): db, users, jobs, mailbox, parsers, dev."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from webapp.config import ROOT, child_environment
from webapp.domain import accounts, sources
from webapp.plumbing import heap, jobqueue
from webapp.plumbing.logs import safe_url
from webapp.storage import db
from webapp.storage.models import Role

db_cli = AppGroup("db", help="Database schema.")
users_cli = AppGroup("users", help="Staff accounts.")
jobs_cli = AppGroup("jobs", help="Background jobs.")
apikeys_cli = AppGroup("apikeys", help="API keys.")
sources_cli = AppGroup("sources", help="Where money is read: portal, mailbox, gateway sources.")
mailbox_cli = AppGroup("mailbox", help="Mailbox sources.")
parsers_cli = AppGroup("parsers", help="Mailbox parsers (jobs/providers/*.toml).")
agents_cli = AppGroup("agents", help="Agents and their leads.")
payers_cli = AppGroup("payers", help="The payer roster (fees and invoices).")
dev_cli = AppGroup("dev", help="One-machine set-up (used by make run / make demo).")


def init_app(app: Flask) -> None:
    from webapp import cli_ops
    from webapp.cli_webhooks import webhooks_cli

    for group in (db_cli, users_cli, jobs_cli, apikeys_cli, sources_cli, mailbox_cli, parsers_cli, agents_cli,
                  payers_cli, dev_cli):
        app.cli.add_command(group)
    app.cli.add_command(vouchers_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(cli_ops.ops_cli)
    db_cli.add_command(cli_ops.db_backup)
    db_cli.add_command(cli_ops.db_restore)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (idempotent)."""
    applied = db.upgrade()
    click.echo("applied: " + ", ".join(applied) if applied else "database is up to date")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(Role.ALL), default=Role.STAFF, show_default=True)
@click.option("--name", default="")
@click.option("--password", help="Prompted for when not given.")
def users_create(email: str, role: str, name: str, password: str | None) -> None:
    """Create a staff user."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with db.database.connection_context():
        try:
            user = accounts.create_user(email, password, role, name, actor="cli")
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.email} ({user.role})")


@users_cli.command("bootstrap")
def users_bootstrap() -> None:
    """Create the first admin on an empty database (PAYWATCH_ADMIN_EMAIL / _PASSWORD)."""
    settings = current_app.config["PAYWATCH"]
    with db.database.connection_context():
        outcome = accounts.ensure_first_admin(settings.admin_email, settings.admin_password)
    if outcome is None:
        click.echo("users exist; no first admin created")
        return
    user, generated = outcome
    if generated:
        click.echo(f"first admin: {user.email}  password: {generated}  (shown once; change it after logging in)")
    else:
        click.echo(f"first admin: {user.email} (password from PAYWATCH_ADMIN_PASSWORD)")


@apikeys_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(("staff", "admin")), default="staff", show_default=True)
@click.option("--rate-limit", default=None, help="this key's own limit, e.g. '100 per minute' "
              "(default: PAYWATCH_API_RATE_LIMIT)")
def apikeys_create(name: str, role: str, rate_limit: str | None) -> None:
    """Create an API key; prints it once (only a hash is stored)."""
    from webapp.domain import apikeys

    with db.database.connection_context():
        try:
            row, key = apikeys.create(name, role, actor="cli", rate_limit=rate_limit)
        except apikeys.ApiKeyError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"API key {row.name!r} ({row.role}, {row.rate_limit or 'default rate limit'}): {key}")
    click.echo("Shown once: store it now. Use it as  Authorization: Bearer <key>")


@sources_cli.command("add")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
def sources_add(path: str) -> None:
    """Add a source from a JSON file (or replace the one with the same name)."""
    import json


    try:
        spec = json.loads(Path(path).read_text())
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from None
    with db.database.connection_context():
        try:
            source, created = sources.save(spec, actor="cli")
        except sources.SourceError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{'added' if created else 'updated'} {source.kind} source {source.name!r} "
               f"(every {source.interval_s} s{'' if source.enabled else ', disabled'})")
    _reschedule_sources()


@sources_cli.command("list")
def sources_list() -> None:
    """Every source with its health."""

    with db.database.connection_context():
        rows = sources.all_freshness()
    if not rows:
        click.echo("no sources; add one with: flask --app wsgi sources add --file F.json")
    for f in rows:
        state = "ok" if f.ok else "ALARM" if f.alarms else "stale" if f.enabled else "disabled"
        when = f.last_ok_at.isoformat(timespec="seconds") if f.last_ok_at else "never"
        click.echo(f"{f.name:<20} {f.kind:<8} {state:<8} last ok {when}")
        for code, message in f.alarms.items():
            click.echo(f"    alarm {code}: {message}")
        if f.last_error:
            click.echo(f"    last error: {f.last_error}")


@sources_cli.command("run")
@click.argument("name")
def sources_run(name: str) -> None:
    """Run one pass of source NAME now, inline, and print what it saw."""
    import json


    with db.database.connection_context():
        try:
            source = sources.get(name)
        except sources.SourceError as exc:
            raise click.ClickException(str(exc)) from None
    job = sources.PASS_JOBS.get(source.kind)
    if job is None or job not in jobqueue.JOBS:
        raise click.ClickException(f"{source.kind} sources cannot be run in this version")
    summary = jobqueue.run_inline(job, source.id)
    click.echo(json.dumps(summary, indent=2, default=str))


def _reschedule_sources() -> None:
    try:
        from rq_scheduler import Scheduler

        with db.database.connection_context():
            changes = sources.sync_schedule(Scheduler(connection=jobqueue.redis_connection()))
        click.echo(f"schedule: {len(changes['added'])} job(s) registered, {len(changes['removed'])} removed")
    except Exception as exc:  # Redis down: the source is saved; the scheduler process registers it later
        click.echo(f"source saved; its schedule is registered by the scheduler process once Redis answers "
                   f"({type(exc).__name__}: {exc})")


@jobs_cli.command("schedule")
def jobs_schedule() -> None:
    """Register the recurring jobs and source passes with rq-scheduler now (fixed ids; safe to repeat).

    The scheduler process (`jobs scheduler`) does the same by itself at start and every 15 s.
    """
    from rq_scheduler import Scheduler

    with db.database.connection_context():
        changes = sources.sync_schedule(Scheduler(connection=jobqueue.redis_connection()))
    for job_id in changes["added"]:
        click.echo(f"scheduled {job_id}")
    for job_id in changes["kept"]:
        click.echo(f"already scheduled {job_id}")
    for job_id in changes["removed"]:
        click.echo(f"removed {job_id}")


@jobs_cli.command("scheduler")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.1),
              help="How often due recurring jobs are moved to their queues (seconds).")
def jobs_scheduler(interval: float) -> None:
    """The scheduler process: runs the recurring jobs, and keeps them registered by itself
    (at start, every 15 s, and when Redis answers again after an outage)."""
    import importlib

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run = importlib.import_module("jobs.scheduler").run  # by name: webapp never imports jobs
    heap.freeze_startup()
    click.echo(f"scheduler: recurring jobs every {interval:g} s (Ctrl-C stops)")
    run(current_app._get_current_object(), stop, interval=interval)


@jobs_cli.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Enqueue job NAME now (for cron)."""
    if name not in jobqueue.JOBS:
        raise click.ClickException(f"unknown job {name!r}; known: {', '.join(sorted(jobqueue.JOBS))}")
    from redis.exceptions import RedisError

    try:
        job = jobqueue.enqueue(name)
    except RedisError as exc:
        raise click.ClickException(f"{name} not enqueued: Redis did not answer ({type(exc).__name__}: {exc})") from None
    click.echo(f"enqueued {name} as {job.id}")


@mailbox_cli.command("watch")
@click.option("--rescan-seconds", default=30.0, show_default=True,
              help="How often the list of mailbox sources is re-read.")
@click.option("--renew-seconds", type=float, default=None,
              help="Re-issue IDLE this often (default: the source's interval_s, at most 25 min).")
def mailbox_watch(rescan_seconds: float, renew_seconds: float | None) -> None:
    """The IMAP IDLE watcher: one IDLE connection per enabled mailbox source; new mail enqueues a fetch."""
    import importlib
    import logging

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    watch = importlib.import_module("jobs.mailbox_watch").watch  # by name: webapp never imports jobs
    heap.freeze_startup()
    click.echo("mailbox watcher: watching every enabled mailbox source with IDLE (Ctrl-C stops)")
    watch(current_app._get_current_object(), stop, rescan_s=rescan_seconds, renew_s=renew_seconds)


@parsers_cli.command("test")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", "source_name", help="Use this mailbox source's providers and trusted senders.")
@click.option("--trust", multiple=True, help="Also trust this forwarder address (repeatable).")
@click.option("--providers-dir", type=click.Path(exists=True, file_okay=False),
              help="Also load the provider TOML files in this directory.")
def parsers_test(path: str, source_name: str | None, trust: tuple[str, ...], providers_dir: str | None) -> None:
    """Show what the mailbox parsers extract from one mail (F.eml), and why."""
    import importlib

    config = None
    if source_name:
        from webapp.domain import sources

        with db.database.connection_context():
            try:
                config = sources.get(source_name).config
            except sources.SourceError as exc:
                raise click.ClickException(str(exc)) from None
    mailbox = importlib.import_module("jobs.mailbox")  # by name: webapp never imports jobs
    try:
        text = mailbox.explain_file(Path(path).read_bytes(), config=config, trusted=trust,
                                    providers_dir=providers_dir)
    except mailbox.MailboxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text)


@agents_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", type=click.Choice(("agents", "leads")),
              help="What the file holds (default: leads when the header names agent_code, else agents).")
def agents_import(path: str, kind: str | None) -> None:
    """Import agents (name,phone,code) or leads (name,phone,agent_code) from a CSV file; report rejected lines."""
    from webapp.domain import agents

    with db.database.connection_context():
        try:
            report = agents.import_csv(agents.decode(Path(path).read_bytes()), actor="cli", kind=kind)
        except agents.AgentError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(f"{report.kind}: imported {report.created}, updated {report.updated}, "
               f"unchanged {report.unchanged}, rejected {len(report.rejected)}")
    for number, reason in report.rejected:
        click.echo(f"  line {number}: {reason}")


@payers_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def payers_import(path: str) -> None:
    """Import payers (code,name,phones,group; phones separated by ";") from a CSV file; report rejected lines."""
    from webapp.domain import agents, payers

    with db.database.connection_context():
        try:
            report = payers.import_csv(agents.decode(Path(path).read_bytes()), actor="cli")
        except agents.AgentError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(f"payers: imported {report.created}, updated {report.updated}, "
               f"unchanged {report.unchanged}, rejected {len(report.rejected)}")
    for number, reason in report.rejected:
        click.echo(f"  line {number}: {reason}")


@dev_cli.command("up")
@click.option("--demo", is_flag=True, help="Also run the sandbox (python -m sandbox).")
def dev_up(demo: bool) -> None:
    """Migrations, first admin, a local Redis if needed, recurring jobs, then every process (honcho)."""
    from webapp.plumbing.devstack import ensure_redis

    settings = current_app.config["PAYWATCH"]
    click.echo(f"database: {safe_url(settings.database_url)}")
    applied = db.upgrade()
    click.echo("migrations applied: " + ", ".join(applied) if applied else "database is up to date")
    click.get_current_context().invoke(users_bootstrap)
    if demo:
        _add_demo_sources()
    local = ensure_redis(settings.redis_url, settings.instance_path / "redis")
    click.echo(f"redis: {'started local redis-server at ' if local else 'using '}{safe_url(settings.redis_url)}")
    try:
        click.get_current_context().invoke(jobs_schedule)
        procfile = _procfile(settings.instance_path, demo, settings.currency)
        env = child_environment(REDIS_URL=settings.redis_url, PORT=str(settings.port),
                                **({"PAYWATCH_DEMO": "1"} if demo else {}))
        click.echo(f"web: http://127.0.0.1:{settings.port}/  (Ctrl-C stops everything)")
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(ROOT)], env=env)
        # Ctrl-C reaches honcho through the terminal; a SIGTERM to us is passed on to it.
        signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGINT))
        while True:
            try:
                code = honcho.wait()
                break
            except KeyboardInterrupt:
                continue  # honcho got the same Ctrl-C and is stopping its processes
        sys.exit(code)
    finally:
        if local:
            local.stop()
            click.echo("stopped local redis-server")


def _add_demo_sources() -> None:
    """The sources of sandbox/demo/*.json, pointing at `python -m sandbox` (make demo)."""
    import json


    with db.database.connection_context():
        for path in sorted((ROOT / "sandbox" / "demo").glob("*.json")):
            spec = json.loads(path.read_text())
            if spec["kind"] == "portal":  # the portal's rows are in the demo's currency (python -m sandbox --currency)
                spec["config"]["currency"] = current_app.config["PAYWATCH"].currency
            source, created = sources.save(spec, actor="demo")
            click.echo(f"demo source {source.name!r} ({source.kind}) {'added' if created else 'up to date'}")
    from webapp.cli_webhooks import add_demo_endpoint

    add_demo_endpoint()


def _procfile(instance: Path, demo: bool, currency: str = "UGX") -> Path:
    procfile = ROOT / "Procfile"
    if not demo:
        return procfile
    combined = instance / "Procfile.demo"
    combined.write_text(procfile.read_text() + f"sandbox: python -m sandbox --currency {currency}\n")
    return combined


# ---- vouchers ------------------------------------------------------------------------

vouchers_cli = AppGroup("vouchers", help="Voucher pools.")


@vouchers_cli.command("import")
@click.argument("pool")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def vouchers_import(pool: str, path: str) -> None:
    """Add the codes of CSV file PATH (column `code`) to POOL; reports duplicates and rejected lines."""
    from webapp.domain import vouchers

    with open(path, encoding="utf-8-sig", newline="") as lines, db.database.connection_context():
        try:
            report = vouchers.import_codes(pool, lines, actor="cli")
        except vouchers.VoucherError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{report.pool}: {report.added} added, {len(report.duplicates)} duplicate(s), "
               f"{len(report.rejected)} rejected")
    for code in report.duplicates:
        click.echo(f"  duplicate: {code}")
    for line, text, why in report.rejected:
        click.echo(f"  line {line} rejected ({why}): {text}")
