"""/api/v1/payers: the payer roster for fees and invoices, nested in the API blueprint."""
from __future__ import annotations

from flask import Blueprint, jsonify

from webapp.api.inputs import API_STAFF, ApiError, actor, api_access, field_error, json_body
from webapp.api.openapi import operation
from webapp.api.schema import Amount, Field, Json, Ref, Schema, Text, Time
from webapp.api.shapes import PAYMENT, REQUEST_SUMMARY, iso, money_text, payment_json, request_json
from webapp.domain import payers
from webapp.storage.models import Payer, Payment, PaymentRequest

bp = Blueprint("payers", __name__, url_prefix="/payers")


class PhoneList(Field):
    """A list of phone numbers as typed (read into E.164 by the domain, which names a bad one)."""

    type_ = {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 5}

    def parse(self, data, name, parsed):
        value = data.get(name, [])
        if not isinstance(value, list) or len(value) > 5 or not all(isinstance(p, str) and len(p) <= 40 for p in value):
            raise field_error(name, "must be a list of at most 5 phone numbers")
        return value

NEW_PAYER = Schema("NewPayerInput", {
    "code": Text("your own id for the payer (admission number, unit, member number)", max_length=64, required=True),
    "name": Text(max_length=200, required=True),
    "phones": PhoneList("phones known to pay for this payer (local forms read in the configured region)"),
    "group": Text("class, building, branch", max_length=200, default=""),
})
PAYER = Schema("Payer", {
    "code": Text(max_length=64), "name": Text(max_length=200), "group": Text(max_length=200),
    "phones": Json("array", "E.164 numbers", items={"type": "string"}),
    "created_at": Time(),
    "currency": Text(max_length=3),
    "owed": Amount("the payer's requests, cancelled and failed ones left out", example=None),
    "paid": Amount("confirmed payments toward them", example=None),
    "balance": Amount("owed − paid", example=None),
    "requests": Ref(REQUEST_SUMMARY, "the payer's requests, oldest first", many=True),
    "payments": Ref(PAYMENT, "payments linked to them, oldest first", many=True),
}, description="A payer of the roster with their requests, payments and balance.")


def payer_json(payer: Payer) -> dict:
    sheet = payers.statement(payer)
    requests = list(PaymentRequest.select().where(PaymentRequest.payer == payer.id).order_by(PaymentRequest.id))
    linked = Payment.select().where(Payment.request.in_([r.id for r in requests])).order_by(Payment.received_at) \
        if requests else []
    return PAYER.shape({
        "code": payer.code, "name": payer.name, "group": payer.group, "phones": list(payer.phones or []),
        "created_at": iso(payer.created_at), "currency": sheet.currency,
        "owed": money_text(sheet.owed_minor, sheet.currency), "paid": money_text(sheet.paid_minor, sheet.currency),
        "balance": money_text(sheet.balance_minor, sheet.currency),
        "requests": [request_json(r, with_payments=False) for r in requests],
        "payments": [payment_json(p) for p in linked],
    })


@bp.post("")
@operation("Add a payer to the roster", body=NEW_PAYER, answers={201: PAYER}, errors=(409,))
@api_access(API_STAFF)
def create_payer():
    data = NEW_PAYER.read(json_body())
    phones = data["phones"] or []
    if Payer.select().where(Payer.code == data["code"]).exists():
        raise ApiError(409, "payer_exists", f"a payer with code {data['code']} exists", {"code": data["code"]})
    try:
        payer, _ = payers.save(data["code"], data["name"], phones, data["group"] or "", actor=actor())
    except payers.PayerError as exc:
        raise field_error(exc.field, exc.message.split(": ", 1)[-1]) from None
    return jsonify(payer_json(payer)), 201


@bp.get("/<code>")
@operation("A payer with their requests, payments and balance", answers={200: PAYER})
@api_access(API_STAFF)
def get_payer(code: str):
    payer = Payer.get_or_none(Payer.code == code[:64])
    if payer is None:
        raise ApiError(404, "not_found", f"no payer with code {code[:64]}")
    return jsonify(payer_json(payer))
