"""Every view declares who may reach it with @access(level).

A test walks every registered route and fails when a view has no declared
access, so a new route cannot be left open by accident.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import abort
from flask_login import current_user

from webapp.storage.models import Role
from webapp.web.extensions import login_manager

PUBLIC = "public"
API_LEVELS = ("api:staff", "api:admin")  # checked by webapp.api.inputs.api_access
LEVELS = (PUBLIC, Role.VIEWER, Role.STAFF, Role.ADMIN, *API_LEVELS)
ROLE_RANK = Role.RANK


def access(level: str) -> Callable:
    """Allow `level` and above: public, viewer < staff < admin. Anonymous → login; too low → 403."""
    if level not in LEVELS or level in API_LEVELS:
        raise ValueError(f"unknown access level {level!r}")

    def decorate(view: Callable) -> Callable:
        if level == PUBLIC:
            view.access = PUBLIC
            return view

        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(level):
                abort(403)
            return view(*args, **kwargs)

        guarded.access = level
        return guarded

    return decorate


def actor() -> str:
    """Who is acting, for the audit log: "user:<id>" in a logged-in request, else "system"."""
    try:
        if current_user and current_user.is_authenticated:
            return f"user:{current_user.id}"
    except RuntimeError:  # outside a request
        pass
    return "system"
