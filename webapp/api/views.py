"""/api/v1: the JSON API for integrators (Authorization: Bearer <api key>)."""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from webapp.api import openapi, payers, review
from webapp.api.inputs import (
    API_STAFF,
    MAX_BODY,
    ApiError,
    actor,
    api_access,
    error_response,
    field_error,
    idempotency_key,
    idempotent,
    json_body,
)
from webapp.api.openapi import operation
from webapp.api.schema import Amount, Boolean, Choice, Currency, Integer, Meta, Phone, Schema, Text, Time
from webapp.api.shapes import (
    HEALTH,
    OPENAPI,
    PAGE_QUERY,
    PAYMENT,
    PAYMENT_PAGE,
    REPORTED_PAYMENT,
    REQUEST,
    REQUEST_PAGE,
    page,
    payment_json,
    preload_payments,
    preload_requests,
    request_json,
)
from webapp.config import settings
from webapp.domain import ledger
from webapp.domain.health import health
from webapp.plumbing import jobqueue
from webapp.storage.models import Agent, Payer, Payment, PaymentRequest, PaymentStatus, RequestStatus, utcnow
from webapp.web.access import PUBLIC, access
from webapp.web.errors import error_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.register_blueprint(review.bp)  # /api/v1/admin/…, under this blueprint's error handlers and body limit
bp.register_blueprint(payers.bp)  # /api/v1/payers…, likewise
REFERENCE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@bp.before_request
def _limit_body():
    # Werkzeug answers 413 (in the error format, below) before reading a larger body.
    request.max_content_length = MAX_BODY


@bp.errorhandler(ledger.LedgerError)
def _ledger_error(exc: ledger.LedgerError):
    return error_response(ApiError(exc.status, exc.code, exc.message, exc.details))


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return error_response(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify(error_body(exc.code or 500, code, exc.description or exc.name)), exc.code or 500


def _agent_id(code: str) -> int:
    agent = Agent.get_or_none(Agent.code == code)
    if agent is None:
        raise field_error("agent_code", f"no agent has code {code!r}")
    return agent.id


def _reference(reference: str) -> str:
    if len(reference) < 3 or not set(reference) <= REFERENCE_CHARS:
        raise field_error("reference", "must be 3–64 letters, digits, '-' or '_'")
    return reference


def _payer(code: str) -> Payer:
    payer = Payer.get_or_none(Payer.code == code)
    if payer is None:
        raise field_error("payer_code", f"no payer has code {code!r}")
    return payer


NEW_REQUEST = Schema("NewRequestInput", {
    "currency": Currency(),
    "amount": Amount(required=True),
    "customer_name": Text(max_length=200, default=""),
    "customer_phone": Phone(description="the payer's phone, international form (+256772123456)"),
    "agent_code": Text("the code of the agent it is for", max_length=64, check=_agent_id),
    "reference": Text("your own reference (3–64 letters, digits, - or _); Paywatch makes one when left out",
                      max_length=64, pattern="^[A-Za-z0-9_-]{3,64}$", check=_reference),
    "expires_in_minutes": Integer(low=1, high=60 * 24 * 90),
    "voucher_pool": Text("a voucher pool to give a code from on payment", max_length=64),
    "gateway": Text("the name of an enabled gateway source that will poll this request", max_length=64),
    "external_id": Text("the gateway's id to poll; required with gateway unless collect", max_length=128),
    "collect": Boolean("with gateway: Paywatch starts the collection (needs customer_phone)", default=False),
    "meta": Meta(),
    "due_at": Time("a fee or invoice: due then (it never expires; past it, it is overdue)"),
    "allow_partial": Boolean("paid in installments: payments from its payer count until the balance is 0",
                             default=False),
    "payer_code": Text("a payer of the roster (POST /payers); fills customer name and phone when left out",
                       max_length=64, check=_payer),
})


def _gateway(data: dict) -> tuple[str, str | None, dict]:
    """(source, external_id, gateway bookkeeping) for a request a gateway source will poll.

    `gateway` names an enabled gateway source; `external_id` is the ioTec externalId to
    poll, unless `collect: true`, where Paywatch picks a unique one and starts the collection.
    """
    from webapp.domain.sources import gateway_source

    name, collect, external_id = data["gateway"], data["collect"], data["external_id"]
    if name is None:
        if collect:
            raise field_error("gateway", "collect needs a gateway: the name of a gateway source")
        return "api", external_id, {}
    if gateway_source(name) is None:
        raise field_error("gateway", f"no enabled gateway source named {name!r}")
    if collect:
        if external_id is not None:
            raise field_error("external_id", "leave it out with collect: Paywatch chooses a unique one")
        if not data["customer_phone"]:
            raise field_error("customer_phone", "collect needs the payer's phone")
        return name, f"PW-{uuid.uuid4().hex}", {"collect": True, "collect_state": "queued"}
    if external_id is None:
        raise field_error("external_id", f"required with gateway {name!r} (or send \"collect\": true)")
    return name, external_id, {}


def _new_request(raw: dict) -> ledger.NewRequest:
    data = NEW_REQUEST.read(raw)
    source, external_id, gateway_state = _gateway(data)
    extra = data["meta"]
    if gateway_state:
        from webapp.domain.sources import GATEWAY_META_KEY

        extra[GATEWAY_META_KEY] = gateway_state
    minutes, payer, due_at = data["expires_in_minutes"], data["payer_code"], data["due_at"]
    if due_at is not None and minutes:
        raise field_error("due_at", "a request has a due date or expires_in_minutes, not both")
    return ledger.NewRequest(
        amount_minor=data["amount"],
        currency=data["currency"],
        customer_name=data["customer_name"] or (payer.name if payer else ""),
        customer_phone=data["customer_phone"] or (payer.phones[0] if payer and payer.phones else None),
        due_at=due_at,
        allow_partial=data["allow_partial"],
        payer_id=payer.id if payer else None,
        agent_id=data["agent_code"],
        reference=data["reference"],
        expires_in=timedelta(minutes=minutes) if minutes else None,
        voucher_pool=data["voucher_pool"],
        source=source,
        external_id=external_id,
        meta=extra,
        idempotency_key=idempotency_key(),
    )


IDEMPOTENCY = {"Idempotency-Key": "a retry with the same key and body gets the first answer (Idempotent-Replayed: true)"}


@bp.post("/requests")
@operation("Create a payment request", body=NEW_REQUEST, answers={201: REQUEST}, errors=(409,), headers=IDEMPOTENCY)
@api_access(API_STAFF)
def create_request():
    json_body()  # shape and size checked before the idempotency record reads the body

    def run():
        new = _new_request(json_body())
        created = ledger.create_request(new, actor=actor())
        if (new.meta.get("paywatch_gateway") or {}).get("collect"):
            # After the commit: the externalId is stored before ioTec ever hears of it. With
            # Redis down, the gateway's next pass starts the collection (jobs/gateway.py).
            from webapp.domain.sources import collect_job_id

            try:
                jobqueue.enqueue("gateway_collect", created.id, job_id=collect_job_id(created.id))
            except RedisError:
                pass
        return jsonify(request_json(created)), 201

    return idempotent(run, idempotency_key())


@bp.get("/requests/<reference>")
@operation("Read a request with its payments", answers={200: REQUEST})
@api_access(API_STAFF)
def get_request(reference: str):
    return jsonify(request_json(ledger.find_request(reference)))


REQUEST_QUERY = Schema("RequestListQuery", {"status": Choice("only requests in this status", RequestStatus.ALL), **PAGE_QUERY})


@bp.get("/requests")
@operation("List requests, newest first", query=REQUEST_QUERY, answers={200: REQUEST_PAGE})
@api_access(API_STAFF)
def list_requests():
    args = REQUEST_QUERY.read(request.args)
    query = PaymentRequest.select()
    if args["status"]:
        query = query.where(PaymentRequest.status == args["status"])
    return jsonify(page(REQUEST_PAGE, query, PaymentRequest, request_json, args, preload=preload_requests))


NEW_PAYMENT = Schema("NewPaymentInput", {
    "source_ref": Text("your id of this money: a retry with the same source_ref gets the first answer",
                       required=True, max_length=200),
    "currency": Currency(),
    "amount": Amount(required=True),
    "received_at": Time("when the money arrived; now when left out"),
    "sender_name": Text(max_length=200, default=""),
    "sender_phone": Phone(strict=False, description="E.164, or masked as the provider shows it (2567****123)"),
    "note": Text(max_length=2000, default="", multiline=True),
    "transaction_id": Text("the provider's transaction code", max_length=128),
    "provider": Text("whose transaction code it is (mpesa, iotec…)", max_length=64),
})


@bp.post("/payments")
@operation("Report money seen elsewhere; answers the match outcome", body=NEW_PAYMENT,
           answers={200: REPORTED_PAYMENT, 201: REPORTED_PAYMENT}, errors=(409,), headers=IDEMPOTENCY,
           description="201 for a new payment; 200 when the same money was already reported (`sighting`).")
@api_access(API_STAFF)
def create_payment():
    data = json_body()
    # 200: "payment:<source_ref>" is the idempotency key when the client sends none.
    source_ref = NEW_PAYMENT.fields["source_ref"].read(data, "source_ref", {})

    def run():
        fields = NEW_PAYMENT.read(data)
        observation = ledger.PaymentObservation(
            source="api",
            source_ref=source_ref,
            amount_minor=fields["amount"],
            currency=fields["currency"],
            received_at=fields["received_at"] or utcnow(),
            sender_name=fields["sender_name"] or "",
            sender_phone=fields["sender_phone"],
            note=fields["note"] or "",
            transaction_id=fields["transaction_id"],
            provider=fields["provider"],
            raw=request.get_data(as_text=True)[:20000],
        )
        if observation.received_at > utcnow() + timedelta(minutes=10):
            raise field_error("received_at", "is in the future")
        result = ledger.ingest_payment(observation, actor=actor())
        # sighting: the same money was already this payment, nothing paid twice
        body = REPORTED_PAYMENT.shape({**payment_json(result.payment), "sighting": bool(result.sighting)})
        return jsonify(body), 201 if result.created else 200

    # source_ref is the idempotency key of a payment: a retry gets the first answer back.
    return idempotent(run, idempotency_key() or f"payment:{source_ref}")


PAYMENT_QUERY = Schema("PaymentListQuery", {
    "source": Text("only payments from this source", max_length=100),
    "status": Choice("only payments in this status", PaymentStatus.ALL),
    **PAGE_QUERY,
})


@bp.get("/payments")
@operation("List payments seen, newest first", query=PAYMENT_QUERY, answers={200: PAYMENT_PAGE})
@api_access(API_STAFF)
def list_payments():
    args = PAYMENT_QUERY.read(request.args)
    query = Payment.select()
    if args["source"]:
        query = query.where(Payment.source == args["source"])
    if args["status"]:
        query = query.where(Payment.status == args["status"])
    return jsonify(page(PAYMENT_PAGE, query, Payment, payment_json, args, preload=preload_payments))


@bp.get("/payments/<int:payment_id>")
@operation("Read a payment", answers={200: PAYMENT})
@api_access(API_STAFF)
def get_payment(payment_id: int):
    return jsonify(payment_json(ledger.find_payment(payment_id)))


@bp.get("/health")
@operation("Database, Redis, workers, scheduler, each source's freshness, the WhatsApp session",
           answers={200: HEALTH, 503: HEALTH})
@api_access(API_STAFF)
def api_health():
    from webapp.domain import sources, whatsapp_session

    checks, ok = health()
    freshness = [f.as_json() for f in sources.all_freshness()]
    state = whatsapp_session.get()
    whatsapp = {"configured": bool(settings().wppconnect_url), "session": state.get("session"),
                "paused": state.get("paused"), "last_error": state.get("last_error")}
    whatsapp["ok"] = whatsapp["configured"] and not whatsapp["paused"] and whatsapp["session"] in (None, "CONNECTED")
    ok = ok and all(s["ok"] for s in freshness) and (whatsapp["ok"] or not whatsapp["configured"])
    return jsonify(HEALTH.shape({"ok": ok, **checks, "sources": freshness, "whatsapp": whatsapp})), 200 if ok else 503


@bp.get("/openapi.json")
@operation("This document: OpenAPI 3.1, generated from the schemas the views read and answer with",
           answers={200: OPENAPI})
@access(PUBLIC)
def openapi_document():
    return jsonify(openapi.of_app(current_app))

