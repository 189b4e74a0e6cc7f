"""/api/v1: the JSON API for integrators (Authorization: Bearer <api key>)."""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from webapp.api.inputs import (
    API_STAFF,
    MAX_BODY,
    ApiError,
    actor,
    amount,
    api_access,
    currency,
    decode_cursor,
    encode_cursor,
    error_response,
    field_error,
    idempotency_key,
    idempotent,
    integer,
    json_body,
    meta,
    payment_json,
    query_text,
    request_json,
    text,
    timestamp,
)
from webapp.config import settings
from webapp.domain import ledger, phones
from webapp.domain.health import health
from webapp.domain.input_bounds import MAX_ID
from webapp.plumbing import jobqueue
from webapp.storage.models import (
    Agent,
    MatchCandidate,
    Payer,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RequestStatus,
    utcnow,
)
from webapp.web.errors import error_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PAGE = 200
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


def _phone(data: dict, field: str, *, strict: bool) -> str | None:
    raw = text(data, field, max_length=40)
    if raw is None:
        return None
    number = phones.try_e164(raw, settings().phone_region)
    if number:
        return number
    if not strict and any(c in raw for c in "*xX•#"):
        return raw  # a masked number, as a provider shows it: evidence, not an address
    raise field_error(field, f"{raw!r} is not a valid phone number (use international form, e.g. +256772123456)")


def _agent_id(data: dict) -> int | None:
    code = text(data, "agent_code", max_length=64)
    if code is None:
        return None
    agent = Agent.get_or_none(Agent.code == code)
    if agent is None:
        raise field_error("agent_code", f"no agent has code {code!r}")
    return agent.id


def _reference(data: dict) -> str | None:
    reference = text(data, "reference", max_length=64)
    if reference is not None and (len(reference) < 3 or not set(reference) <= REFERENCE_CHARS):
        raise field_error("reference", "must be 3–64 letters, digits, '-' or '_'")
    return reference


def _gateway(data: dict) -> tuple[str, str | None, dict]:
    """(source, external_id, gateway bookkeeping) for a request a gateway source will poll.

    `gateway` names an enabled gateway source; `external_id` is the ioTec externalId to
    poll, unless `collect: true`, where Paywatch picks a unique one and starts the collection.
    """
    from webapp.domain.sources import gateway_source

    name = text(data, "gateway", max_length=64)
    collect = data.get("collect", False)
    if not isinstance(collect, bool):
        raise field_error("collect", "must be true or false")
    external_id = text(data, "external_id", max_length=128)
    if name is None:
        if collect:
            raise field_error("gateway", "collect needs a gateway: the name of a gateway source")
        return "api", external_id, {}
    if gateway_source(name) is None:
        raise field_error("gateway", f"no enabled gateway source named {name!r}")
    if collect:
        if external_id is not None:
            raise field_error("external_id", "leave it out with collect: Paywatch chooses a unique one")
        if not data.get("customer_phone"):
            raise field_error("customer_phone", "collect needs the payer's phone")
        return name, f"PW-{uuid.uuid4().hex}", {"collect": True, "collect_state": "queued"}
    if external_id is None:
        raise field_error("external_id", f"required with gateway {name!r} (or send \"collect\": true)")
    return name, external_id, {}


def _payer(data: dict) -> Payer | None:
    code = text(data, "payer_code", max_length=64)
    if not code:
        return None
    payer = Payer.get_or_none(Payer.code == code)
    if payer is None:
        raise field_error("payer_code", f"no payer has code {code!r}")
    return payer


def _new_request(data: dict) -> ledger.NewRequest:
    source, external_id, gateway_state = _gateway(data)
    cur = currency(data, settings().currency)
    extra = meta(data)
    if gateway_state:
        from webapp.domain.sources import GATEWAY_META_KEY

        extra[GATEWAY_META_KEY] = gateway_state
    minutes = integer(data, "expires_in_minutes", 1, 60 * 24 * 90)
    payer = _payer(data)
    allow_partial = data.get("allow_partial", False)
    if not isinstance(allow_partial, bool):
        raise field_error("allow_partial", "must be true or false")
    due_at = timestamp(data, "due_at")
    if due_at is not None and minutes:
        raise field_error("due_at", "a request has a due date or expires_in_minutes, not both")
    return ledger.NewRequest(
        amount_minor=amount(data, cur),
        currency=cur,
        customer_name=text(data, "customer_name", max_length=200, default="") or (payer.name if payer else ""),
        customer_phone=_phone(data, "customer_phone", strict=True) or (payer.phones[0] if payer and payer.phones
                                                                        else None),
        due_at=due_at,
        allow_partial=allow_partial,
        payer_id=payer.id if payer else None,
        agent_id=_agent_id(data),
        reference=_reference(data),
        expires_in=timedelta(minutes=minutes) if minutes else None,
        voucher_pool=text(data, "voucher_pool", max_length=64),
        source=source,
        external_id=external_id,
        meta=extra,
        idempotency_key=idempotency_key(),
    )


@bp.post("/requests")
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
@api_access(API_STAFF)
def get_request(reference: str):
    return jsonify(request_json(ledger.find_request(reference)))


def _page(query, model, serialize):
    limit = integer(request.args, "limit", 1, MAX_PAGE) or 50
    after = decode_cursor(request.args.get("cursor"))
    if after is not None:
        query = query.where(model.id < after)
    rows = list(query.order_by(model.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify({
        "data": [serialize(r) for r in rows],
        "has_more": more,
        "next_cursor": encode_cursor(rows[-1].id) if more else None,
    })


@bp.get("/requests")
@api_access(API_STAFF)
def list_requests():
    query = PaymentRequest.select()
    status = query_text("status")
    if status:
        if status not in RequestStatus.ALL:
            raise field_error("status", f"must be one of {', '.join(RequestStatus.ALL)}")
        query = query.where(PaymentRequest.status == status)
    return _page(query, PaymentRequest, request_json)


@bp.post("/payments")
@api_access(API_STAFF)
def create_payment():
    data = json_body()
    # 200: "payment:<source_ref>" is the idempotency key when the client sends none.
    source_ref = text(data, "source_ref", required=True, max_length=200)

    def run():
        cur = currency(data, settings().currency)
        observation = ledger.PaymentObservation(
            source="api",
            source_ref=source_ref,
            amount_minor=amount(data, cur),
            currency=cur,
            received_at=timestamp(data, "received_at") or utcnow(),
            sender_name=text(data, "sender_name", max_length=200, default="") or "",
            sender_phone=_phone(data, "sender_phone", strict=False),
            note=text(data, "note", max_length=2000, default="", multiline=True) or "",
            transaction_id=text(data, "transaction_id", max_length=128),
            provider=text(data, "provider", max_length=64),
            raw=request.get_data(as_text=True)[:20000],
        )
        if observation.received_at > utcnow() + timedelta(minutes=10):
            raise field_error("received_at", "is in the future")
        result = ledger.ingest_payment(observation, actor=actor())
        body = payment_json(result.payment)
        if result.sighting:
            body["sighting"] = True  # the same money was already this payment: nothing paid twice
        return jsonify(body), 201 if result.created else 200

    # source_ref is the idempotency key of a payment: a retry gets the first answer back.
    return idempotent(run, idempotency_key() or f"payment:{source_ref}")


@bp.get("/payments")
@api_access(API_STAFF)
def list_payments():
    query = Payment.select()
    source = query_text("source")
    if source:
        query = query.where(Payment.source == source)
    status = query_text("status")
    if status:
        if status not in PaymentStatus.ALL:
            raise field_error("status", f"must be one of {', '.join(PaymentStatus.ALL)}")
        query = query.where(Payment.status == status)
    return _page(query, Payment, payment_json)


@bp.get("/payments/<int:payment_id>")
@api_access(API_STAFF)
def get_payment(payment_id: int):
    return jsonify(payment_json(ledger.find_payment(payment_id)))


# ------------------------------------------------------------------ review queues


def _candidates_of_request(req: PaymentRequest) -> list[dict]:
    rows = (
        MatchCandidate.select(MatchCandidate, Payment)
        .join(Payment)
        .where(MatchCandidate.request == req.id, Payment.status == PaymentStatus.REVIEW)
        .order_by(MatchCandidate.score.desc())
    )
    return [{"payment": payment_json(row.payment), "score": row.score, "late": row.late,
             "mismatch": row.mismatch, "evidence": row.evidence} for row in rows]


@bp.get("/admin/pending-verifications")
@api_access(API_STAFF)
def pending_verifications():
    requests_ = PaymentRequest.select().where(PaymentRequest.status == RequestStatus.REVIEW).order_by(PaymentRequest.id)
    late = Payment.select().where(Payment.status == PaymentStatus.REVIEW, Payment.late == True)  # noqa: E712
    return jsonify({
        "data": [{**request_json(r, with_payments=False), "candidates": _candidates_of_request(r)} for r in requests_],
        "late_payments": [payment_json(p) for p in late],
    })


@bp.get("/admin/unmatched-payments")
@api_access(API_STAFF)
def unmatched_payments():
    query = Payment.select().where(Payment.status == PaymentStatus.UNMATCHED)
    return _page(query, Payment, payment_json)


@bp.get("/admin/requests/<reference>")
@api_access(API_STAFF)
def admin_request(reference: str):
    req = ledger.find_request(reference)
    return jsonify({**request_json(req), "candidates": _candidates_of_request(req)})


def _waiting_payment(req: PaymentRequest, data: dict) -> int:
    payment_id = integer(data, "payment_id", 1, MAX_ID)
    if payment_id is not None:
        return payment_id
    best = (
        MatchCandidate.select(MatchCandidate.payment)
        .join(Payment)
        .where(MatchCandidate.request == req.id, Payment.status == PaymentStatus.REVIEW)
        .order_by(MatchCandidate.score.desc(), MatchCandidate.id)
        .first()
    )
    if best is None:
        raise ApiError(409, "nothing_to_review", f"no payment waits for review on {req.reference}; pass payment_id")
    return best.payment_id


@bp.post("/admin/requests/<reference>/confirm")
@api_access(API_STAFF)
def admin_confirm(reference: str):
    data = json_body()
    req = ledger.find_request(reference)
    payment = ledger.confirm(_waiting_payment(req, data), req.reference, actor=actor())
    return jsonify({**request_json(ledger.find_request(req.reference)), "confirmed_payment": payment.id})


@bp.post("/admin/requests/<reference>/reject")
@api_access(API_STAFF)
def admin_reject(reference: str):
    data = json_body()
    reason = text(data, "reason", required=True, max_length=500, multiline=True)
    notify_customer = data.get("notify_customer", False)
    if not isinstance(notify_customer, bool):
        raise field_error("notify_customer", "must be true or false")
    message = text(data, "message", max_length=1000, multiline=True)
    if message and not notify_customer:
        raise field_error("message", "is sent only with notify_customer: true")
    req = ledger.find_request(reference)
    payment = ledger.reject(_waiting_payment(req, data), req.reference, reason, actor=actor(),
                            notify_customer=notify_customer, message=message)
    return jsonify({**request_json(ledger.find_request(req.reference)), "rejected_payment": payment_json(payment)})


@bp.post("/admin/payments/<int:payment_id>/link")
@api_access(API_STAFF)
def admin_link(payment_id: int):
    data = json_body()
    reference = text(data, "reference", required=True, max_length=64)
    payment = ledger.link(payment_id, reference, actor=actor())
    return jsonify(payment_json(payment))


@bp.get("/health")
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
    return jsonify({"ok": ok, **checks, "sources": freshness, "whatsapp": whatsapp}), 200 if ok else 503


# The payer roster's calls live in their own module, on this blueprint (its auth and error format).
from webapp.api import payers  # noqa: E402

payers.add_routes(bp)
