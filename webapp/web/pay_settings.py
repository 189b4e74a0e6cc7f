"""Settings → Payment page (admins): the business name and logo the public page shows, and the
payment methods with their instructions and what each QR code encodes (webapp/domain/paypage.py)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for

from webapp.domain import paypage
from webapp.storage.models import Role
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("pay_settings", __name__, url_prefix="/settings/payment-page")
FIELDS = ("kind", "label", "number", "account", "instructions", "qr")


def _page(values: dict, error: str | None = None, status: int = 200):
    rows = list(values.get("methods", []))
    rows += [{}] * (paypage.MAX_METHODS - len(rows))
    return render("pages/settings/payment_page.html", "pages/settings/payment_page.html", status=status,
                  values=values, rows=rows[:paypage.MAX_METHODS], kinds=paypage.METHOD_KINDS,
                  placeholders=paypage.PLACEHOLDERS, error=error)


@bp.get("/")
@access(Role.ADMIN)
def index():
    return _page(paypage.page_settings())


@bp.post("/")
@access(Role.ADMIN)
def save():
    current = paypage.page_settings()
    methods = [{f: request.form.get(f"method-{i}-{f}", "") for f in FIELDS} for i in range(paypage.MAX_METHODS)]
    submitted = {"business_name": request.form.get("business_name", ""), "logo": current["logo"], "methods": methods}
    try:
        upload = request.files.get("logo")
        if request.form.get("remove_logo"):
            submitted["logo"] = ""
        elif upload is not None and upload.filename:
            submitted["logo"] = paypage.logo_data_uri(upload.read(paypage.MAX_LOGO_BYTES + 1), upload.mimetype or "")
        paypage.save_page_settings(submitted["business_name"], submitted["logo"], methods, actor=actor())
    except paypage.PageSettingsError as exc:
        return _page(submitted, error=str(exc), status=400)
    flash("Payment page saved.", "success")
    return redirect(url_for("pay_settings.index"))
