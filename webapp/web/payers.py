"""The payers pages (/payers): the roster by group, CSV import with its report, requests for a
whole group, and each payer's statement (page and CSV)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, time

from flask import Blueprint, Response, abort, flash, request

from webapp.config import settings
from webapp.domain import money, payers
from webapp.domain.agents import AgentError, decode
from webapp.domain.ledger.installments import overdue
from webapp.storage.models import Payer, PaymentRequest, Role, utcnow
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("payers", __name__, url_prefix="/payers")
MAX_UPLOAD = 5 * 1024 * 1024
PAGE = 500


def _groups() -> list[str]:
    return [row.group for row in Payer.select(Payer.group).distinct().order_by(Payer.group).limit(200)]


def _index(status: int = 200, **extra):
    group = (request.args.get("group") or "").strip()[:200]
    query = Payer.select().order_by(Payer.group, Payer.code).limit(PAGE)
    if group:
        query = query.where(Payer.group == group)
    context = {"report": None, "error": None, "made": None, **extra}
    return render("pages/payers/index.html", "pages/payers/index.html", status=status, payers=list(query),
                  groups=_groups(), group=group, currency=settings().currency, **context)


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _index()


@bp.post("/import")
@access(Role.STAFF)
def import_csv():
    upload = request.files.get("file")
    raw = upload.read(MAX_UPLOAD + 1) if upload and upload.filename else request.form.get("lines", "").encode()
    if len(raw) > MAX_UPLOAD:
        return _index(422, error="The file is larger than 5 MB; split it.")
    if not raw.strip():
        return _index(422, error="Choose a CSV file (code,name,phones,group) or paste its lines.")
    try:
        report = payers.import_csv(decode(raw), actor=actor())
    except AgentError as exc:
        return _index(422, error=exc.message)
    flash(f"{report.created} payer(s) added, {report.updated} updated, {len(report.rejected)} line(s) rejected.",
          "success" if not report.rejected else "error")
    return _index(report=report)


@bp.post("/requests")
@access(Role.STAFF)
def request_for_group():
    """One installment request per payer of a group ("Term 1 fees, 500,000, due 2027-01-15, P5")."""
    form = request.form
    group, label = (form.get("group") or "").strip(), (form.get("label") or "").strip()[:120]
    currency = settings().currency
    try:
        amount = money.parse_typed(form.get("amount") or "", currency)
    except money.MoneyError as exc:
        return _index(422, error=f"Give the amount (e.g. 500,000): {str(exc).replace('amount ', '', 1)}.")
    try:
        due_day = datetime.strptime((form.get("due") or "").strip(), "%Y-%m-%d").date()
    except ValueError:
        return _index(422, error="Give the due date (YYYY-MM-DD).")
    if not group or not label or amount <= 0:
        return _index(422, error="Give the group, a label (e.g. Term 1 fees) and an amount above 0.")
    due_at = datetime.combine(due_day, time(23, 59), settings().zone).astimezone(utcnow().tzinfo)
    try:
        made = payers.request_for_group(group, amount, currency, due_at, label=label, actor=actor())
    except payers.PayerError as exc:
        return _index(422, error=exc.message)
    flash(f"{len(made.created)} request(s) created for {group}; {len(made.skipped)} skipped.", "success")
    return _index(made=made)


def _payer_or_404(code: str) -> Payer:
    payer = Payer.get_or_none(Payer.code == code[:200])
    if payer is None:
        abort(404, f"There is no payer with code {code[:200]}.")
    return payer


@bp.get("/<code>")
@access(Role.VIEWER)
def detail(code: str):
    payer = _payer_or_404(code)
    requests = list(PaymentRequest.select().where(PaymentRequest.payer == payer.id).order_by(PaymentRequest.id.desc()))
    now = utcnow()
    return render("pages/payers/detail.html", "pages/payers/detail.html", payer=payer,
                  sheet=payers.statement(payer), requests=requests, late={r.id for r in requests if overdue(r, now)})


@bp.get("/<code>/statement.csv")
@access(Role.VIEWER)
def statement_csv(code: str):
    """The statement as CSV: date (local), what, reference, charge, paid, running balance."""
    sheet = payers.statement(_payer_or_404(code))
    out, zone, running = io.StringIO(), settings().zone, 0
    writer = csv.writer(out)
    writer.writerow(["date", "what", "reference", "charge", "paid", "balance", "currency"])
    for line in sheet.lines:
        running += line.charge_minor - line.paid_minor
        writer.writerow([line.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), line.text, line.reference,
                         money.to_decimal_string(line.charge_minor, sheet.currency) if line.charge_minor else "",
                         money.to_decimal_string(line.paid_minor, sheet.currency) if line.paid_minor else "",
                         money.to_decimal_string(running, sheet.currency), sheet.currency])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="statement-{sheet.payer.code}.csv"'})

