"""The API's outbound webhook endpoints: POST/GET /webhook-endpoints, GET/PATCH/DELETE /webhook-endpoints/<id>.

Any API key (staff keys read every request and payment already). Bodies are checked with the helpers every API view uses (webapp.api.inputs);
the secret (`whsec_…`) is in the create answer only.
"""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request

from webapp.api.inputs import API_STAFF, ApiError, actor, api_access, error_response, field_error, json_body, text
from webapp.api.openapi import operation
from webapp.api.schema import Boolean, Json, Ref, Schema, Text, Time
from webapp.api.shapes import payment_json, request_json
from webapp.domain import webhooks
from webapp.domain.input_bounds import MAX_ID
from webapp.storage.models import WebhookEndpoint
from webapp.web.errors import error_body

bp = Blueprint("api_webhook_endpoints", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    """Register the blueprint, and give webhook bodies the API's shapes of a request and a payment."""
    from webapp.web.extensions import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)
    webhooks.use_shapes(request=request_json, payment=payment_json)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return error_response(exc)


@bp.errorhandler(webhooks.WebhookError)
def _webhook_error(exc: webhooks.WebhookError):
    details = {exc.field: exc.message}
    code = "not_found" if exc.status == 404 else "validation_failed"
    return jsonify(error_body(exc.status, code, str(exc), details)), exc.status


_EVENTS = Json("array", "event types (all when left out)", items={"type": "string", "enum": list(webhooks.EVENT_TYPES)})
NEW_ENDPOINT = Schema("NewWebhookEndpointInput", {
    "url": Text("where to POST (https; private addresses only with PAYWATCH_WEBHOOKS_ALLOW_PRIVATE)",
                max_length=webhooks.MAX_URL, required=True),
    "events": _EVENTS,
    "description": Text(max_length=webhooks.MAX_DESCRIPTION),
    "enabled": Boolean(),
})
ENDPOINT_CHANGE = Schema("WebhookEndpointChange", {
    "url": Text(max_length=webhooks.MAX_URL), "events": _EVENTS,
    "description": Text(max_length=webhooks.MAX_DESCRIPTION), "enabled": Boolean(),
})
_ENDPOINT_FIELDS = {
    "id": Json("integer"), "url": Text(max_length=None), "events": Json("array", items={"type": "string"}),
    "description": Text(max_length=None), "enabled": Boolean(),
    "disabled_reason": Text(max_length=None, nullable=True),
    "failing_since": Time(nullable=True), "created_at": Time(),
}
ENDPOINT = Schema("WebhookEndpoint", _ENDPOINT_FIELDS, description="An outbound webhook endpoint.")
NEW_ENDPOINT_ANSWER = Schema("CreatedWebhookEndpoint", {
    "secret": Text("whsec_…: verify signatures with it; shown only in this answer", max_length=None)},
    extends=ENDPOINT)
ENDPOINT_LIST = Schema("WebhookEndpointList", {"data": Ref(ENDPOINT, many=True)})


def _events(data: dict) -> list[str] | None:
    value = data.get("events")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 50:
        raise field_error("events", "must be a list of event type names")
    return value


def _enabled(data: dict) -> bool | None:
    value = data.get("enabled")
    if value is not None and not isinstance(value, bool):
        raise field_error("enabled", "must be true or false")
    return value


def _endpoint_id(endpoint_id: int) -> int:
    if not 1 <= endpoint_id <= MAX_ID:
        raise webhooks.WebhookError("id", f"no webhook endpoint with id {endpoint_id}", status=404)
    return endpoint_id


@bp.post("/webhook-endpoints")
@operation("Add an outbound webhook endpoint (the secret is in this answer only)", body=NEW_ENDPOINT,
           answers={201: NEW_ENDPOINT_ANSWER})
@api_access(API_STAFF)
def create_endpoint():
    data = json_body()
    endpoint = webhooks.create_endpoint(
        text(data, "url", required=True, max_length=webhooks.MAX_URL), _events(data),
        description=text(data, "description", max_length=webhooks.MAX_DESCRIPTION, default="") or "",
        enabled=True if _enabled(data) is None else _enabled(data), actor=actor(),
    )
    response = jsonify(NEW_ENDPOINT_ANSWER.shape(webhooks.endpoint_json(endpoint, with_secret=True)))
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@bp.get("/webhook-endpoints")
@operation("Every outbound webhook endpoint", answers={200: ENDPOINT_LIST})
@api_access(API_STAFF)
def list_endpoints():
    rows = WebhookEndpoint.select().order_by(WebhookEndpoint.id)
    return jsonify(ENDPOINT_LIST.shape({"data": [ENDPOINT.shape(webhooks.endpoint_json(e)) for e in rows]}))


@bp.route("/webhook-endpoints/<int:endpoint_id>", methods=["GET", "PATCH", "DELETE"])
@operation("One outbound webhook endpoint", answers={200: ENDPOINT}, method="GET")
@operation("Change an endpoint's url, events, description or enabled", body=ENDPOINT_CHANGE,
           answers={200: ENDPOINT}, method="PATCH")
@operation("Remove an endpoint (its deliveries' history goes with it)", answers={204: None}, method="DELETE")
@api_access(API_STAFF)
def endpoint(endpoint_id: int):
    """One rule for the three methods on an endpoint (GET reads, PATCH changes, DELETE removes)."""
    endpoint_id = _endpoint_id(endpoint_id)
    if request.method == "PATCH":
        return _update(endpoint_id)
    if request.method == "DELETE":
        webhooks.delete_endpoint(endpoint_id, actor=actor())
        return "", 204
    return jsonify(ENDPOINT.shape(webhooks.endpoint_json(webhooks.find_endpoint(endpoint_id))))


def _update(endpoint_id: int):
    data = json_body()
    unknown = sorted(set(data) - {"url", "events", "description", "enabled"})
    if unknown:
        raise field_error(unknown[0], "is not a field of a webhook endpoint (url, events, description, enabled)")
    description = data.get("description")
    endpoint = webhooks.update_endpoint(
        endpoint_id, actor=actor(),
        url=text(data, "url", required=True, max_length=webhooks.MAX_URL) if "url" in data else None,
        events=_events(data),
        description=(text(data, "description", max_length=webhooks.MAX_DESCRIPTION) or "")
        if description is not None else None,
        enabled=_enabled(data),
    )
    return jsonify(ENDPOINT.shape(webhooks.endpoint_json(endpoint)))
