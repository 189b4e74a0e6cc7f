"""What matching learned from staff (/review/learned): payer aliases per customer, and staff's edits.

Viewers see the list (searchable); staff forget, withdraw or restore an alias through
webapp.domain.learned (audited). A normal POST redirects back; an HTMX POST gets the
list partial.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from webapp.domain import learned, options
from webapp.storage.models import Role
from webapp.web.access import access, actor
from webapp.web.htmx import is_partial_request, render

bp = Blueprint("learned", __name__, url_prefix="/review/learned")
PAGE_SIZE = 200

DONE = {"forget": "forgotten", "withdraw": "withdrawn: it no longer counts", "restore": "restored"}


def _page(status: int = 200):
    search = (request.args.get("q") or request.form.get("q") or "").strip()[:100]
    rows = list(learned.listing(search).limit(PAGE_SIZE + 1))
    return render("pages/learned/index.html", "partials/learned/list.html", status=status,
                  rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, q=search,
                  learn_after=options.current()["learn_after"], status_of=learned.status,
                  can_act=current_user.has_role(Role.STAFF))


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _page()


@bp.post("/<int:alias_id>/<action>")
@access(Role.STAFF)
def edit(alias_id: int, action: str):
    try:
        learned.edit(alias_id, action, actor=actor())
    except learned.LearnedError as exc:
        flash(str(exc), "error")
        return _page(status=404 if exc.code == "not_found" else 422)
    flash(f"Alias {alias_id} {DONE[action]}.", "success")
    if is_partial_request():
        return _page()
    return redirect(url_for("learned.index", q=request.form.get("q") or None))
