"""Inbound callbacks: POST /hooks/gateway/<source name> (ioTec's per-wallet collection callback)
and POST /hooks/sms/<source name> (a phone's SMS forwarder; webapp/domain/inbound_sms.py).

ioTec signs nothing: a callback carries only a static header set in its portal. We
check that header (name and value from the source's `callback_header_name` and the
environment variable named by `callback_header_env`) in constant time, and then
re-read the transaction's status from the API in a job. The body is never trusted:
it only says which transaction to re-read (its `id`, else its `externalId`).
"""
from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request
from redis.exceptions import RedisError

from webapp.config import ConfigError, secret
from webapp.domain import inbound_sms
from webapp.domain.sources import gateway_source
from webapp.plumbing import jobqueue
from webapp.web.access import PUBLIC, access
from webapp.web.errors import error_body

bp = Blueprint("hooks", __name__, url_prefix="/hooks")

def _error(status: int, code: str, message: str):
    return jsonify(error_body(status, code, message)), status


@bp.post("/gateway/<name>")
@access(PUBLIC)
def gateway_callback(name: str):
    """202 and a re-read queued; 401 without the static header; 404 for an unknown source; 503 when
    the job queue does not answer."""
    source = gateway_source(name)
    config = (source.config or {}) if source else {}
    header_name, header_env = config.get("callback_header_name"), config.get("callback_header_env")
    if source is None or not header_name or not header_env:
        return _error(404, "not_found", f"no gateway source {name!r} takes callbacks")
    try:
        expected = secret(header_env)
    except ConfigError:
        return _error(503, "not_configured", f"callback header value ({header_env}) is not set")
    given = request.headers.get(header_name, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _error(401, "unauthorized", f"missing or wrong {header_name} header")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested thousands deep: not a callback ioTec sends
        body = None
    body = body if isinstance(body, dict) else {}
    transaction_id = str(body["id"])[:128] if body.get("id") else None
    external_id = str(body["externalId"])[:128] if body.get("externalId") else None
    if not (transaction_id or external_id):
        return _error(400, "bad_callback", "the body names no transaction (id or externalId)")
    try:
        jobqueue.enqueue("gateway_reread", source.id, transaction_id, external_id)
    except RedisError:
        # Nothing is stored from a callback: the source's next poll reads the transaction anyway.
        response = _error(503, "queue_unavailable", "the job queue did not answer; the transaction is read by "
                          "the next poll, and a retried callback is welcome")
        response[0].headers["Retry-After"] = "30"
        return response
    return jsonify({"success": True, "queued": {"id": transaction_id, "external_id": external_id}}), 202


@bp.post("/sms/<name>")
@access(PUBLIC)
def sms_post(name: str):
    """One SMS from a forwarder app: 202 stored and queued (200 when stored before, or a ping);
    401 unsigned or badly signed, 400 unreadable, 413 too big, 404 no such source — nothing
    stored on any error."""
    source = inbound_sms.sms_source(name)
    if source is None:
        return _error(404, "not_found", f"no enabled sms source {name!r}")
    if (request.content_length or 0) > inbound_sms.MAX_BODY:
        return _error(413, "too_large", f"the body is over {inbound_sms.MAX_BODY} bytes")
    body = request.get_data(cache=False)
    if len(body) > inbound_sms.MAX_BODY:
        return _error(413, "too_large", f"the body is over {inbound_sms.MAX_BODY} bytes")
    try:
        inbound_sms.authenticate(source, request.headers, body)
        posted = inbound_sms.read_post(inbound_sms.source_format(source), body)
    except inbound_sms.HookError as exc:
        return _error(exc.status, exc.code, exc.message)
    if posted.kind != "sms":
        inbound_sms.heard(source, posted)
        return jsonify({"success": True, "event": posted.event,
                        "stored": False, "why": "contact" if posted.kind == "contact" else "not an incoming SMS"}), 200
    row, created = inbound_sms.store(source, posted, body)
    return jsonify({"success": True, "event": posted.event, "stored": True, "id": row.id, "ref": row.ref,
                    "duplicate": not created}), 202 if created else 200
