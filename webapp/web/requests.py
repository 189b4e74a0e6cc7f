"""The requests pages: a live, filtered list; create (staff); detail with a timeline; cancel (staff).

Every change goes through webapp.domain.ledger; a LedgerError is shown to staff with its
HTTP status (409 for a state that no longer allows it), never swallowed.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from peewee import JOIN

from webapp.config import settings
from webapp.domain import billing_writeback, learned, ledger, phones
from webapp.domain.money import display
from webapp.storage.models import Agent, MatchCandidate, Payment, PaymentRequest, RequestStatus, Role
from webapp.web.access import access, actor
from webapp.web.htmx import render
from webapp.web.listing import filtered_page, narrow
from webapp.web.money_forms import RequestFilters, RequestForm
from webapp.web.timeline import actor_names, timeline

bp = Blueprint("requests", __name__, url_prefix="/requests")


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
    if code:
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
    page, status = filtered_page(query, PaymentRequest)
    return render(
        "pages/requests/index.html", "partials/requests/table.html", status=status,
        listing=page, filters=filters, agents=agent_codes(), endpoint="requests.index",
        poll_args=request.args.to_dict(),
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
    events = list(timeline([subject] + [f"payment:{p.id}" for p in payments]))
    billing_row, writebacks = billing_writeback.for_request(payment_request.id)
    return render(
        "pages/requests/detail.html", "partials/requests/status.html", status=status,
        r=payment_request, payments=payments, candidates=list(candidates), open_statuses=RequestStatus.OPEN,
        events=events, actors=actor_names(events), subject=subject, billing_row=billing_row, writebacks=writebacks,
        aliases=list(learned.for_request(payment_request).limit(50)),
    )


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
