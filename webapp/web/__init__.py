"""The staff pages and the public pages: one module per page area, plus shared web helpers.

Page modules (one blueprint each, named after what the user sees): auth, users, dashboard,
requests, payments, review, learned (what matching learned from staff), agents, vouchers,
notifications, sources, settings, webhooks (outbound endpoints), audit_log, hooks (inbound callbacks),
ops, paypage (the public payment page /pay/<token>), pay_settings (its settings), payers, rules_builder.
Shared helpers: access (roles), forms, money_forms, htmx, listing (filtered keyset lists), charts,
errors (one error format, JSON under /api),
headers (CSP and friends), extensions. Imports the domain, storage, plumbing and config.
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the extensions, every page blueprint, the error handlers and the headers."""
    from webapp.web import (
        agents,
        audit_log,
        auth,
        dashboard,
        errors,
        hooks,
        learned,
        notifications,
        ops,
        pay_settings,
        paypage,
        payers,
        payments,
        requests,
        review,
        rules_builder,
        settings,
        sources,
        users,
        vouchers,
        webhooks,
        whatsapp_session,
    )
    from webapp.web.extensions import csrf, htmx, limiter, login_manager

    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    for module in (auth, users, dashboard, ops, review, learned, settings, audit_log, requests, payments, agents,
                   sources, hooks, vouchers, notifications, whatsapp_session, paypage, pay_settings, payers,
                   rules_builder, webhooks):
        app.register_blueprint(module.bp)
    csrf.exempt(hooks.bp)  # gateway callbacks prove themselves with a static header
    ops.init_rq_dashboard(app)
    errors.init_app(app)
