"""Sources: the configured places Paywatch reads (portal, mailbox, gateway, sms, webhook).

A source is added from a JSON file (`flask --app wsgi sources add --file F.json`):
`{"kind", "name", "enabled", "interval_s", "config": {…}}`. Secrets never sit in the
file or the database: the config names environment variables (`"password_env":
"ACME_PASSWORD"`), read through webapp.config.secret() when a job runs.

What every source job reports goes through here: each pass (record_pass), and
alarms, raised once and cleared when fixed (raise_alarm / clear_alarm), which
show red in the UI and in /api/v1/health and send the admins one WhatsApp.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webapp.domain import alerts, audit, billing
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Source, SourceKind, utcnow

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

# The job that runs one pass of a source of each kind (names in webapp.plumbing.jobqueue.JOBS).
PASS_JOBS = {"portal": "portal_pass", "mailbox": "mailbox_fetch", "gateway": "gateway_poll",
             "database": "billing_poll"}

# Config keys each kind needs (DESIGN.md "Source files"); more are allowed.
REQUIRED = {
    SourceKind.PORTAL: ("base_url", "login", "list", "columns", "status_map"),
    SourceKind.MAILBOX: ("host", "username_env", "password_env"),
    SourceKind.GATEWAY: ("provider", "auth_url", "api_url", "client_id_env", "client_secret_env"),
    SourceKind.WEBHOOK: (),
    SourceKind.DATABASE: ("url_env", "gateway", "tables"),
    SourceKind.SMS: ("format", "secret_env"),
}
SMS_FORMATS = ("capcom6", "httpsms", "generic")


class SourceError(ValueError):
    """A source definition or action that cannot be accepted; the message names the problem."""


_SHOWN_STATE = ("last_contact_at", "last_mail_at", "last_sms_at", "progress", "counts", "watch",
                "lookups_failing_since")


@dataclass(frozen=True)
class Freshness:
    name: str
    kind: str
    enabled: bool
    ok: bool
    last_run_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    alarms: dict[str, str]
    state: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "enabled": self.enabled, "ok": self.ok,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
            "last_error": self.last_error, "alarms": self.alarms,
            **{k: v for k, v in self.state.items() if k in _SHOWN_STATE},
        }


def validate(spec: Any) -> dict[str, Any]:
    """A clean source definition from parsed JSON; SourceError names the first problem."""
    if not isinstance(spec, dict):
        raise SourceError("a source file must hold a JSON object")
    kind, name = spec.get("kind"), spec.get("name")
    if kind not in SourceKind.ALL:
        raise SourceError(f"kind must be one of {', '.join(SourceKind.ALL)}, got {kind!r}")
    if not isinstance(name, str) or not NAME.match(name):
        raise SourceError(f"name must be 1–63 lower-case letters, digits, '-' or '_', got {name!r}")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise SourceError("config must be a JSON object")
    missing = [key for key in REQUIRED[kind] if key not in config]
    if missing:
        raise SourceError(f"{kind} source {name!r}: config is missing {', '.join(missing)}")
    problem = _sms_problem(config) if kind == SourceKind.SMS else None
    if problem:
        raise SourceError(f"sms source {name!r}: {problem}")
    leaked = [key for key in _walk_keys(config) if key.lower() in ("password", "secret", "client_secret", "token")]
    if leaked:
        raise SourceError(f"config holds a secret ({', '.join(leaked)}): name an environment variable instead "
                          f"(e.g. \"password_env\": \"ACME_PASSWORD\")")
    interval = spec.get("interval_s", 60)
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 86400:
        raise SourceError(f"interval_s must be a whole number of seconds from 1 to 86400, got {interval!r}")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SourceError("enabled must be true or false")
    if kind == SourceKind.DATABASE:
        if "interval_s" not in spec:
            interval = 5  # the seed monitor's pace (DESIGN.md)
        try:
            billing.parse_config(config)
        except billing.BillingConfigError as exc:
            raise SourceError(f"database source {name!r}: {exc}") from None
    return {"kind": kind, "name": name, "config": config, "interval_s": interval, "enabled": enabled}


def _sms_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with an `sms` source's config (DESIGN.md "Source files"), or None."""
    if config.get("format") not in SMS_FORMATS:
        return f"format must be one of {', '.join(SMS_FORMATS)}, got {config.get('format')!r}"
    if not isinstance(config.get("secret_env"), str) or not config["secret_env"].strip():
        return "secret_env must name the environment variable holding the signing secret"
    ids = config.get("sender_ids", [])
    if isinstance(ids, dict):
        if not all(isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in ids.items()):
            return "sender_ids must map sender ids to provider names"
    elif not isinstance(ids, list) or not all(isinstance(v, str) and v.strip() for v in ids):
        return "sender_ids must be a list of sender ids, or an object {sender id: provider name}"
    providers = config.get("providers")
    if providers is not None and (not isinstance(providers, list)
                                  or not all(isinstance(v, str) and v.strip() for v in providers)):
        return "providers must be a list of provider names"
    return None


def _walk_keys(value: Any):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            if key != "fields":  # a portal login's "fields" maps to input names, not secrets
                yield from _walk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk_keys(inner)


def save(spec: Any, *, actor: str) -> tuple[Source, bool]:
    """Add a source, or replace the definition of the one with that name. Returns (source, created)."""
    clean = validate(spec)
    if clean["kind"] == SourceKind.DATABASE:  # the live tables and columns, before anything is stored
        try:
            billing.check_schema(billing.parse_config(clean["config"]))
        except billing.BillingConfigError as exc:
            raise SourceError(f"database source {clean['name']!r}: {exc}") from None
    with db.transaction():
        source = Source.get_or_none(Source.name == clean["name"])
        if source is None:
            source = Source.create(**clean)
            audit.record("source.added", f"source:{source.name}", actor=actor, kind=source.kind)
            return source, True
        if source.kind != clean["kind"]:
            raise SourceError(f"source {source.name!r} is a {source.kind} source; remove it to make it a {clean['kind']}")
        Source.update(config=clean["config"], interval_s=clean["interval_s"], enabled=clean["enabled"]).where(
            Source.id == source.id).execute()
        audit.record("source.changed", f"source:{source.name}", actor=actor)
    return Source.get_by_id(source.id), False


def get(name: str) -> Source:
    source = Source.get_or_none(Source.name == name)
    if source is None:
        raise SourceError(f"no source named {name!r}")
    return source


def record_pass(source_id: int, *, ok: bool, error: str | None = None, now: datetime | None = None,
                **state: Any) -> None:
    """After a pass: its time, success or error, and state to merge (cursor-like progress, freshness)."""
    now = now or utcnow()
    with db.transaction():
        source = Source.get_by_id(source_id)
        merged = {**(source.state or {}), **_jsonable(state)}
        changes: dict[str, Any] = {"last_run_at": now, "state": merged}
        if ok:
            changes.update(last_ok_at=now, last_error=None)
        else:
            changes["last_error"] = (error or "failed")[:2000]
        Source.update(**changes).where(Source.id == source_id).execute()


def _jsonable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in state.items()}


def raise_alarm(source_id: int, code: str, message: str, *, now: datetime | None = None) -> bool:
    """Raise alarm `code` on a source; True when it is new (then audited and admins told once)."""
    with db.transaction():
        source = Source.get_by_id(source_id)
        alarms = dict((source.state or {}).get("alarms", {}))
        if code in alarms:
            return False
        alarms[code] = message
        Source.update(state={**(source.state or {}), "alarms": alarms}).where(Source.id == source_id).execute()
        audit.record("source.alarm", f"source:{source.name}", actor="system", code=code, message=message)
        # Operators are told by e-mail and WhatsApp, once per episode (closed by clear_alarm).
        alerts.open_alert(alerts.SOURCE_ALARM, f"{source.name}:{code}", f"Source {source.name}: {message}", now=now)
    return True


def clear_alarm(source_id: int, code: str) -> bool:
    """Clear alarm `code`; True when it was raised."""
    with db.transaction():
        source = Source.get_by_id(source_id)
        alarms = dict((source.state or {}).get("alarms", {}))
        if code not in alarms:
            return False
        alarms.pop(code)
        Source.update(state={**(source.state or {}), "alarms": alarms}).where(Source.id == source_id).execute()
        audit.record("source.alarm_cleared", f"source:{source.name}", actor="system", code=code)
        alerts.clear_alert(alerts.SOURCE_ALARM, f"{source.name}:{code}")
    return True


def freshness(source: Source, now: datetime | None = None) -> Freshness:
    """Whether a source is healthy: enabled, no alarm, and a successful pass within 3 intervals."""
    now = now or utcnow()
    state = source.state or {}
    alarms = state.get("alarms", {})
    recent = source.last_ok_at is not None and now - source.last_ok_at <= timedelta(seconds=3 * source.interval_s + 60)
    return Freshness(
        name=source.name, kind=source.kind, enabled=source.enabled,
        ok=(not source.enabled) or (recent and not alarms),
        last_run_at=source.last_run_at, last_ok_at=source.last_ok_at, last_error=source.last_error,
        alarms=alarms, state=state,
    )


SILENT_INTERVALS = 3  # no contact for this many intervals (plus a minute) raises alarm "silent"
SILENT_KINDS = (SourceKind.PORTAL, SourceKind.MAILBOX, SourceKind.SMS)  # gateways: "lookups_failing"


def check_silence(now: datetime | None = None) -> dict[str, list[str]]:
    """Raise alarm "silent" on every enabled source that has had no contact with its outside
    system (state `last_contact_at`, else since it was added) for SILENT_INTERVALS × interval_s
    plus a minute; clear it on the ones heard from again. For an `sms` source the interval is
    the phone app's ping period (capcom6 `system:ping`; any post counts). Gateways judge their
    lookups instead (jobs/gateway.py, alarm "lookups_failing"). Returns {"raised", "cleared"}."""
    now = now or utcnow()
    done: dict[str, list[str]] = {"raised": [], "cleared": []}
    for source in Source.select().where(Source.enabled == True, Source.kind.in_(SILENT_KINDS)):  # noqa: E712
        heard = (source.state or {}).get("last_contact_at")
        last = datetime.fromisoformat(heard) if heard else source.created_at
        limit = timedelta(seconds=SILENT_INTERVALS * source.interval_s + 60)
        if now - last > limit:
            since = f"since {last.isoformat(timespec='seconds')}" if heard else "since it was added"
            if raise_alarm(source.id, "silent", f"no contact {since} (over {SILENT_INTERVALS}× its interval of "
                                                f"{source.interval_s} s): is it still reading?", now=now):
                done["raised"].append(source.name)
        elif clear_alarm(source.id, "silent"):
            done["cleared"].append(source.name)
    return done


def all_freshness() -> list[Freshness]:
    return [freshness(s) for s in Source.select().order_by(Source.name)]


# PaymentRequest.meta key holding a gateway request's bookkeeping (ioTec id, last status,
# next poll, collect progress); written by jobs/gateway.py, started by the API.
GATEWAY_META_KEY = "paywatch_gateway"


def collect_job_id(request_id: int) -> str:
    """The fixed job id of a request's gateway collect: a pass can tell whether Redis still holds it."""
    return f"gateway-collect-{request_id}"


def gateway_source(name: str | None) -> Source | None:
    """The enabled gateway source called `name`, else None."""
    if not name:
        return None
    return Source.get_or_none(Source.name == name, Source.kind == SourceKind.GATEWAY, Source.enabled == True)  # noqa: E712


def schedule_id(name: str) -> str:
    return f"paywatch-source-{name}"


# ---- Sources page (webapp/web/sources.py): enable / disable -------------------------------


def set_enabled(name: str, enabled: bool, *, actor: str) -> Source:
    """Enable or disable source `name` (audited when it changes); SourceError when there is none.

    The caller syncs the schedules (jobqueue.sync_schedule) after this commits.
    """
    with db.transaction():
        source = get(name)
        changed = Source.update(enabled=enabled).where(Source.id == source.id, Source.enabled == (not enabled)).execute()
        if changed:
            audit.record("source.enabled" if enabled else "source.disabled", f"source:{source.name}", actor=actor)
    return Source.get_by_id(source.id)
# ---- end of the Sources page section ----------------------------------------------------


def wanted_schedule() -> list[jobqueue.Recurring]:
    """Every recurring job, and one pass per enabled source that is polled (reads the database).

    Mailbox sources with IDLE are driven by the watcher process instead.
    """
    wanted = jobqueue.recurring_jobs()
    for source in Source.select().where(Source.enabled == True).order_by(Source.id):  # noqa: E712
        name = PASS_JOBS.get(source.kind)
        if name not in jobqueue.JOBS or (source.kind == "mailbox" and (source.config or {}).get("idle", True)):
            continue
        spec = jobqueue.JOBS[name]
        wanted.append(jobqueue.Recurring(schedule_id(source.name), spec.func, spec.queue, spec.timeout,
                                         source.interval_s, (source.id,)))
    return wanted


def sync_schedule(scheduler) -> dict[str, list[str]]:
    """Make rq-scheduler hold exactly wanted_schedule() (see jobqueue.sync_schedule); needs the database and Redis."""
    return jobqueue.sync_schedule(scheduler, wanted_schedule())
