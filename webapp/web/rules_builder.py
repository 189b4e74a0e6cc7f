"""The rule builder page: from a message no rule reads, a provider rule staff mark, preview and save.

GET /rules/build/<payment_id> shows the message text the rules see; the staff member
marks the amount, payer, transaction id and date by selecting them in the text
(static/rules_builder.js copies the selection) or typing them, and asks for a preview:
the proposed named-group pattern, the provider file it would write and what it reads
from the stored messages of the same provider and source (GET: nothing changes).
POST saves the file into the instance folder and re-reads the waiting unreadable or
generic payments (through ledger.reread_payment). The parsing runs in jobs/rules.py,
called by name through jobqueue.run_inline: webapp never imports jobs.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from webapp.plumbing import jobqueue
from webapp.storage.models import Payment, Role
from webapp.web.access import access, actor

bp = Blueprint("rules", __name__, url_prefix="/rules")
FIELDS = ("amount", "sender_name", "transaction_id", "date", "sender_phone", "name", "currency", "label")
_MAX_FIELD = 500


def _exists_or_404(payment_id: int) -> None:
    if not Payment.select().where(Payment.id == payment_id).exists():
        abort(404, f"There is no payment {payment_id}.")


def _form(source) -> dict[str, str]:
    return {key: (source.get(key) or "")[:_MAX_FIELD] for key in FIELDS}


@bp.get("/build/<int:payment_id>")
@access(Role.STAFF)
def builder(payment_id: int):
    _exists_or_404(payment_id)
    try:
        view = jobqueue.run_inline("rules_build", payment_id, _form(request.args))
    except ValueError as exc:  # jobs.rules.RuleBuildError: the payment or its marks cannot be used
        flash(str(exc), "error")
        return redirect(url_for("review.index"))
    return render_template("pages/rules/builder.html", view=view, form=_form(request.args))


@bp.post("/build/<int:payment_id>")
@access(Role.STAFF)
def save(payment_id: int):
    _exists_or_404(payment_id)
    form = _form(request.form)
    try:
        done = jobqueue.run_inline("rules_save", payment_id, form, actor())
    except ValueError as exc:
        flash(f"Not saved: {exc}", "error")
        view = jobqueue.run_inline("rules_build", payment_id, form)
        return render_template("pages/rules/builder.html", view=view, form=form), 422
    flash(f"Rule saved to {done['path']}; {done['reread']} waiting payment(s) read again, "
          f"{done['still_unread']} still unread.", "success")
    return redirect(url_for("review.index"))
