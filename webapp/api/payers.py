"""/api/v1/payers: the payer roster for fees and invoices (POST /payers, GET /payers/<code>)."""
from __future__ import annotations

from flask import jsonify

from webapp.api.inputs import API_STAFF, ApiError, actor, api_access, field_error, iso, json_body, payment_json, \
    request_json, text
from webapp.domain import money, payers
from webapp.storage.models import Payer, Payment, PaymentRequest


def payer_json(payer: Payer, *, full: bool = False) -> dict:
    body = {"code": payer.code, "name": payer.name, "group": payer.group, "phones": list(payer.phones or []),
            "created_at": iso(payer.created_at)}
    if full:
        sheet = payers.statement(payer)
        requests = list(PaymentRequest.select().where(PaymentRequest.payer == payer.id).order_by(PaymentRequest.id))
        body.update(
            currency=sheet.currency,
            owed=money.to_decimal_string(sheet.owed_minor, sheet.currency),
            paid=money.to_decimal_string(sheet.paid_minor, sheet.currency),
            balance=money.to_decimal_string(sheet.balance_minor, sheet.currency),
            requests=[request_json(r, with_payments=False) for r in requests],
            payments=[payment_json(p) for p in Payment.select().where(
                Payment.request.in_([r.id for r in requests])).order_by(Payment.received_at)] if requests else [],
        )
    return body


def add_routes(bp) -> None:
    """Add the payer calls to the API blueprint (its error handlers and auth apply)."""
    bp.add_url_rule("/payers", view_func=create_payer, methods=["POST"])
    bp.add_url_rule("/payers/<code>", view_func=get_payer, methods=["GET"])


@api_access(API_STAFF)
def create_payer():
    data = json_body()
    phones = data.get("phones", [])
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise field_error("phones", "must be a list of phone numbers")
    code = text(data, "code", required=True, max_length=64)
    if Payer.select().where(Payer.code == code).exists():
        raise ApiError(409, "payer_exists", f"a payer with code {code} exists", {"code": code})
    try:
        payer, _ = payers.save(code, text(data, "name", required=True, max_length=200), phones,
                               text(data, "group", max_length=200, default="") or "", actor=actor())
    except payers.PayerError as exc:
        raise field_error(exc.field, exc.message.split(": ", 1)[-1]) from None
    return jsonify(payer_json(payer, full=True)), 201


@api_access(API_STAFF)
def get_payer(code: str):
    payer = Payer.get_or_none(Payer.code == code[:64])
    if payer is None:
        raise ApiError(404, "not_found", f"no payer with code {code[:64]}")
    return jsonify(payer_json(payer, full=True))
