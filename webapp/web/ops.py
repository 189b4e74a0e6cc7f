"""Operators' pages: /favicon.ico (a redirect to static/favicon.svg), /healthz (what it checks: webapp/domain/health.py), /metrics (admins or a
bearer token; the series: webapp/domain/metrics.py), and rq-dashboard (0.9.0)
under /ops/rq for admins only.

rq-dashboard decisions:

- Admins only: an app-level before_request guards its blueprint (a guard on the
  blueprint itself breaks the second create_app() in one process; STACK.md).
- Every change is a POST with our CSRF token. Its state-changing routes (requeue a job,
  requeue a queue's failed jobs, delete a job, empty a registry, compact a queue) are
  exactly the ones that accept POST; the guard refuses any other method on them
  (requeue-all also answered a plain GET), and Flask-WTF checks them like every POST:
  the blueprint is not exempt. Its own script sends the header X-CSRFToken from a
  cookie named `_csrf_token` when there is one, so its responses carry that cookie:
  the session's CSRF token (the same one our pages put in their HTML), path /ops/rq,
  SameSite=Strict, readable by script. A cross-site form or script has neither the
  cookie nor the token, so its POST gets 400. The dashboard's buttons keep working
  (rather than our own copies of them). tests/test_ops_dashboard.py pins its routes:
  a new version's must be read again for what changes state.
- Its own Content-Security-Policy (DASHBOARD_POLICY), the one place the strict policy
  of webapp/web/errors.py does not apply: the dashboard renders with one inline <script>,
  underscore templates (eval: `new Function`) and inline style attributes. Its inline
  script gets a per-response nonce as the page is served; scripts are allowed from
  'self', that nonce and eval, never 'unsafe-inline'. That matters: its job page
  writes a job's description and exception text into the page unescaped, and an
  exception message can quote outside text (a mail, a portal page); markup injected
  that way cannot run (no inline handlers, no nonce). Styles may be inline here.
"""
from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from functools import wraps

from flask import Blueprint, Flask, abort, jsonify, redirect, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from webapp.domain.health import health
from webapp.storage.models import Role
from webapp.web.access import PUBLIC, access
from webapp.web.errors import content_security_policy
from webapp.web.extensions import login_manager

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@access(PUBLIC)
def healthz():
    checks, ok = health()
    body = {"ok": ok, "checked_at": datetime.now(timezone.utc).isoformat(), **checks}
    return jsonify(body), 200 if ok else 503


@bp.get("/favicon.ico")
@access(PUBLIC)
def favicon():
    """Browsers ask for /favicon.ico whatever the page says: the one icon is static/favicon.svg."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


DASHBOARD_PREFIX = "/ops/rq"
DASHBOARD_CSRF_COOKIE = "_csrf_token"  # the cookie rq-dashboard's script reads its X-CSRFToken from
DASHBOARD_POLICY = content_security_policy(script_src="'self' 'nonce-{nonce}' 'unsafe-eval'",
                                           style_src="'self' 'unsafe-inline'")
_INLINE_SCRIPT = '<script type="text/javascript">'  # rq_dashboard/base.html's one inline script


def init_rq_dashboard(app: Flask) -> None:
    import rq_dashboard

    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["PAYWATCH"].redis_url
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
    rq_dashboard.web.setup_rq_connection(app)

    @app.before_request
    def _admins_only_and_changes_by_post():
        if request.blueprint != "rq_dashboard":
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.has_role(Role.ADMIN):
            abort(403)
        if request.url_rule is not None and "POST" in request.url_rule.methods and request.method != "POST":
            abort(405, valid_methods=["POST"])
        if (request.view_args or {}).get("instance_number", 0) != 0:
            abort(404)  # one Redis: rq-dashboard raises (a 500) for an instance it does not have
        return None

    # Scoped to the blueprint, so it runs before the app-wide headers (which then keep this policy).
    app.after_request_funcs.setdefault("rq_dashboard", []).append(_dashboard_response)


def _dashboard_response(response):
    """The dashboard's policy with a fresh nonce on its inline script, and the CSRF cookie its script reads."""
    nonce = secrets.token_urlsafe(16)
    response.headers["Content-Security-Policy"] = DASHBOARD_POLICY.format(nonce=nonce)
    if response.mimetype != "text/html" or response.direct_passthrough:
        return response
    page = response.get_data(as_text=True)
    response.set_data(page.replace(_INLINE_SCRIPT, f'<script type="text/javascript" nonce="{nonce}">'))
    if current_user.is_authenticated and current_user.has_role(Role.ADMIN):
        from webapp.config import settings

        response.set_cookie(DASHBOARD_CSRF_COOKIE, generate_csrf(), path=DASHBOARD_PREFIX, samesite="Strict",
                            secure=settings().secure_cookies, httponly=False)
    return response


def _bearer_or_admin(view):
    """/metrics answers an admin's session (the @access guard inside) or, for Prometheus, the
    header `Authorization: Bearer $PAYWATCH_METRICS_TOKEN` (compared in constant time). A
    request that sends a bearer token is judged by it alone: a wrong one, or any when no
    token is configured, gets 401 in the error format."""

    @wraps(view)
    def guarded(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if not header:
            return view(*args, **kwargs)
        from webapp.config import settings
        from webapp.web.errors import error_body

        scheme, _, given = header.partition(" ")
        expected = settings().metrics_token
        if scheme.lower() == "bearer" and expected and hmac.compare_digest(given.strip().encode(), expected.encode()):
            return _metrics_response()
        body = error_body(401, "unauthorized", "the metrics token is missing or wrong")
        return jsonify(body), 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}

    return guarded


@bp.get("/metrics")
@_bearer_or_admin
@access(Role.ADMIN)
def metrics():
    """Prometheus text (webapp/domain/metrics.py): admins' sessions, or the metrics bearer token."""
    return _metrics_response()


def _metrics_response():
    from webapp.domain import metrics as series

    return series.exposition(), 200, {"Content-Type": series.CONTENT_TYPE, "Cache-Control": "no-store"}
