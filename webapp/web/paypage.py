"""The public payment page /pay/<token> (no login): how to pay, a live status, and "I've paid".

The token is the request's unguessable pay_token (never the reference). The status element
polls /pay/<token>/status with htmx every few seconds until the request ends; without
JavaScript a <meta refresh> and a "Check again" link do the same. The page and its status
are limited per client (PAYWATCH_PAY_PAGE_RATE_LIMIT), the claim form more tightly
(PAYWATCH_CLAIM_RATE_LIMIT): both on Redis through flask-limiter, like the login.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for

from webapp.config import settings
from webapp.domain import claims, paypage
from webapp.storage.models import PaymentRequest
from webapp.web.access import PUBLIC, access
from webapp.web.extensions import limiter

bp = Blueprint("pay", __name__, url_prefix="/pay")
POLL_SECONDS = 3
NO_JS_REFRESH_SECONDS = 15


def _page_limit() -> str:
    return settings().pay_page_rate_limit


def _claim_limit() -> str:
    return settings().claim_rate_limit


@bp.app_template_global("pay_url")
def pay_url(found: PaymentRequest) -> str:
    """The request's payment page link for templates: PAYWATCH_PUBLIC_URL, else this host."""
    return paypage.pay_url(found, settings().public_url, request.host_url)


# The page and its status share one allowance per client (the status polls every POLL_SECONDS).
_page_allowance = limiter.shared_limit(_page_limit, scope="pay-page", key_func=lambda: request.remote_addr or "")


def _request_for(token: str) -> PaymentRequest:
    found = paypage.find_by_token(token)
    if found is None:
        abort(404)
    return found


def _private(response):
    """The link is the key to the page: never cached by others, never sent on as a Referer."""
    response = make_response(response)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _context(found: PaymentRequest, *, with_methods: bool = True, **extra):
    return {"v": paypage.view(found, with_methods=with_methods), "token": found.pay_token, "poll_seconds": POLL_SECONDS,
            "refresh_seconds": NO_JS_REFRESH_SECONDS, "zone": settings().zone, **extra}


@bp.get("/<token>")
@access(PUBLIC)
@_page_allowance
def page(token: str):
    found = _request_for(token)
    response = _private(render_template("pages/pay/page.html", **_context(found, form={}, errors={})))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.get("/<token>/status")
@access(PUBLIC)
@_page_allowance
def status(token: str):
    """The status element alone (htmx polls it; it stops polling once the request has ended).
    204 while the state the caller shows (`seen`) is still the state: htmx then swaps nothing."""
    found = _request_for(token)
    context = _context(found, with_methods=False)
    if request.args.get("seen") == context["v"].state:
        return _private(make_response("", 204))
    return _private(render_template("partials/pay/status.html", **context))


@bp.post("/<token>/claim")
@access(PUBLIC)
@limiter.limit(_claim_limit, key_func=lambda: request.remote_addr or "")
def claim(token: str):
    """"I've paid": store the claim, re-check the sources, and tell the customer what happens next."""
    found = _request_for(token)
    form = {"transaction_id": request.form.get("transaction_id", "")[:200], "phone": request.form.get("phone", "")[:40]}
    try:
        claims.submit(found, form["transaction_id"], form["phone"], region=settings().phone_region,
                      client_ip=request.remote_addr)
    except claims.ClaimError as exc:
        body = render_template("pages/pay/page.html", **_context(found, form=form, errors={exc.field: str(exc)}))
        return _private(make_response(body, 400))
    flash("Thank you. We are checking your payment now; this page updates by itself.", "success")
    return _private(redirect(url_for("pay.page", token=token, _anchor="pay-status"), 303))

