"""App-wide view plumbing: error pages (JSON under /api), template filters, security headers (CSP, HSTS)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.domain import durations, money
from webapp.domain.input_bounds import unstorable


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.add_template_filter(_localtime, "localtime")
    app.add_template_filter(money.display, "money")
    app.before_request(_refuse_unstorable_text)
    app.after_request(_security_headers)
    from webapp.web.listing import args_without

    app.jinja_env.globals["args_without"] = args_without


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_body(status: int, code: str, message: str, details=None) -> dict:
    """The one error format of the JSON API (DESIGN.md Interfaces)."""
    return {
        "success": False,
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "timestamp": datetime.now(timezone.utc).isoformat(),
        },
    }


def _unstorable_part() -> str | None:
    """Which part of the request holds a NUL or an unpaired surrogate (no column can store one)."""
    if unstorable(request.path):
        return "path"
    forms = [("form", request.form)] if request.mimetype in _FORMS else []
    for where, values in [("query", request.args), *forms]:
        for name, value in values.items(multi=True):
            if unstorable(name) or unstorable(value):
                return name if where == "query" else f"form field {name}"
    for name in ("Authorization", "Idempotency-Key", "HX-Current-URL", "Referer"):
        if unstorable(request.headers.get(name, "")):
            return f"header {name}"
    return None


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_unstorable_text():
    """A NUL anywhere a view may hand text to the database is refused up front (PostgreSQL
    cannot store one; on SQLite it would cut a string short). Fields check the rest."""
    where = _unstorable_part()
    if where is None:
        return None
    problem = "holds a NUL or an unpaired surrogate character"
    if wants_json():
        return jsonify(error_body(422, "validation_failed", f"{where}: {problem}", {where: problem})), 422
    return render_template("pages/error.html", status=400, title="Bad request", message=f"The {where} {problem}."), 400


_CSRF_PROBLEMS = {  # flask-wtf's reasons, in our words
    "The CSRF token has expired.": "the page was open too long",
    "The CSRF session token is missing.": "your session ended (signed out, or the browser dropped its cookie)",
    "The CSRF token is missing.": "the form came without its token",
    "The CSRF tokens do not match.": "the form belongs to another session (signed in again elsewhere?)",
}


def _for_staff() -> bool:
    """Whether the route posted to is behind a login (not the login itself, the payment page, hooks…)."""
    from flask import current_app

    from webapp.web.access import PUBLIC

    view = current_app.view_functions.get(request.endpoint or "")
    return view is not None and getattr(view, "access", None) != PUBLIC  # rq-dashboard: admins (ops.py)


def _csrf_error(exc: CSRFError):
    from flask_login import current_user

    if not wants_json() and not current_user.is_authenticated and _for_staff():
        # The session is gone (ended, expired, its cookie dropped): log in again, and the form
        # typed is kept by static/app.js and filled in again after the login.
        from webapp.web.extensions import login_manager

        return login_manager.unauthorized()
    why = _CSRF_PROBLEMS.get(exc.description or "", "its security token is not valid")
    message = f"This form could not be accepted: {why}. Open the form's page again and send it again"
    message += ": what you typed is kept in this browser and filled in there." if _for_staff() else "."
    if wants_json():
        return jsonify(error_body(400, "csrf_failed", message)), 400
    return render_template("pages/error.html", status=400, title="Form expired", message=message, form_kept=_for_staff()), 400


def _http_error(exc: HTTPException):
    status = exc.code or 500
    if wants_json():
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify(error_body(status, code, exc.description or exc.name)), status
    title, message = exc.name, exc.description
    if status == 429:  # flask-limiter's description is the limit itself ("10 per 1 minute")
        title, message = "Too many attempts", f"Too many attempts — try again {durations.seconds_until(_retry_after())}."
    body = render_template("pages/error.html", status=status, title=title, message=message)
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")]
    return body, status, headers


def _retry_after() -> float:
    """Seconds until the limit that was hit lets the next attempt through (60 when unknown)."""
    from webapp.web.extensions import limiter

    try:
        current = limiter.current_limit
        if not current:
            return 60.0
        # reset_at is whole seconds, rounded up: never more than the limit's own window.
        return min(float(current.limit.get_expiry()), max(1.0, current.reset_at - time.time()))
    except Exception:  # noqa: BLE001 - the storage may be the reason; the page must still answer
        return 60.0


def _localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware UTC time shown in the configured zone."""
    if value is None:
        return "—"
    from webapp.config import settings

    return value.astimezone(settings().zone).strftime(fmt)


def content_security_policy(script_src: str = "'self'", style_src: str = "'self'") -> str:
    """Our Content-Security-Policy: no inline script or style, no eval. Templates load
    static/*.js and wire behaviour through data attributes; htmx is configured (base.html)
    to need neither; data: images are Pico's CSS icons. The one page that cannot do without
    (rq-dashboard, webapp/web/ops.py) widens only `script_src` and `style_src`, and sets its
    policy before the app-wide one, which then leaves it alone."""
    return "; ".join((
        "default-src 'self'",
        f"script-src {script_src}",
        f"style-src {style_src}",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


CONTENT_SECURITY_POLICY = content_security_policy()
HSTS = "max-age=31536000"  # a year; not includeSubDomains: other hosts of the business are not ours to pin


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for browsers without CSP 2
    headers.setdefault("Referrer-Policy", "same-origin")
    from webapp.config import settings

    if settings().secure_cookies:  # secure cookies mean HTTPS: browsers should never try plain HTTP
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response
