"""Run-time settings staff change without a restart (mode, thresholds, delays, limits).

They live in the Setting table; a key never saved takes its first value from the
environment (webapp.config.Settings) or from DEFAULTS. Every change is audited.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from webapp.config import MODES, Settings
from webapp.domain import audit
from webapp.domain.matching import MatchSettings, NameRules, variants
from webapp.storage import db
from webapp.storage.db import database
from webapp.storage.models import Setting, utcnow

log = logging.getLogger(__name__)


class OptionError(ValueError):
    """A setting value that is not allowed; names the setting."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    parse: Callable[[Any], Any]
    default: Callable[[Settings], Any]
    help: str = ""
    kind: str = "number"  # how the settings form shows it: number, checkbox, select, text
    choices: tuple[str, ...] = ()


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected a whole number")
        number = int(str(value).strip())
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _phones(value: Any) -> list[str]:
    """E.164 phones from a list or a comma-separated text, read in the default region."""
    from webapp.domain.phones import PhoneError, to_e164

    items = value if isinstance(value, list) else str(value or "").replace(";", ",").split(",")
    phones = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            phones.append(to_e164(item, _settings().phone_region))
        except PhoneError as exc:
            raise ValueError(str(exc)) from None
    return phones


def _clock(value: Any) -> str:
    """"HH:MM" (24-hour), or "" for none."""
    text = str(value or "").strip()
    if not text:
        return ""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and 0 <= int(hours) < 24 and 0 <= int(minutes) < 60
            and len(minutes) == 2):
        raise ValueError("must be a time like 21:30, or empty")
    return f"{int(hours):02d}:{minutes}"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no", ""):
        return False
    raise ValueError("expected true or false")


OPTIONS: dict[str, Option] = {
    o.key: o
    for o in (
        Option("verification_mode", "Verification mode", _choice(MODES), lambda s: s.verification_mode,
               "automated: confirm above the threshold, leave the rest unmatched · manual: staff confirm "
               "every match · hybrid: confirm above the threshold, send the rest to review",
               kind="select", choices=MODES),
        Option("auto_confirm_threshold", "Auto-confirm threshold", _int(1, 100), lambda s: 60,
               "a candidate scoring at least this (1–100) is confirmed without staff"),
        Option("tie_margin", "Tie margin", _int(0, 100), lambda s: 30,
               "two candidates closer than this never auto-confirm"),
        Option("review_threshold", "Review threshold", _int(0, 100), lambda s: 0,
               "candidates below this score are not shown for review"),
        Option("match_skew_minutes", "Clock skew (minutes)", _int(0, 1440), lambda s: 5,
               "a payment may be stamped this long before its request was created"),
        Option("match_grace_minutes", "Grace after expiry (minutes)", _int(0, 1440), lambda s: 15,
               "a payment this long after expiry still counts as on time"),
        Option("late_lookback_hours", "Late payments (hours)", _int(0, 24 * 90), lambda s: 72,
               "a payment this long after expiry is offered for review, flagged late"),
        Option("learn_after", "Learned payers: confirmations before decisive", _int(1, 100), lambda s: 2,
               "after this many staff confirmations (and no rejection) a payer's name or phone seen paying "
               "for a customer counts as strong evidence; one rejection withdraws it"),
        Option("request_ttl_minutes", "Request lifetime (minutes)", _int(1, 60 * 24 * 90),
               lambda s: s.request_ttl_minutes, "requests expire after this unless they say otherwise"),
        Option("pending_alert_seconds", "Pending alert delay (seconds)", _int(1, 86400),
               lambda s: s.pending_alert_seconds, "agent and customer are told when a request is still pending"),
        Option("unique_amounts", "Unique amounts", _bool, lambda s: False,
               "move a new request's amount by one minor unit while another open request has it",
               kind="checkbox"),
        Option("unique_amount_max_steps", "Unique amounts: largest move (minor units)", _int(1, 1000),
               lambda s: 50, "a request whose amount cannot be made unique within this is refused"),
        Option("admin_phones", "Admin WhatsApp numbers", _phones, lambda s: [],
               "comma-separated; told about unmatched payments and source alarms", kind="text"),
        Option("voucher_low_stock", "Vouchers: low-stock alert below", _int(0, 100000), lambda s: 10,
               "admins are told once when a pool has fewer codes left than this"),
        Option("cap_per_minute", "WhatsApp: reminders per minute", _int(1, 10000), lambda s: 30,
               "paced evenly (up to 10 s worth at once); over a cap a message waits for the next free slot, "
               "it is never dropped"),
        Option("cap_transactional_per_minute", "WhatsApp: confirmations and alerts per minute", _int(1, 10000),
               lambda s: 60, "their own budget, paced evenly: never held behind reminders or the hour and day caps"),
        Option("cap_per_hour", "WhatsApp: messages per hour", _int(1, 100000), lambda s: 600,
               "counts every message; holds reminders only"),
        Option("cap_per_day", "WhatsApp: messages per day", _int(1, 1000000), lambda s: 5000,
               "counts every message; holds reminders only"),
        Option("cap_per_recipient_hour", "WhatsApp: per recipient per hour", _int(1, 1000), lambda s: 6, ""),
        Option("cap_per_recipient_day", "WhatsApp: per recipient per day", _int(1, 10000), lambda s: 20, ""),
        Option("send_gap_ms", "WhatsApp: pause between sends (ms)", _int(0, 60000), lambda s: 250,
               "plus up to the same again at random, so sends don't look machine-made"),
        Option("quiet_start", "Quiet hours from", _clock, lambda s: "", "HH:MM in the configured time zone; "
               "empty: no quiet hours. Reminders and pending alerts wait until they end", kind="text"),
        Option("quiet_end", "Quiet hours until", _clock, lambda s: "", "HH:MM", kind="text"),
        Option("whatsapp_down_minutes", "Alerts: WhatsApp down for (minutes)", _int(1, 1440), lambda s: 5,
               "operators are told (by e-mail too) when the session has not been connected this long"),
        Option("daily_summary_at", "Alerts: daily summary at", _clock, lambda s: "20:00",
               "HH:MM in the configured time zone (e-mail and WhatsApp); empty: no summary", kind="text"),
        Option("keep_mail_days", "Keep raw mail and payment bodies (days)", _int(1, 3650), lambda s: 90,
               "after this the raw text of payments (mail bodies, portal rows) is blanked; the payment stays"),
        Option("keep_message_days", "Keep message texts (days)", _int(1, 3650), lambda s: 90,
               "after this a sent or ended WhatsApp message's text is blanked; the row stays"),
        Option("keep_idempotency_hours", "Keep API idempotency keys (hours)", _int(24, 24 * 365), lambda s: 48,
               "at least 24 h: a client may retry a call this long"),
        Option("keep_job_results_days", "Keep failed job records (days)", _int(1, 365), lambda s: 7,
               "failed RQ jobs shown in /ops/rq are forgotten after this"),
        Option("quiet_holds_transactional", "Quiet hours hold confirmations too", _bool, lambda s: False,
               "off: confirmations, expiry and rejection notices go out at any hour", kind="checkbox"),
    )
}


def _settings() -> Settings:
    from webapp.config import settings

    return settings()


_cache: dict[str, Any] = {"at": 0.0, "values": None, "db": None}
CACHE_SECONDS = 1.0  # another process's change reaches this one within a second


def current() -> dict[str, Any]:
    """Every option's value (saved, else its default); read at most once a second per process."""
    now = time.monotonic()
    if _cache["values"] is not None and _cache["db"] is database.obj and now - _cache["at"] < CACHE_SECONDS:
        return dict(_cache["values"])
    saved = {row.key: row.value for row in Setting.select()}
    base = _settings()
    values = {key: saved[key] if key in saved else option.default(base) for key, option in OPTIONS.items()}
    _cache.update(at=now, values=values, db=database.obj)
    return dict(values)


def _forget() -> None:
    _cache["values"] = None


def get(key: str) -> Any:
    return current()[key]


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """Parsed values for `changes`; OptionError names the first bad one."""
    parsed = {}
    for key, value in changes.items():
        if key not in OPTIONS:
            raise OptionError(key, "is not a setting")
        try:
            parsed[key] = OPTIONS[key].parse(value)
        except (TypeError, ValueError) as exc:
            raise OptionError(key, str(exc)) from None
    return parsed


def update(changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Validate and save `changes` in one transaction, auditing each changed value."""
    parsed = validate(changes)
    _forget()
    before = current()
    with db.transaction():
        for key, value in parsed.items():
            if before[key] == value:
                continue
            updated = Setting.update(value=value, updated_at=utcnow()).where(Setting.key == key).execute()
            if not updated:
                Setting.create(key=key, value=value)
            audit.record("setting.changed", f"setting:{key}", actor=actor, old=before[key], new=value)
    _forget()
    return current()


def match_settings(values: dict[str, Any] | None = None) -> MatchSettings:
    """The matching settings from the current values."""
    v = values or current()
    wanted = tuple(v[key] for key in _MATCHING)
    # Once per transaction (a batch of payments is one): the names table's files are stat'ed
    # and the settings validated once, not for every payment.
    return db.memo(("options.match_settings", wanted), lambda: MatchSettings(
        mode=v["verification_mode"],
        auto_confirm_threshold=v["auto_confirm_threshold"],
        review_threshold=v["review_threshold"],
        tie_margin=v["tie_margin"],
        skew=timedelta(minutes=v["match_skew_minutes"]),
        grace=timedelta(minutes=v["match_grace_minutes"]),
        late_lookback=timedelta(hours=v["late_lookback_hours"]),
        learn_after=v["learn_after"],
        names=name_rules(),
    ))


_MATCHING = ("verification_mode", "auto_confirm_threshold", "review_threshold", "tie_margin",
             "match_skew_minutes", "match_grace_minutes", "late_lookback_hours", "learn_after")


NAMES_FILE = "name_variants.toml"


def name_rules() -> NameRules:
    """The built-in names table plus the instance folder's name_variants.toml, when there is one.

    A broken own file is logged (naming the file and the problem) and left out, so money
    keeps being matched with the built-in table rather than not at all."""
    own = _settings().instance_path / NAMES_FILE
    try:
        return variants.load(own)
    except variants.VariantsError as exc:
        log.error("names table left out: %s", exc)
        return variants.load(None)
