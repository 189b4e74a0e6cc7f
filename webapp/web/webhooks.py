"""Settings → Webhooks (admins): endpoints, their deliveries and attempt logs, resend, replay, rotation.

The blueprint is "webhooks" under /settings/webhooks. A new or rotated secret is shown in
that one response only (never flashed, logged or cached).
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, request, url_for

from webapp.config import settings
from webapp.domain import webhook_delivery, webhooks
from webapp.storage.models import Role, WebhookDelivery, WebhookEndpoint
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("webhooks", __name__, url_prefix="/settings/webhooks")
RECENT = 50


def _form() -> dict:
    return {
        "url": request.form.get("url", ""),
        "events": [e for e in request.form.getlist("events") if e],
        "description": request.form.get("description", ""),
        "enabled": request.form.getlist("enabled")[-1:] == ["1"],
    }


def _list_page(status: int = 200, *, form: dict | None = None, error: webhooks.WebhookError | None = None,
               new_secret: WebhookEndpoint | None = None):
    endpoints = list(WebhookEndpoint.select().order_by(WebhookEndpoint.id))
    response = render("pages/settings/webhooks.html", "partials/settings/webhooks_table.html", status=status,
                      endpoints=endpoints, event_types=webhooks.EVENT_TYPES, error=error, new_secret=new_secret,
                      form=form or {"url": "", "events": [], "description": "", "enabled": True})
    if new_secret:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@access(Role.ADMIN)
def index():
    return _list_page()


@bp.post("/")
@access(Role.ADMIN)
def create():
    form = _form()
    try:
        endpoint = webhooks.create_endpoint(form["url"], form["events"], description=form["description"],
                                            actor=actor())
    except webhooks.WebhookError as exc:
        return _list_page(400, form=form, error=exc)
    return _list_page(201, new_secret=endpoint)


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.get_or_none(WebhookEndpoint.id == endpoint_id)
    if endpoint is None:
        abort(404)
    return endpoint


def _detail_page(endpoint: WebhookEndpoint, status: int = 200, *, error: webhooks.WebhookError | None = None,
                 form: dict | None = None, new_secret: bool = False):
    recent = list(WebhookDelivery.select().where(WebhookDelivery.endpoint == endpoint.id)
                  .order_by(WebhookDelivery.id.desc()).limit(RECENT))
    attempts = {d.id: webhook_delivery.attempts_of(d.id) for d in recent}
    response = render("pages/settings/webhook.html", "partials/settings/webhook_deliveries.html", status=status,
                      endpoint=endpoint, deliveries=recent, attempts=attempts, event_types=webhooks.EVENT_TYPES,
                      error=error, new_secret=new_secret,
                      form=form or {"url": endpoint.url, "events": endpoint.events or [],
                                    "description": endpoint.description, "enabled": endpoint.is_active})
    if new_secret:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:endpoint_id>")
@access(Role.ADMIN)
def detail(endpoint_id: int):
    return _detail_page(_endpoint(endpoint_id))


@bp.post("/<int:endpoint_id>")
@access(Role.ADMIN)
def update(endpoint_id: int):
    endpoint, form = _endpoint(endpoint_id), _form()
    try:
        webhooks.update_endpoint(endpoint.id, actor=actor(), url=form["url"], events=form["events"],
                                 description=form["description"], enabled=form["enabled"])
    except webhooks.WebhookError as exc:
        return _detail_page(endpoint, 400, error=exc, form=form)
    flash("Endpoint saved.", "success")
    return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/<int:endpoint_id>/rotate")
@access(Role.ADMIN)
def rotate(endpoint_id: int):
    endpoint = webhooks.rotate_secret(_endpoint(endpoint_id).id, actor=actor())
    return _detail_page(endpoint, new_secret=True)


@bp.post("/<int:endpoint_id>/delete")
@access(Role.ADMIN)
def delete(endpoint_id: int):
    webhooks.delete_endpoint(_endpoint(endpoint_id).id, actor=actor())
    flash("Endpoint deleted.", "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/<int:endpoint_id>/replay")
@access(Role.ADMIN)
def replay(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    text = request.form.get("since", "").strip()
    try:
        since = datetime.fromisoformat(text[:32]).replace(tzinfo=settings().zone)
    except ValueError:
        error = webhooks.WebhookError("since", "must be a date and time, e.g. 2026-01-31T14:00")
        return _detail_page(endpoint, 400, error=error)
    count = webhook_delivery.replay_failed(endpoint.id, since, actor=actor())
    flash(f"{count} failed deliveries since {text.replace('T', ' ')} are being sent again.", "success")
    return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/deliveries/<int:delivery_id>/resend")
@access(Role.ADMIN)
def resend(delivery_id: int):
    delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
    if delivery is None:
        abort(404)
    try:
        webhook_delivery.resend(delivery.id, actor=actor())
    except webhooks.WebhookError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Delivery {delivery.id} ({delivery.event}) is being sent again.", "success")
    return redirect(url_for("webhooks.detail", endpoint_id=delivery.endpoint_id))
