"""Operators' pages: /healthz (what it checks: webapp/health.py), and rq-dashboard under /ops/rq for admins only.

rq-dashboard decision (see STACK.md): its blueprint is guarded by an app-level
before_request (a guard on the blueprint itself breaks the second create_app()
in one process). Its buttons POST without a CSRF token, so the blueprint is
exempt from CSRF; what protects those POSTs instead is that only a logged-in
admin reaches them, and our session cookie is SameSite=Lax, so a cross-site form
cannot carry it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Flask, abort, jsonify, request
from flask_login import current_user
from redis.exceptions import RedisError

from webapp import jobqueue
from webapp.access import PUBLIC, access
from webapp.extensions import csrf, login_manager
from webapp.health import health
from webapp.models import Role

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@access(PUBLIC)
def healthz():
    checks, ok = health()
    body = {"ok": ok, "checked_at": datetime.now(timezone.utc).isoformat(), **checks}
    return jsonify(body), 200 if ok else 503


def init_rq_dashboard(app: Flask) -> None:
    import rq_dashboard

    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["PAYWATCH"].redis_url
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/ops/rq")
    rq_dashboard.web.setup_rq_connection(app)
    csrf.exempt(rq_dashboard.blueprint)

    @app.before_request
    def _admins_only():
        if request.blueprint != "rq_dashboard":
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.has_role(Role.ADMIN):
            abort(403)
        return None


@bp.get("/metrics")
@access(Role.ADMIN)
def metrics():
    """Prometheus text: rows by status and queue lengths (admins; scrape with a session cookie)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
    from peewee import fn

    from webapp.models import Notification, Payment, PaymentRequest

    registry = CollectorRegistry()
    for model, name in ((PaymentRequest, "requests"), (Payment, "payments"), (Notification, "notifications")):
        gauge = Gauge(f"paywatch_{name}", f"{name} by status", ["status"], registry=registry)
        for status, count in model.select(model.status, fn.COUNT(model.id)).group_by(model.status).tuples():
            gauge.labels(status=status).set(count)
    queued = Gauge("paywatch_queue_jobs", "jobs waiting per RQ queue", ["queue"], registry=registry)
    healthy = Gauge("paywatch_up", "1 when the part answers", ["part"], registry=registry)
    checks, _ = health()
    for part, check in checks.items():
        healthy.labels(part=part).set(1 if check.get("ok") else 0)
    try:
        for name in jobqueue.QUEUES:
            queued.labels(queue=name).set(jobqueue.queue(name).count)
    except RedisError:
        pass
    return generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_LATEST}
