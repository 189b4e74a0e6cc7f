"""The notifications pages: the outbox log (retry), templates, reminder rules (the WhatsApp
session page is webapp/web/whatsapp_session.py).

Viewers read every page; staff retry messages, edit templates and rules; admins resume a
paused sender. Every change goes through its domain module (outbox, message_texts,
reminders, whatsapp_session); their errors are shown on the form with a 4xx status,
except to htmx, which only swaps 2xx answers, so a fragment with an error is 200.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from peewee import JOIN
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from webapp.config import settings
from webapp.domain import input_bounds, message_texts, money, outbox, reminders, whatsapp_session
from webapp.storage.models import Agent, Notification, NotificationStatus, PaymentRequest, Role, Rule
from webapp.web.access import access, actor
from webapp.web.htmx import is_partial_request, render
from webapp.web.listing import SortColumn, Sortable, filtered_page, text_condition

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

RETRYABLE = (NotificationStatus.FAILED, NotificationStatus.CANCELLED)
ACKS = {1: "sent", 2: "delivered", 3: "read", 4: "played"}
UNITS = {"minutes": 1, "hours": 60, "days": 1440}
# The log's sortable columns (a whitelist); newest first by when a message is (or was) due.
LOG_SORTS = Sortable(
    Notification,
    SortColumn("due", Notification.due_at),
    SortColumn("sent", Notification.sent_at),
    SortColumn("kind", Notification.kind, first="asc"),
    SortColumn("phone", Notification.phone, first="asc"),
    SortColumn("status", Notification.status, first="asc"),
    SortColumn("tries", Notification.attempts),
)


def _choices(values) -> list[SelectChoice]:
    return [SelectChoice("", "any")] + [SelectChoice(v) for v in values]


class LogFilters(FlaskForm):
    """GET filters of the log (no CSRF: reading only)."""

    class Meta:
        csrf = False

    status = SelectField("Status", choices=_choices(NotificationStatus.ALL), default="")
    kind = SelectField("Kind", choices=_choices(outbox.Kind.ALL), default="")
    phone = StringField("Phone", validators=[Length(max=40)])
    reference = StringField("Request reference", validators=[Length(max=64)])
    date_from = DateField("From", name="from", validators=[Optional()])
    date_to = DateField("To", name="to", validators=[Optional()])

    def validate_date_from(self, field) -> None:
        if field.data and input_bounds.date_problem(field.data):
            raise ValidationError(input_bounds.date_problem(field.data))

    def validate_date_to(self, field) -> None:
        self.validate_date_from(field)
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("'To' is before 'From'.")


def log_query(filters: LogFilters):
    """The outbox query for valid filters (dates are local days, both included), else None."""
    if not filters.validate():
        return None
    query = Notification.select(Notification, PaymentRequest).join(PaymentRequest, JOIN.LEFT_OUTER)
    if filters.status.data:
        query = query.where(Notification.status == filters.status.data)
    if filters.kind.data:
        query = query.where(Notification.kind == filters.kind.data)
    phone = (filters.phone.data or "").strip()
    if phone:
        query = query.where(text_condition(phone, phone_field=Notification.phone))
    reference = (filters.reference.data or "").strip()
    if reference:
        query = query.where(PaymentRequest.reference.contains(reference))
    zone = settings().zone
    if filters.date_from.data:
        query = query.where(Notification.created_at >= datetime.combine(filters.date_from.data, time.min, tzinfo=zone))
    if filters.date_to.data:
        end = datetime.combine(filters.date_to.data + timedelta(days=1), time.min, tzinfo=zone)
        query = query.where(Notification.created_at < end)
    return query


def _log(status: int = 200):
    filters = LogFilters(request.args)
    query = log_query(filters)
    sort = LOG_SORTS.read()
    listing, filter_status = filtered_page(query, Notification, sort)
    if filter_status == 400:
        status = 400
    return render(
        "pages/notifications/index.html", "partials/notifications/log.html", status=status,
        listing=listing, filters=filters, endpoint="notifications.index", poll_args=request.args.to_dict(),
        sort=sort,
        paused=whatsapp_session.paused_reason(), acks=ACKS, retryable=RETRYABLE,
    )


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _log()


@bp.post("/<int:notification_id>/retry")
@access(Role.STAFF)
def retry(notification_id: int):
    """Retry a failed or cancelled message; the log's filters ride along in the query string."""
    try:
        outbox.retry(notification_id, actor=actor())
    except ValueError:
        if Notification.get_or_none(Notification.id == notification_id) is None:
            abort(404, f"There is no notification {notification_id}.")
        flash(f"Notification {notification_id} is not failed or cancelled: nothing to retry.", "error")
        return _log(status=200 if is_partial_request() else 409)
    flash(f"Notification {notification_id} queued again.", "success")
    if is_partial_request():
        return _log()
    return redirect(url_for("notifications.index", **request.args.to_dict()))


@bp.post("/resume")
@access(Role.ADMIN)
def resume():
    whatsapp_session.resume(actor=actor())
    flash("WhatsApp sending resumed.", "success")
    target = "whatsapp_session.whatsapp" if request.form.get("next") == "whatsapp" else "notifications.index"
    return redirect(url_for(target))


# ---------------------------------------------------------------- templates


def _can_edit() -> bool:
    return current_user.has_role(Role.STAFF)


def preview_of(body: str) -> tuple[str | None, str | None]:
    """(text, error): the body rendered with SAMPLE, or the TemplateError's message."""
    try:
        return message_texts.preview(body), None
    except message_texts.TemplateError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a sandbox or type error in the text is the user's to see
        return None, f"This text cannot be filled in: {_render_problem(exc)}."


def _render_problem(exc: Exception) -> str:
    """Why a text that parsed fails when filled in, in words (no exception class names)."""
    from jinja2.exceptions import SecurityError, UndefinedError

    if isinstance(exc, SecurityError):
        return "it reaches for something message texts may not use (only the variables listed below)"
    if isinstance(exc, UndefinedError):
        return f"it uses a value that is not there ({exc.message})"
    if isinstance(exc, (TypeError, ValueError, ArithmeticError)):
        return "it combines values that do not go together (for example a number and a word, or a division by zero)"
    return "it fails when filled in with the sample values"


@bp.get("/templates")
@access(Role.VIEWER)
def templates():
    rows = [(kind, *message_texts.current(kind)) for kind in message_texts.DEFAULTS]
    return render("pages/notifications/templates.html", "partials/notifications/templates_table.html",
                  rows=rows, can_edit=_can_edit())


def _editor(kind: str, body: str, enabled: bool, error: str | None = None, status: int = 200):
    text, preview_error = preview_of(body)
    return render("pages/notifications/template_edit.html", "partials/notifications/preview.html", status=status,
                  kind=kind, body=body, enabled=enabled, error=error, preview=text, preview_error=preview_error,
                  variables=message_texts.VARIABLES, default=message_texts.DEFAULTS[kind], can_edit=_can_edit())


@bp.route("/templates/<kind>", methods=["GET", "POST"])
@access(Role.VIEWER)
def template_edit(kind: str):
    if kind not in message_texts.DEFAULTS:
        abort(404, f"There is no message kind {kind!r}.")
    if request.method == "GET":
        return _editor(kind, *message_texts.current(kind))
    if not _can_edit():
        abort(403)
    body, enabled = request.form.get("body", ""), bool(request.form.get("enabled"))
    try:
        message_texts.save(kind, body, enabled, actor=actor())
    except message_texts.TemplateError as exc:
        return _editor(kind, body, enabled, error=str(exc), status=400)
    flash(f"Template {kind} saved{'' if enabled else ' (switched off)'}.", "success")
    return redirect(url_for("notifications.templates"))


@bp.post("/templates/<kind>/switch")
@access(Role.STAFF)
def template_switch(kind: str):
    """Switch a kind on or off, keeping its text."""
    if kind not in message_texts.DEFAULTS:
        abort(404, f"There is no message kind {kind!r}.")
    body, _ = message_texts.current(kind)
    enabled = request.form.get("enabled") == "1"
    try:
        message_texts.save(kind, body, enabled, actor=actor())
    except message_texts.TemplateError as exc:
        flash(f"{kind}: {exc}", "error")
        return redirect(url_for("notifications.templates"))
    flash(f"{kind} messages switched {'on' if enabled else 'off'}.", "success")
    return redirect(url_for("notifications.templates"))


@bp.post("/templates/preview")
@access(Role.STAFF)
def template_preview():
    """The live preview (HTMX): the posted `body` (or a rule's `template`) rendered with SAMPLE."""
    body = request.form.get("body", request.form.get("template", ""))
    text, error = preview_of(body)
    return render("partials/notifications/preview.html", "partials/notifications/preview.html",
                  preview=text, preview_error=error)


# ---------------------------------------------------------------- reminder rules


def rule_form_values(form) -> dict[str, Any]:
    """What the rule form posted, as reminders.save takes it; RuleError names a bad field."""
    amount = (form.get("min_pending") or "").strip()
    minutes = None
    if amount:
        unit = UNITS.get(form.get("min_pending_unit") or "hours")
        if not amount.isdigit() or unit is None:
            raise reminders.RuleError("min_pending: must be a whole number of minutes, hours or days")
        minutes = int(amount) * unit
    code = (form.get("agent_code") or "").strip()
    if code and Agent.get_or_none(Agent.code == code) is None:
        raise reminders.RuleError(f"agent_code: no agent has code {code!r}")
    currency = (form.get("currency") or "").strip().upper()
    texts = {key: (form.get(key) or "").strip() for key in FEE_FILTERS}
    amounts = {key: _typed_amount(key, form.get(key), currency) for key in ("amount_min", "amount_max", "balance_min")}
    return {
        "name": form.get("name", ""), "cron": form.get("cron", ""), "template": form.get("template", ""),
        "enabled": bool(form.get("enabled")),
        "filter": {"min_pending_minutes": minutes, "currency": currency, "agent_code": code, **texts, **amounts},
    }


def _typed_amount(key: str, text: str | None, currency: str) -> str:
    """An amount field of the rule form as staff type it ("5,000") → the rule's decimal string ("5000")."""
    text = (text or "").strip()
    try:
        code = money.normalize_currency(currency or settings().currency)
    except money.MoneyError:
        return text  # reminders.check names the currency
    if not text:
        return ""
    try:
        return money.to_decimal_string(money.parse_typed(text, code), code)
    except money.MoneyError as exc:
        raise reminders.RuleError(f"filter.{key}: {exc}") from None


FEE_FILTERS = ("due_in_days", "overdue_days", "balance_min", "group", "no_payment_days")


def form_fields(rule: Rule | None) -> dict[str, str]:
    """A saved rule as the form's fields (min pending in the largest whole unit)."""
    if rule is None:
        return {"cron": "0 9 * * *", "min_pending_unit": "days", "enabled": "1",
                "template": message_texts.DEFAULTS["reminder"]}
    f = rule.filter or {}
    minutes, unit = f.get("min_pending_minutes"), "hours"
    if minutes:
        unit = next(u for u in ("days", "hours", "minutes") if minutes % UNITS[u] == 0)
        minutes //= UNITS[unit]
    return {"name": rule.name, "cron": rule.cron, "template": rule.template, "enabled": "1" if rule.enabled else "",
            "min_pending": str(minutes or ""), "min_pending_unit": unit, "amount_min": f.get("amount_min", ""),
            "amount_max": f.get("amount_max", ""), "currency": f.get("currency", ""),
            "agent_code": f.get("agent_code", ""), **{key: str(f.get(key, "")) for key in FEE_FILTERS}}


def error_field(error: str) -> str:
    """The form field a RuleError names ("filter.amount_min: …" → "amount_min")."""
    name = error.split(":", 1)[0].rsplit(".", 1)[-1]
    return "min_pending" if name == "min_pending_minutes" else name


def summary(filter_: dict[str, Any]) -> str:
    """A rule's filter in words, for the list."""
    parts = []
    minutes = filter_.get("min_pending_minutes")
    if minutes:
        unit = next(u for u in ("days", "hours", "minutes") if minutes % UNITS[u] == 0)
        parts.append(f"pending ≥ {minutes // UNITS[unit]} {unit}")
    currency = filter_.get("currency") or settings().currency
    low, high = filter_.get("amount_min"), filter_.get("amount_max")
    if low or high:
        parts.append(f"{currency} {low or '0'}–{high or '∞'}")
    elif filter_.get("currency"):
        parts.append(f"in {currency}")
    if filter_.get("agent_code"):
        parts.append(f"agent {filter_['agent_code']}")
    for key, words in (("due_in_days", "due within {} days"), ("overdue_days", "overdue ≥ {} days"),
                       ("balance_min", "balance ≥ {}"), ("group", "group {}"),
                       ("no_payment_days", "no payment in {} days")):
        if filter_.get(key) not in (None, ""):
            parts.append(words.format(filter_[key]))
    return " · ".join(parts) or "every pending request"


def next_run_of(rule: Rule) -> datetime | None:
    try:
        return reminders.next_run(rule) if rule.enabled else None
    except reminders.RuleError:
        return None


def _rule_or_404(rule_id: int) -> Rule:
    rule = Rule.get_or_none(Rule.id == rule_id)
    if rule is None:
        abort(404, f"There is no rule {rule_id}.")
    return rule


@bp.get("/rules")
@access(Role.VIEWER)
def rules():
    rows = list(Rule.select().order_by(Rule.name, Rule.id))
    return render("pages/notifications/rules.html", "partials/notifications/rules_table.html",
                  rules=rows, summary=summary, next_run=next_run_of, can_edit=_can_edit(), zone=settings().zone)


def _rule_form(rule: Rule | None, fields: dict[str, str], error: str | None = None, status: int = 200):
    text, preview_error = preview_of(fields.get("template", ""))
    return render("pages/notifications/rule_form.html", "pages/notifications/rule_form.html", status=status,
                  rule=rule, fields=fields, error=error, error_field=error_field(error) if error else None,
                  preview=text, preview_error=preview_error, variables=message_texts.VARIABLES,
                  can_edit=_can_edit(), next_run=next_run_of(rule) if rule else None)


@bp.get("/rules/new")
@access(Role.STAFF)
def rule_new():
    return _rule_form(None, form_fields(None))


@bp.get("/rules/<int:rule_id>")
@access(Role.VIEWER)
def rule_edit(rule_id: int):
    rule = _rule_or_404(rule_id)
    return _rule_form(rule, form_fields(rule))


@bp.post("/rules", defaults={"rule_id": None})
@bp.post("/rules/<int:rule_id>")
@access(Role.STAFF)
def rule_save(rule_id: int | None):
    rule = _rule_or_404(rule_id) if rule_id is not None else None
    try:
        saved = reminders.save(rule_form_values(request.form), actor=actor(), rule_id=rule_id)
    except reminders.RuleError as exc:
        return _rule_form(rule, request.form.to_dict(), error=str(exc), status=400)
    flash(f"Rule {saved.name!r} saved.", "success")
    return redirect(url_for("notifications.rules"))


@bp.post("/rules/<int:rule_id>/switch")
@access(Role.STAFF)
def rule_switch(rule_id: int):
    rule = _rule_or_404(rule_id)
    enabled = request.form.get("enabled") == "1"
    values = {"name": rule.name, "cron": rule.cron, "filter": rule.filter, "template": rule.template,
              "enabled": enabled}
    try:
        reminders.save(values, actor=actor(), rule_id=rule.id)
    except reminders.RuleError as exc:
        flash(f"Rule {rule.name!r}: {exc}", "error")
        return redirect(url_for("notifications.rule_edit", rule_id=rule.id))
    flash(f"Rule {rule.name!r} {'enabled' if enabled else 'disabled'}.", "success")
    return redirect(url_for("notifications.rules"))


@bp.post("/rules/<int:rule_id>/delete")
@access(Role.STAFF)
def rule_delete(rule_id: int):
    rule = _rule_or_404(rule_id)
    reminders.delete(rule.id, actor=actor())
    flash(f"Rule {rule.name!r} deleted.", "success")
    return redirect(url_for("notifications.rules"))


def _dry_run(rule: Rule | None, error: str | None = None, status: int = 200):
    planned = reminders.plan(rule) if rule is not None and error is None else []
    return render("pages/notifications/dry_run.html", "partials/notifications/dry_run.html", status=status,
                  rule=rule, planned=planned, error=error)


@bp.get("/rules/<int:rule_id>/dry-run")
@access(Role.VIEWER)
def rule_dry_run(rule_id: int):
    return _dry_run(_rule_or_404(rule_id))


@bp.post("/rules/dry-run")
@access(Role.STAFF)
def rule_dry_run_form():
    """The dry run of the form's unsaved values (nothing is saved)."""
    try:
        values = rule_form_values(request.form)
        clean = reminders.check(values["name"] or "(unsaved)", values["cron"], values["filter"], values["template"])
    except reminders.RuleError as exc:
        return _dry_run(None, error=str(exc), status=200 if is_partial_request() else 400)
    unsaved = Rule(name=values["name"] or "(unsaved)", cron=values["cron"], filter=clean, template=values["template"])
    return _dry_run(unsaved)
