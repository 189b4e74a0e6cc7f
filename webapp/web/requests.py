"""The requests pages: a live, filtered list; create (staff); detail with its WhatsApp messages
(retry, staff), webhook deliveries, payment page link and timeline; cancel (staff).

Every change goes through webapp.domain.ledger; a LedgerError is shown to staff with its
HTTP status (409 for a state that no longer allows it), never swallowed.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from peewee import JOIN

from webapp.config import settings
from webapp.domain import billing_writeback, learned, ledger, outbox, phones
from webapp.domain.money import display, to_decimal_string
from webapp.storage.models import (
    Agent,
    MatchCandidate,
    Notification,
    Payment,
    PaymentRequest,
    RequestStatus,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from webapp.web.access import access, actor
from webapp.web.htmx import render
from webapp.web.listing import (
    SortColumn, Sortable, csv_lines, csv_response, filtered_page, form_problems, in_order, local_iso, narrow,
    refused_export,
)
from webapp.web.notifications import ACKS, RETRYABLE
from webapp.web.money_forms import RequestFilters, RequestForm
from webapp.web.timeline import actor_names, timeline

bp = Blueprint("requests", __name__, url_prefix="/requests")
MESSAGES_SHOWN = 50  # newest first, per request (an index on notification.request_id)
DELIVERIES_SHOWN = 50  # newest first, per request (an index on webhook_delivery.request_id)

# The list's sortable columns (a whitelist); newest first by creation unless asked otherwise.
SORTS = Sortable(
    PaymentRequest,
    SortColumn("created", PaymentRequest.created_at),
    SortColumn("reference", PaymentRequest.reference, first="asc"),
    SortColumn("amount", PaymentRequest.amount_minor),
    SortColumn("customer", PaymentRequest.customer_name, first="asc"),
    SortColumn("status", PaymentRequest.status, first="asc"),
    SortColumn("expires", PaymentRequest.expires_at),
)
CSV_COLUMNS = ("reference", "status", "amount", "currency", "requested_amount", "paid_amount", "customer_name",
               "customer_phone", "agent_code", "source", "created_at", "expires_at", "paid_at")


def agent_codes():
    """Active agents for the agent-code datalist (codes are typed: the table may be large or empty)."""
    return Agent.select(Agent.code, Agent.name).where(Agent.is_active).order_by(Agent.code).limit(500)


def _filtered(filters: RequestFilters):
    """The request query for valid filters (agent errors are added to the form), else None."""
    if not filters.parse():
        return None
    query = PaymentRequest.select(PaymentRequest, Agent).join(Agent, JOIN.LEFT_OUTER)
    if filters.status.data:
        query = query.where(PaymentRequest.status == filters.status.data)
    code = (filters.agent.data or "").strip()
    if filters.no_agent.data:
        if code:
            filters.no_agent.errors = [f"Choose agent {code!r} or no agent, not both."]
            return None
        query = query.where(PaymentRequest.agent.is_null())
    elif code:
        agent = Agent.get_or_none(Agent.code == code)
        if agent is None:
            filters.agent.errors = [f"No agent has code {code!r}."]
            return None
        query = query.where(PaymentRequest.agent == agent.id)
    return narrow(
        query, filters, time_field=PaymentRequest.created_at, amount_field=PaymentRequest.amount_minor,
        currency_field=PaymentRequest.currency, phone_field=PaymentRequest.customer_phone,
        text_fields=(PaymentRequest.reference, PaymentRequest.customer_name), shortcut=_exact_text,
        # The amount to pay, or the one asked before 'unique amounts' moved it.
        exact=lambda minor: (PaymentRequest.amount_minor == minor) | (PaymentRequest.requested_minor == minor))


def _exact_text(text: str):
    """A typed phone is that customer's requests; anything else may be a reference, as typed or in capitals."""
    e164 = phones.try_e164(text, settings().phone_region)
    if e164:
        return PaymentRequest.customer_phone == e164
    return PaymentRequest.reference.in_(list({text, text.upper()}))


@bp.get("/")
@access(Role.VIEWER)
def index():
    filters = RequestFilters(request.args)
    query = _filtered(filters)
    sort = SORTS.read()
    page, status = filtered_page(query, PaymentRequest, sort)
    return render(
        "pages/requests/index.html", "partials/requests/table.html", status=status,
        listing=page, filters=filters, agents=agent_codes(), endpoint="requests.index",
        poll_args=request.args.to_dict(), sort=sort,
    )


@bp.get("/export.csv")
@access(Role.VIEWER)
def export():
    """The filtered list as CSV, in the list's order, streamed (amounts as decimals, local times)."""
    filters = RequestFilters(request.args)
    query = _filtered(filters)
    if query is None:
        return refused_export(form_problems(filters))
    return csv_response("requests", csv_lines(CSV_COLUMNS, in_order(query, SORTS.read()), _csv_cells))


def _csv_cells(r: PaymentRequest) -> tuple:
    return (
        r.reference, r.status, to_decimal_string(r.amount_minor, r.currency), r.currency,
        to_decimal_string(r.requested_minor, r.currency), to_decimal_string(r.paid_minor or 0, r.currency),
        r.customer_name, r.customer_phone, r.agent.code if r.agent else "", r.source,
        local_iso(r.created_at), local_iso(r.expires_at), local_iso(r.paid_at),
    )


@bp.get("/new")
@access(Role.STAFF)
def new():
    return _form_page(RequestForm())


def _form_page(form: RequestForm, status: int = 200, error: str | None = None):
    return render_template("pages/requests/new.html", form=form, agents=agent_codes(), error=error), status


@bp.post("/")
@access(Role.STAFF)
def create():
    form = RequestForm()
    if not form.validate_on_submit():
        return _form_page(form, 400)
    new_request = ledger.NewRequest(
        amount_minor=form.amount_minor, currency=form.currency_code,
        customer_name=(form.customer_name.data or "").strip(), customer_phone=form.phone,
        agent_id=form.agent_id, reference=form.reference.data or None, expires_in=form.expires_in,
        source="ui",
    )
    try:
        created = ledger.create_request(new_request, actor=actor())
    except ledger.LedgerError as exc:
        if exc.code == "reference_taken":
            form.reference.errors = [exc.message]
            return _form_page(form, exc.status)
        return _form_page(form, exc.status, error=exc.message)
    flash(_created_message(created), "success")
    return redirect(url_for("requests.detail", reference=created.reference))


def _created_message(created: PaymentRequest) -> str:
    message = f"Request {created.reference} created: the customer pays exactly {display(created.amount_minor, created.currency)}"
    if created.amount_minor != created.requested_minor:
        message += f" (asked {display(created.requested_minor, created.currency)}; moved so that the amount is unique)"
    return message + "."


def _request_or_404(reference: str) -> PaymentRequest:
    try:
        return ledger.find_request(reference)
    except ledger.LedgerError:
        abort(404, f"There is no request with reference {reference}.")


def _detail(payment_request: PaymentRequest, status: int = 200):
    payments = list(Payment.select().where(Payment.request == payment_request.id).order_by(Payment.received_at.desc()))
    candidates = (
        MatchCandidate.select(MatchCandidate, Payment).join(Payment)
        .where(MatchCandidate.request == payment_request.id).order_by(MatchCandidate.score.desc())
    )
    subject = f"request:{payment_request.reference}"
    outgoing = _outgoing(payment_request)
    # The timeline also tells what staff did to its messages and deliveries (retried, resent).
    events = list(timeline([subject] + [f"payment:{p.id}" for p in payments]
                           + [f"notification:{n.id}" for n in outgoing["messages"]]
                           + [f"webhook_delivery:{d.id}" for d in outgoing["deliveries"]]))
    billing_row, writebacks = billing_writeback.for_request(payment_request.id)
    return render(
        "pages/requests/detail.html", "partials/requests/status.html", status=status,
        r=payment_request, payments=payments, candidates=list(candidates), open_statuses=RequestStatus.OPEN,
        events=events, actors=actor_names(events), subject=subject, billing_row=billing_row, writebacks=writebacks,
        aliases=list(learned.for_request(payment_request).limit(50)), **outgoing,
    )


def _outgoing(payment_request: PaymentRequest) -> dict:
    """What Paywatch sent about the request: its WhatsApp messages and webhook deliveries, newest first."""
    messages = (Notification.select().where(Notification.request == payment_request.id)
                .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(MESSAGES_SHOWN))
    deliveries = (WebhookDelivery.select(WebhookDelivery, WebhookEndpoint).join(WebhookEndpoint)
                  .where(WebhookDelivery.request == payment_request.id)
                  .order_by(WebhookDelivery.id.desc()).limit(DELIVERIES_SHOWN))
    return {"messages": list(messages), "acks": ACKS, "retryable": RETRYABLE, "deliveries": list(deliveries),
            "endpoint_name": _endpoint_name}


def _endpoint_name(endpoint: WebhookEndpoint) -> str:
    """An endpoint as viewers may read it: its description, else its host (never a query string)."""
    return endpoint.description or urlsplit(endpoint.url).hostname or f"endpoint {endpoint.id}"


@bp.get("/<reference>")
@access(Role.VIEWER)
def detail(reference: str):
    return _detail(_request_or_404(reference))


@bp.post("/<reference>/cancel")
@access(Role.STAFF)
def cancel(reference: str):
    payment_request = _request_or_404(reference)
    reason = (request.form.get("reason") or "").strip()[:500]
    try:
        ledger.cancel_request(payment_request.reference, actor=actor(), reason=reason)
    except ledger.LedgerError as exc:
        flash(exc.message, "error")
        return _detail(PaymentRequest.get_by_id(payment_request.id), status=exc.status)
    flash(f"Request {payment_request.reference} cancelled.", "success")
    return redirect(url_for("requests.detail", reference=payment_request.reference))


@bp.post("/<reference>/messages/<int:notification_id>/retry")
@access(Role.STAFF)
def retry_message(reference: str, notification_id: int):
    """The notifications log's retry (webapp.domain.outbox.retry), for a message of this request."""
    payment_request = _request_or_404(reference)
    if Notification.get_or_none(Notification.id == notification_id, Notification.request == payment_request.id) is None:
        abort(404, f"Request {payment_request.reference} has no message {notification_id}.")
    try:
        outbox.retry(notification_id, actor=actor())
    except ValueError:
        flash(f"Message {notification_id} is not failed or cancelled: nothing to retry.", "error")
        return _detail(PaymentRequest.get_by_id(payment_request.id), status=409)
    flash(f"Message {notification_id} queued again.", "success")
    return redirect(url_for("requests.detail", reference=payment_request.reference) + "#request-messages")
