"""Paywatch: watch where money arrives, match it to what is owed, tell people on WhatsApp.

create_app() builds the Flask application; nothing else happens at import time.
"""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

from webapp.config import ROOT, ConfigError, Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application from `settings` (default: parsed from the environment)."""
    settings = settings or load_settings()
    from webapp.domain import money

    if settings.currency not in money.currencies():  # the ISO list lives in the domain, not in config
        raise ConfigError("PAYWATCH_CURRENCY", f"{settings.currency!r} is not an ISO 4217 currency code")
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(settings.instance_path),
    )
    _configure(app, settings)

    from webapp import api, cli, web
    from webapp.domain.input_bounds import IdConverter
    from webapp.storage import db

    app.url_map.converters["int"] = IdConverter  # before any route is added
    db.init_db(settings)
    db.register_request_hooks(app)
    web.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app


def _configure(app: Flask, settings: Settings) -> None:
    from webapp.plumbing import logs

    logs.configure(settings.log_level, settings.log_format)
    app.before_request(_request_id)
    app.after_request(_echo_request_id)
    app.config.update(
        PAYWATCH=settings,
        SECRET_KEY=settings.secret_key,
        # CSRF tokens live as long as the session: a page left open keeps working.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="paywatch_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        RATELIMIT_STORAGE_URI=settings.redis_url,
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX="paywatch-limits",
        # Redis down: limits hold per process, in memory, until it answers again (never a 500 at login).
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 2, "socket_timeout": 5},
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
    )


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _request_id() -> None:
    """Each request's id for its log lines: the proxy's X-Request-ID when it is sane, else a new one."""
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _echo_request_id(response):
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response
