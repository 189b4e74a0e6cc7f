"""The payments pages: a live, filtered list; detail with every evidence signal; staff record a payment.

A payment recorded here goes through the same door as every source
(ledger.ingest_payment, source "manual"), so it is matched like any other, and
what staff typed is kept as its raw evidence.

An unmatched or rejected payment's page offers the review queue's suggestions, search
and link form (partials/review/linking.html); its link goes through ledger.link, and a
refusal is shown by the form with the reference typed kept.
"""
from __future__ import annotations

import json
from uuid import uuid4

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from peewee import JOIN

from webapp.config import settings
from webapp.domain import ledger, matching, phones, suggestions
from webapp.domain.money import display, to_decimal_string
from webapp.storage.models import (
    MatchCandidate, Payment, PaymentRequest, PaymentSighting, PaymentStatus, Role, Source,
)
from webapp.web.access import access, actor
from webapp.web.htmx import render
from webapp.web.listing import (
    SortColumn, Sortable, csv_lines, csv_response, filtered_page, form_problems, in_order, local_iso, narrow,
    refused_export,
)
from webapp.web.money_forms import PaymentFilters, PaymentForm
from webapp.web.review import Problem, linked_message
from webapp.web.timeline import actor_names, timeline

bp = Blueprint("payments", __name__, url_prefix="/payments")
MANUAL = "manual"
LINKABLE = (PaymentStatus.UNMATCHED, PaymentStatus.REJECTED)  # the page offers suggestions and a link form

# The list's sortable columns (a whitelist); newest first by when the money arrived unless asked otherwise.
SORTS = Sortable(
    Payment,
    SortColumn("received", Payment.received_at),
    SortColumn("id", Payment.id),
    SortColumn("amount", Payment.amount_minor),
    SortColumn("sender", Payment.sender_name, first="asc"),
    SortColumn("source", Payment.source, first="asc"),
    SortColumn("status", Payment.status, first="asc"),
    SortColumn("confidence", Payment.confidence),
)
CSV_COLUMNS = ("id", "received_at", "amount", "currency", "sender_name", "sender_phone", "source", "provider",
               "transaction_id", "status", "request_reference", "confidence", "late", "note")


def _filtered(filters: PaymentFilters):
    """The payment query for valid filters, else None (errors sit on the form)."""
    if not filters.parse():
        return None
    # The request each payment pays comes with it (its reference is shown): no query per row.
    query = (Payment.select(Payment, PaymentRequest.id, PaymentRequest.reference)
             .join(PaymentRequest, JOIN.LEFT_OUTER, on=(Payment.request == PaymentRequest.id)))
    if filters.status.data:
        query = query.where(Payment.status == filters.status.data)
    source = (filters.source.data or "").strip()
    if source:
        query = query.where(Payment.source == source)
    return narrow(
        query, filters, time_field=Payment.received_at, amount_field=Payment.amount_minor,
        currency_field=Payment.currency, phone_field=Payment.sender_phone,
        text_fields=(Payment.sender_name, Payment.note, Payment.transaction_id, Payment.source_ref),
        shortcut=_exact_text)


def _exact_text(text: str):
    """A typed phone is that sender's payments; a transaction id that transaction (compared as the ledger does)."""
    e164 = phones.try_e164(text, settings().phone_region)
    if e164:
        return Payment.sender_phone == e164
    key = ledger.normalize_txn(text)
    return Payment.txn_norm == key if key else None


BUILT_IN_SOURCES = ("api", MANUAL)  # payments that come through no Source: the API and the staff form


def _sources() -> list[str]:
    """The source filter's choices: the configured sources and the built-in ways in (not a scan of payments)."""
    names = {row.name for row in Source.select(Source.name).limit(500)}
    return sorted(names | set(BUILT_IN_SOURCES))


@bp.get("/")
@access(Role.VIEWER)
def index():
    filters = PaymentFilters(request.args)
    query = _filtered(filters)
    sort = SORTS.read()
    page, status = filtered_page(query, Payment, sort)
    return render(
        "pages/payments/index.html", "partials/payments/table.html", status=status,
        listing=page, filters=filters, sources=_sources(), endpoint="payments.index",
        poll_args=request.args.to_dict(), sort=sort,
    )


@bp.get("/export.csv")
@access(Role.VIEWER)
def export():
    """The filtered list as CSV, in the list's order, streamed (amounts as decimals, local times)."""
    filters = PaymentFilters(request.args)
    query = _filtered(filters)
    if query is None:
        return refused_export(form_problems(filters))
    # _filtered joins the paid request's reference (no query per row).
    return csv_response("payments", csv_lines(CSV_COLUMNS, in_order(query, SORTS.read()), _csv_cells))


def _csv_cells(p: Payment) -> tuple:
    amount = to_decimal_string(p.amount_minor, p.currency) if p.amount_minor is not None and p.currency else ""
    return (
        p.id, local_iso(p.received_at), amount, p.currency, p.sender_name, p.sender_phone, p.source, p.provider,
        p.transaction_id, p.status, p.request.reference if p.request_id else "", p.confidence,
        "yes" if p.late else "no", p.note,
    )


def _payment_or_404(payment_id: int) -> Payment:
    try:
        return ledger.find_payment(payment_id)
    except ledger.LedgerError:
        abort(404, f"There is no payment {payment_id}.")


@bp.get("/<int:payment_id>")
@access(Role.VIEWER)
def detail(payment_id: int):
    return _detail(_payment_or_404(payment_id))


def _detail(payment: Payment, problem: Problem | None = None, status: int = 200):
    candidates = (
        MatchCandidate.select(MatchCandidate, PaymentRequest).join(PaymentRequest)
        .where(MatchCandidate.payment == payment.id).order_by(MatchCandidate.score.desc())
    )
    subject = f"payment:{payment.id}"
    events = list(timeline([subject]))
    sightings = list(PaymentSighting.select().where(PaymentSighting.payment == payment.id).order_by(PaymentSighting.id))
    linking = payment.status in LINKABLE
    return render(
        "pages/payments/detail.html", "partials/payments/evidence.html", status=status,
        p=payment, candidates=list(candidates), events=events, actors=actor_names(events), subject=subject,
        sightings=sightings, linking=linking, suggested=suggestions.suggest(payment) if linking else [],
        problem=problem, can_act=current_user.has_role(Role.STAFF), link_endpoint="payments.link", on="payment",
    )


@bp.post("/<int:payment_id>/link")
@access(Role.STAFF)
def link(payment_id: int):
    """Link this unmatched or rejected payment to a request (ledger.link); refused: the page, the error by the form."""
    payment = _payment_or_404(payment_id)
    reference = (request.form.get("reference") or "").strip()[:64]
    problem = Problem(payment.id, "link", reference, "Type the reference of the request this payment pays.")
    if not reference:
        return _detail(payment, problem, 422)
    try:
        linked = ledger.link(payment.id, reference, actor=actor(), user_id=current_user.id)
    except ledger.LedgerError as exc:
        return _detail(ledger.find_payment(payment.id), problem.refused(exc.message), exc.status)
    flash(linked_message(linked), "success")
    return redirect(url_for("payments.detail", payment_id=payment.id))


@bp.get("/new")
@access(Role.STAFF)
def new():
    return _form_page(PaymentForm())


def _form_page(form: PaymentForm, status: int = 200, error: str | None = None):
    return render_template("pages/payments/new.html", form=form, error=error), status


@bp.post("/")
@access(Role.STAFF)
def record():
    form = PaymentForm()
    if not form.validate_on_submit():
        return _form_page(form, 400)
    transaction_id = (form.transaction_id.data or "").strip() or None
    who = actor()
    observation = ledger.PaymentObservation(
        source=MANUAL,
        # A provider's transaction id makes recording idempotent; without one every entry is new money.
        source_ref=transaction_id or f"manual-{uuid4()}",
        amount_minor=form.amount_minor, currency=form.currency_code, received_at=form.received_utc,
        sender_name=(form.sender_name.data or "").strip(), sender_phone=form.phone,
        note=(form.note.data or "").strip(), transaction_id=transaction_id,
        raw=json.dumps({"recorded_by": who, "entered": form.entered()}, indent=2, ensure_ascii=False),
    )
    result = ledger.ingest_payment(observation, actor=who)
    flash(*_outcome(result))
    return redirect(url_for("payments.detail", payment_id=result.payment.id))


def _outcome(result: ledger.IngestResult) -> tuple[str, str]:
    """The flash (message, category) telling staff what matching decided."""
    payment = result.payment
    if result.sighting:
        return (f"That money is already payment {payment.id} (seen at {payment.source}, transaction "
                f"{payment.transaction_id}); your entry is kept on it as another sighting and pays nothing "
                f"twice (it is {payment.status}).", "warning")
    if not result.created:
        return (f"Payment {payment.id} with transaction id {payment.transaction_id} was already recorded; "
                f"nothing changed (it is {payment.status}).", "warning")
    amount = display(payment.amount_minor, payment.currency)
    decision: matching.Decision | None = result.decision
    if decision is not None and decision.action == "confirm" and decision.candidate:
        return (f"Payment {payment.id} of {amount} recorded and confirmed: it pays "
                f"{decision.candidate.reference} (confidence {decision.candidate.score}).", "success")
    reason = (decision.reason if decision else payment.reason or "").rstrip(".")
    if decision is not None and decision.action == "review":
        return f"Payment {payment.id} of {amount} recorded and sent to review: {reason}.", "warning"
    return f"Payment {payment.id} of {amount} recorded; no request matched: {reason}.", "warning"
