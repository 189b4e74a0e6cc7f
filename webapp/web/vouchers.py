"""The voucher pools pages (/vouchers): counts per pool, CSV import with its report, export of used codes."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, flash, request

from webapp.domain import vouchers
from webapp.storage.models import Role
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("vouchers", __name__, url_prefix="/vouchers")
MAX_UPLOAD = 5 * 1024 * 1024


@bp.get("/")
@access(Role.VIEWER)
def index():
    """Every pool with total, used and left; low stock marked."""
    return render("pages/vouchers/index.html", "partials/vouchers/pools.html", pools=vouchers.pools(),
                  low=_threshold())


def _threshold() -> int:
    from webapp.domain import options

    return options.current().get("voucher_low_stock", vouchers.DEFAULT_LOW_STOCK)


@bp.get("/import")
@access(Role.STAFF)
def import_form():
    return render("pages/vouchers/import.html", "partials/vouchers/report.html",
                  pool=request.args.get("pool", ""), report=None, error=None)


@bp.post("/import")
@access(Role.STAFF)
def import_codes():
    """A CSV file (or pasted codes) into a pool; the report lists duplicates and rejected lines."""
    pool = request.form.get("pool", "")
    upload = request.files.get("file")
    raw = upload.read(MAX_UPLOAD + 1) if upload and upload.filename else request.form.get("codes", "").encode()
    error = None
    if len(raw) > MAX_UPLOAD:
        error = "the file is larger than 5 MB; split it"
    elif not raw.strip():
        error = "choose a CSV file or paste codes, one per line"
    if error is None:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text, error = "", "the file is not UTF-8 text"
    if error is None:
        try:
            report = vouchers.import_codes(pool, io.StringIO(text, newline=""), actor=actor())
        except vouchers.VoucherError as exc:
            error = str(exc)
    if error is not None:
        return render("pages/vouchers/import.html", "partials/vouchers/report.html", status=422,
                      pool=pool, report=None, error=error)
    flash(f"{report.added} code(s) added to {report.pool}", "success")
    return render("pages/vouchers/import.html", "partials/vouchers/report.html", pool=report.pool,
                  report=report, error=None)


@bp.get("/<pool>/used.csv")
@access(Role.STAFF)
def export_used(pool: str):
    """CSV of the pool's handed-out codes: pool, code, request reference, assigned_at (UTC)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["pool", "code", "request", "assigned_at"])
    for v in vouchers.used_codes(pool):
        writer.writerow([v.pool, v.code, v.request.reference, v.assigned_at.isoformat() if v.assigned_at else ""])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="vouchers-{pool}-used.csv"'})
