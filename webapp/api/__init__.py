"""The JSON API under /api/v1: views, their declarative schemas, the OpenAPI document and /api/docs.

Authenticates with bearer API keys (no cookies, so no CSRF). Imports the domain, storage,
plumbing, config, and webapp.web.errors / webapp.web.extensions (one error format, one limiter).
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the API blueprint (before the web's error handlers run, any order works)."""
    from webapp.api import payers, reference, review, views, webhook_endpoints
    from webapp.web.extensions import csrf

    app.register_blueprint(views.bp)
    app.register_blueprint(reference.bp)  # /api/docs: the reference page, made from the same document
    for blueprint in (views.bp, review.bp, payers.bp):
        csrf.exempt(blueprint)  # API calls authenticate with bearer keys, not cookies
    webhook_endpoints.init_app(app)
