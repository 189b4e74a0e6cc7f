"""Page-or-partial rendering: an HTMX request gets the partial alone, flashes out of band."""
from __future__ import annotations

from flask import get_flashed_messages, make_response, render_template
from htmx_flask import request


def is_partial_request() -> bool:
    """True for an HTMX request that wants a fragment (not a boosted full-page navigation)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def render(page: str, partial: str, /, *, status: int = 200, **context):
    """Render `page` for a normal request, `partial` (+ out-of-band flashes) for HTMX.

    Responses vary on HX-Request so a cache never hands a fragment to a full load.
    """
    if is_partial_request():
        body = render_template(partial, **context)
        if _has_flashes():
            body += render_template("partials/flashes.html", oob=True)
    else:
        body = render_template(page, **context)
    response = make_response(body, status)
    response.headers["Vary"] = "HX-Request"
    return response


def _has_flashes() -> bool:
    # Peek without consuming: the flashes partial consumes them.
    from flask import session

    return bool(session.get("_flashes"))


__all__ = ["render", "is_partial_request", "get_flashed_messages"]
