"""The settings pages (admins): run-time options in one form, and API keys.

The blueprint is "settings" under /settings; the environment settings are webapp.config.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from peewee import JOIN

from webapp.config import settings
from webapp.domain import apikeys, options
from webapp.storage.models import ApiKey, Role, User
from webapp.web.access import access, actor
from webapp.web.htmx import render

bp = Blueprint("settings", __name__, url_prefix="/settings")


def fields(values: dict[str, Any]) -> list[dict[str, Any]]:
    """What the form shows for each option: key, label, help, value and input kind."""
    rows = []
    for key, option in options.OPTIONS.items():
        value = values.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        rows.append({"key": key, "label": option.label, "help": option.help, "value": value,
                     "kind": option.kind, "choices": option.choices})
    return rows


def _submitted() -> dict[str, str]:
    """The options present in the form; a checkbox sends a hidden "0" then "1" when ticked."""
    return {key: request.form.getlist(key)[-1] for key in options.OPTIONS if key in request.form}


def _errors(changes: dict[str, str]) -> dict[str, str]:
    """Every bad value, by key (validated one by one so each field shows its own problem)."""
    errors = {}
    for key, value in changes.items():
        try:
            options.validate({key: value})
        except options.OptionError as exc:
            errors[exc.key] = _problem(exc)
    return errors


def _problem(exc: options.OptionError) -> str:
    problem = str(exc).removeprefix(f"{exc.key}: ")
    return "must be a whole number" if problem.startswith("invalid literal") else problem


def _options_page(values: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200):
    return render("pages/settings/index.html", "partials/settings/form.html", status=status,
                  fields=fields(values), errors=errors or {})


@bp.get("/")
@access(Role.ADMIN)
def index():
    return _options_page(options.current())


@bp.post("/")
@access(Role.ADMIN)
def save():
    changes = _submitted()
    errors = _errors(changes)
    if not errors:
        before = options.current()
        try:
            after = options.update(changes, actor=actor())
        except options.OptionError as exc:  # a rule update() checks beyond validate()
            errors[exc.key] = _problem(exc)
        else:
            changed = [options.OPTIONS[k].label for k in after if after[k] != before[k]]
            flash(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.", "success")
            return redirect(url_for("settings.index"))
    return _options_page({**options.current(), **changes}, errors, status=400)


# ------------------------------------------------------------------ API keys


def _keys_page(status: int = 200, *, name: str = "", role: str = Role.STAFF, rate_limit: str = "",
               error: str | None = None, new_key: tuple[ApiKey, str] | None = None):
    keys = (
        ApiKey.select(ApiKey, User)
        .join(User, join_type=JOIN.LEFT_OUTER, on=(ApiKey.created_by == User.id))
        .order_by(ApiKey.revoked_at.is_null(False), ApiKey.id.desc())
    )
    return render("pages/settings/api_keys.html", "partials/settings/api_keys_table.html", status=status,
                  keys=keys, roles=apikeys.ROLES, name=name, role=role, error=error, new_key=new_key,
                  rate_limit=rate_limit, default_rate_limit=settings().api_rate_limit,
                  rate_limit_error=bool(error and error.startswith("rate limit")))


@bp.get("/api-keys")
@access(Role.ADMIN)
def api_keys():
    return _keys_page()


@bp.post("/api-keys")
@access(Role.ADMIN)
def create_api_key():
    name, role = request.form.get("name", "").strip(), request.form.get("role", Role.STAFF)
    rate_limit = request.form.get("rate_limit", "").strip()
    try:
        row, key = apikeys.create(name, role, created_by=current_user.id, actor=actor(), rate_limit=rate_limit)
    except apikeys.ApiKeyError as exc:
        return _keys_page(400, name=name, role=role, rate_limit=rate_limit, error=str(exc))
    # Shown once, in this response only: never flashed (the session cookie), logged or cached.
    response = _keys_page(201, new_key=(row, key))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api-keys/<int:key_id>/revoke")
@access(Role.ADMIN)
def revoke_api_key(key_id: int):
    try:
        row = apikeys.revoke(key_id, actor=actor())
    except apikeys.ApiKeyError:
        abort(404)
    flash(f"API key {row.name} (pw_{row.prefix}) is revoked.", "success")
    return redirect(url_for("settings.api_keys"))
