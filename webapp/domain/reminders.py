"""Reminder rules: a cron expression in the configured zone, a filter over pending
requests, a template. Each run queues one reminder per matching customer; a dry
run lists who would receive what, without queuing anything.

filter keys (all optional): min_pending_minutes, amount_min / amount_max (decimal
strings in `currency`), currency, agent_code; and for fees and invoices (requests with a
due date, installments): due_in_days (due within N days from now, not yet overdue),
overdue_days (overdue by at least N days), balance_min (still owed, decimal string),
group (the payer's group), no_payment_days (nothing paid toward it in N days). "Days" are
counted in the configured zone's calendar: a rule at 09:00 sees "due in 3 days" as the
third local midnight from today.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import CroniterBadCronError, croniter

from webapp.config import settings
from webapp.domain import audit, message_texts, money
from webapp.domain.outbox import Kind, _queue
from webapp.storage import db
from webapp.storage.models import Agent, Payer, Payment, PaymentRequest, PaymentStatus, RequestStatus, Rule, utcnow

FILTER_KEYS = ("min_pending_minutes", "amount_min", "amount_max", "currency", "agent_code",
               "due_in_days", "overdue_days", "balance_min", "group", "no_payment_days")
DAY_KEYS = ("min_pending_minutes", "due_in_days", "overdue_days", "no_payment_days")


class RuleError(ValueError):
    """A rule that cannot be saved; the message names the field."""


@dataclass(frozen=True)
class Planned:
    request: PaymentRequest
    phone: str
    text: str


def check(name: str, cron: str, filter_: dict[str, Any], template: str) -> dict[str, Any]:
    """Validate a rule's parts; returns the cleaned filter. RuleError names the bad part."""
    if not (name or "").strip():
        raise RuleError("name: is required")
    if not croniter.is_valid(cron or ""):
        raise RuleError(f"cron: {cron!r} is not a cron expression (e.g. '0 9 * * *' for 09:00 every day)")
    try:
        message_texts.check(template or "")
    except message_texts.TemplateError as exc:
        raise RuleError(f"template: {exc}") from None
    clean: dict[str, Any] = {}
    for key, value in (filter_ or {}).items():
        if key not in FILTER_KEYS:
            raise RuleError(f"filter: unknown key {key!r} (known: {', '.join(FILTER_KEYS)})")
        if value in (None, ""):
            continue
        clean[key] = value
    for key in DAY_KEYS:
        if key in clean:
            try:
                clean[key] = int(clean[key])
            except (TypeError, ValueError):
                raise RuleError(f"filter.{key}: must be a whole number") from None
            if not 0 <= clean[key] <= 3660:
                raise RuleError(f"filter.{key}: must be between 0 and 3660")
    currency = clean.get("currency") or settings().currency
    for key in ("amount_min", "amount_max", "balance_min"):
        if key in clean:
            try:
                money.to_minor(str(clean[key]), currency)
            except money.MoneyError as exc:
                raise RuleError(f"filter.{key}: {exc}") from None
    return clean


def save(values: dict[str, Any], *, actor: str, rule_id: int | None = None) -> Rule:
    clean = check(values.get("name", ""), values.get("cron", ""), values.get("filter") or {}, values.get("template", ""))
    fields = {"name": values["name"].strip(), "cron": values["cron"].strip(), "filter": clean,
              "template": values["template"], "enabled": bool(values.get("enabled", True))}
    with db.transaction():
        if rule_id is None:
            rule = Rule.create(**fields)
        else:
            Rule.update(**fields).where(Rule.id == rule_id).execute()
            rule = Rule.get_by_id(rule_id)
        audit.record("rule.saved", f"rule:{rule.id}", actor=actor, name=rule.name, cron=rule.cron)
    return rule


def delete(rule_id: int, *, actor: str) -> None:
    """Remove a rule (reminders it already queued stay in the log)."""
    with db.transaction():
        rule = Rule.get_by_id(rule_id)
        Rule.delete().where(Rule.id == rule_id).execute()
        audit.record("rule.deleted", f"rule:{rule_id}", actor=actor, name=rule.name)


def next_run(rule: Rule, after: datetime | None = None) -> datetime:
    """The next time the rule fires after `after` (aware UTC), computed in the configured zone."""
    zone = settings().zone
    base = (after or rule.last_run_at or rule.created_at).astimezone(zone)
    try:
        return croniter(rule.cron, base).get_next(datetime).astimezone(base.tzinfo).astimezone(utcnow().tzinfo)
    except CroniterBadCronError as exc:
        raise RuleError(f"cron: {exc}") from None


def targets(rule: Rule, now: datetime) -> list[PaymentRequest]:
    f = rule.filter or {}
    query = PaymentRequest.select().where(PaymentRequest.status.in_((RequestStatus.PENDING, RequestStatus.PARTIAL)),
                                          PaymentRequest.customer_phone.is_null(False))
    midnight = _local_midnight(now)
    if "due_in_days" in f:
        query = query.where(PaymentRequest.due_at >= now,
                            PaymentRequest.due_at < midnight + timedelta(days=int(f["due_in_days"]) + 1))
    if "overdue_days" in f:
        query = query.where(PaymentRequest.due_at < midnight - timedelta(days=int(f["overdue_days"]) - 1))
    if "balance_min" in f:
        query = query.where(PaymentRequest.amount_minor - PaymentRequest.paid_minor
                            >= money.to_minor(str(f["balance_min"]), f.get("currency") or settings().currency))
    if f.get("group"):
        query = query.where(PaymentRequest.payer.in_(Payer.select(Payer.id).where(Payer.group == f["group"])))
    if "no_payment_days" in f:
        recent = Payment.select(Payment.request).where(
            Payment.status == PaymentStatus.CONFIRMED, Payment.request.is_null(False),
            Payment.received_at >= now - timedelta(days=int(f["no_payment_days"])))
        query = query.where(PaymentRequest.id.not_in(recent))
    if f.get("min_pending_minutes"):
        query = query.where(PaymentRequest.created_at <= now - timedelta(minutes=int(f["min_pending_minutes"])))
    currency = f.get("currency") or None
    if currency:
        query = query.where(PaymentRequest.currency == currency)
    for key, op in (("amount_min", PaymentRequest.amount_minor.__ge__), ("amount_max", PaymentRequest.amount_minor.__le__)):
        if key in f:
            query = query.where(op(money.to_minor(str(f[key]), currency or settings().currency)))
    if f.get("agent_code"):
        query = query.join(Agent).where(Agent.code == f["agent_code"])
    return list(query.order_by(PaymentRequest.id))


def _local_midnight(now: datetime) -> datetime:
    """The start of today in the configured zone, as an aware UTC time."""
    local = now.astimezone(settings().zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def plan(rule: Rule, now: datetime | None = None) -> list[Planned]:
    """Who would receive what if the rule ran now (the dry run)."""
    from webapp.storage.models import Notification

    now = now or utcnow()
    planned = []
    for request in targets(rule, now):
        probe = Notification(kind=Kind.REMINDER, phone=request.customer_phone, request=request.id, context={})
        context = message_texts.context_for(probe, settings().zone, now)
        planned.append(Planned(request, request.customer_phone, message_texts.render_text(rule.template, context)))
    return planned


def run_due(now: datetime | None = None) -> int:
    """Run every enabled rule whose time has come; returns how many reminders were queued."""
    now = now or utcnow()
    queued = 0
    for rule in Rule.select().where(Rule.enabled == True):  # noqa: E712
        fire_at = next_run(rule)
        if fire_at > now:
            continue
        with db.transaction():
            # Claim this firing: of two sweeps, one moves last_run_at.
            claimed = Rule.update(last_run_at=now).where(
                Rule.id == rule.id, (Rule.last_run_at == rule.last_run_at) if rule.last_run_at else Rule.last_run_at.is_null()
            ).execute()
            if not claimed:
                continue
            slot = int(fire_at.timestamp())
            for request in targets(rule, now):
                key = _queue(Kind.REMINDER, request.customer_phone, f"rule:{rule.id}:{slot}:request:{request.reference}",
                             request=request, template=rule.template, rule=rule.id)
                queued += key is not None
            audit.record("rule.ran", f"rule:{rule.id}", actor="system", fired_at=fire_at.isoformat())
    return queued
