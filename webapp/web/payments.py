"""The payments pages: a live, filtered list; detail with every evidence signal; staff record a payment.

A payment recorded here goes through the same door as every source
(ledger.ingest_payment, source "manual"), so it is matched like any other, and
what staff typed is kept as its raw evidence.
"""
from __future__ import annotations

import json
from uuid import uuid4

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from peewee import JOIN

from webapp.config import settings
from webapp.domain import ledger, matching, phones
from webapp.domain.money import display
from webapp.storage.models import MatchCandidate, Payment, PaymentRequest, PaymentSighting, Role, Source
from webapp.web.access import access, actor
from webapp.web.htmx import render
from webapp.web.listing import filtered_page, narrow
from webapp.web.money_forms import PaymentFilters, PaymentForm
from webapp.web.timeline import actor_names, timeline

bp = Blueprint("payments", __name__, url_prefix="/payments")
MANUAL = "manual"


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
    page, status = filtered_page(query, Payment)
    return render(
        "pages/payments/index.html", "partials/payments/table.html", status=status,
        listing=page, filters=filters, sources=_sources(), endpoint="payments.index",
        poll_args=request.args.to_dict(),
    )


def _payment_or_404(payment_id: int) -> Payment:
    try:
        return ledger.find_payment(payment_id)
    except ledger.LedgerError:
        abort(404, f"There is no payment {payment_id}.")


@bp.get("/<int:payment_id>")
@access(Role.VIEWER)
def detail(payment_id: int):
    payment = _payment_or_404(payment_id)
    candidates = (
        MatchCandidate.select(MatchCandidate, PaymentRequest).join(PaymentRequest)
        .where(MatchCandidate.payment == payment.id).order_by(MatchCandidate.score.desc())
    )
    subject = f"payment:{payment.id}"
    events = list(timeline([subject]))
    sightings = list(PaymentSighting.select().where(PaymentSighting.payment == payment.id).order_by(PaymentSighting.id))
    return render(
        "pages/payments/detail.html", "partials/payments/evidence.html",
        p=payment, candidates=list(candidates), events=events, actors=actor_names(events), subject=subject,
        sightings=sightings,
    )


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
