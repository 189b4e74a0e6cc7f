"""Message templates: sandboxed Jinja, editable per kind, checked for unknown variables.

Staff edit a kind's text on the templates page; a text naming a variable that does
not exist, or that is not valid Jinja, is refused on save with the name. Bodies
are rendered when a notification is sent, from fresh data.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from webapp.domain import audit, durations, money
from webapp.storage import db
from webapp.storage.models import Notification, Payment, PaymentRequest, Template, utcnow

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)

DEFAULTS = {
    "pending_alert_agent": "Paywatch: {{ customer_name or 'a customer' }}'s payment {{ reference }} of {{ amount }} "
                           "is still pending after {{ waited }}. Please follow up.",
    "pending_alert_customer": "Hello {{ customer_name or 'there' }}, your payment {{ reference }} of {{ amount }} "
                              "is still pending. Please pay before {{ expires_at }} and quote {{ reference }}.",
    "payment_confirmed_customer": "Thank you {{ customer_name or '' }}! We received {{ paid_amount }} for "
                                  "{{ reference }}.{% if voucher %} Your voucher code: {{ voucher }}{% endif %}",
    "payment_confirmed_agent": "Paid: {{ customer_name or 'a customer' }} paid {{ paid_amount }} for {{ reference }}.",
    "request_expired_customer": "Hello {{ customer_name or 'there' }}, payment request {{ reference }} for "
                                "{{ amount }} has expired. Ask us for a new one if you still want to pay.",
    "payment_rejected_customer": "Hello {{ customer_name or 'there' }}, we could not accept your payment "
                                 "{% if paid_amount %}of {{ paid_amount }} {% endif %}for {{ reference }}. "
                                 "Please contact us.",
    "payment_unmatched_admin": "Paywatch: a payment of {{ paid_amount }} from {{ sender or 'unknown' }} "
                               "({{ received_at }}) matches no request. Review it.",
    "installment_received_customer": "Thank you {{ customer_name or '' }}! We received {{ paid_amount }} toward "
                                     "{{ reference }}. Paid so far {{ paid_total }}, balance {{ balance }}"
                                     "{% if due_at %}, due {{ due_at }}{% endif %}.",
    "admin_alert": "{{ text }}",
    "reminder": "Hello {{ customer_name or 'there' }}, a reminder: {{ reference }} for {{ amount }} is still unpaid.",
}

VARIABLES = {
    "reference": "the request's reference, e.g. PW-7KQ2M9",
    "amount": "the exact amount to pay, e.g. UGX 50,000",
    "customer_name": "the customer's name", "customer_phone": "the customer's phone (E.164)",
    "agent_name": "the agent's name", "created_at": "when the request appeared (local time)",
    "expires_at": "when the request expires (local time)", "minutes": "minutes since the request appeared",
    "waited": "time since the request appeared in words: 45 s, 12 min, 2 h 5 min",
    "paid_amount": "the amount received", "sender": "who sent the payment", "received_at": "when it arrived",
    "voucher": "the voucher code handed out",
    "pay_url": "the request's payment page (absolute with PAYWATCH_PUBLIC_URL set)",
    "balance": "what is still owed (installment requests)", "paid_total": "what has been paid toward it so far",
    "due_at": "the date it is due (fees and invoices; local time)",
    "text": "the alert's text (admin alerts)",
}

SAMPLE = {
    "reference": "PW-7KQ2M9", "amount": "UGX 50,000", "customer_name": "Jane Doe", "customer_phone": "+256772123456",
    "agent_name": "Sam Okello", "created_at": "2026-11-22 14:03", "expires_at": "2026-11-22 14:18", "minutes": 2,
    "waited": "2 min",
    "paid_amount": "UGX 50,000", "sender": "JANE DOE", "received_at": "2026-11-22 14:05",
    "voucher": "WIFI-4821", "pay_url": "https://pay.example.com/pay/3q2Xb8Yk1mN0pLr5Tz7Wc9Hd",
    "balance": "UGX 300,000", "paid_total": "UGX 200,000", "due_at": "2027-01-15 00:00",
    "text": "source acme-portal: column 'Amount' is missing",
}


class TemplateError(ValueError):
    """A template text that cannot be saved; the message names the problem."""


def check(body: str) -> None:
    """Refuse syntax errors and unknown variables, naming them."""
    try:
        parsed = _env.parse(body)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"line {exc.lineno}: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - set(VARIABLES))
    if unknown:
        raise TemplateError(f"unknown variable{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(VARIABLES))})")


def render_text(body: str, context: dict[str, Any]) -> str:
    values = {name: context.get(name, "") for name in VARIABLES}
    return _env.from_string(body).render(values).strip()


def current(kind: str) -> tuple[str, bool]:
    """(text, enabled) for a kind: the saved one, else the default."""
    row = Template.get_or_none(Template.kind == kind)
    if row is not None:
        return row.body, row.enabled
    return DEFAULTS.get(kind, "{{ text }}"), True


def save(kind: str, body: str, enabled: bool, *, actor: str) -> Template:
    if kind not in DEFAULTS:
        raise TemplateError(f"no message kind {kind!r}")
    check(body)
    with db.transaction():
        row = Template.get_or_none(Template.kind == kind)
        if row is None:
            row = Template.create(kind=kind, body=body, enabled=enabled)
        else:
            Template.update(body=body, enabled=enabled, updated_at=utcnow()).where(Template.id == row.id).execute()
        audit.record("template.saved", f"template:{kind}", actor=actor, enabled=enabled)
    return Template.get(Template.kind == kind)


def preview(body: str) -> str:
    check(body)
    return render_text(body, SAMPLE)


def context_for(notification: Notification, zone, now: datetime | None = None) -> dict[str, Any]:
    """Variables for one notification, from fresh rows."""
    request = PaymentRequest.get_by_id(notification.request_id) if notification.request_id else None
    payment = Payment.get_by_id(notification.payment_id) if notification.payment_id else None
    return context_of(request, payment, zone, now, dict(notification.context or {}))


def context_of(request: PaymentRequest | None, payment: Payment | None, zone, now: datetime | None = None,
               context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Variables about a request and a payment (either may be None), added to `context`."""
    now = now or utcnow()
    context = dict(context or {})
    if request is not None:
        context.update(
            reference=request.reference, amount=money.display(request.amount_minor, request.currency),
            customer_name=request.customer_name, customer_phone=request.customer_phone,
            agent_name=request.agent.name if request.agent_id else "",
            created_at=_local(request.created_at, zone), expires_at=_local(request.expires_at, zone),
            minutes=max(0, int((now - request.created_at).total_seconds() // 60)),
            waited=durations.spoken(max(timedelta(0), now - request.created_at)),
            pay_url=_pay_url(request),
            balance=money.display(request.balance_minor, request.currency),
            paid_total=money.display(request.paid_minor or 0, request.currency),
            due_at=_local(request.due_at, zone),
        )
        voucher = next(iter(request.vouchers), None)
        if voucher is not None:
            context["voucher"] = voucher.code
    if payment is not None:
        if payment.amount_minor is not None:
            context["paid_amount"] = money.display(payment.amount_minor, payment.currency)
        context.update(sender=payment.sender_name or payment.sender_phone or "",
                       received_at=_local(payment.received_at, zone))
    return context


def _pay_url(request: PaymentRequest) -> str:
    from webapp.config import settings
    from webapp.domain.paypage import pay_url

    return pay_url(request, settings().public_url)


def _local(value: datetime | None, zone) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


def rendered(kind: str, request: PaymentRequest | None, payment: Payment | None, zone) -> str:
    """What a message of `kind` about these rows would say now (e.g. a text staff then edit)."""
    body, _ = current(kind)
    return render_text(body, context_of(request, payment, zone))
