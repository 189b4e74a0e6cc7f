"""/api/v1/admin: the review queues and staff decisions (confirm, reject, link), nested in the API blueprint."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from webapp.api.inputs import API_STAFF, ApiError, actor, api_access, json_body
from webapp.api.openapi import operation
from webapp.api.schema import Boolean, Integer, Schema, Text
from webapp.api.shapes import (
    CONFIRMED,
    PAGE_QUERY,
    PAYMENT,
    PAYMENT_PAGE,
    PENDING,
    REJECTED,
    REVIEWED_REQUEST,
    candidates_by_request,
    candidates_of,
    page,
    page_size,
    payment_json,
    preload_payments,
    preload_requests,
    request_json,
)
from webapp.domain import ledger
from webapp.domain.input_bounds import MAX_ID
from webapp.storage.models import MatchCandidate, Payment, PaymentRequest, PaymentStatus, RequestStatus

bp = Blueprint("review", __name__, url_prefix="/admin")


PENDING_QUERY = Schema("PendingQuery", PAGE_QUERY)


@bp.get("/pending-verifications")
@operation("Requests in review, newest first, with their candidate payments, and payments that came late",
           query=PENDING_QUERY, answers={200: PENDING})
@api_access(API_STAFF)
def pending_verifications():
    args = PENDING_QUERY.read(request.args)
    candidates: dict[int, list[dict]] = {}

    def preload(requests_: list[PaymentRequest]) -> None:  # the page's candidates: one query (+ their payments')
        preload_requests(requests_, with_payments=False)
        candidates.update(candidates_by_request(requests_))

    late = []
    if args["cursor"] is None:
        late = preload_payments(list(Payment.select().where(Payment.status == PaymentStatus.REVIEW,
                                                            Payment.late == True)  # noqa: E712
                                     .order_by(Payment.id.desc()).limit(page_size(args))))
    query = PaymentRequest.select().where(PaymentRequest.status == RequestStatus.REVIEW)
    return jsonify(page(PENDING, query, PaymentRequest,
                        lambda r: {**request_json(r, with_payments=False), "candidates": candidates[r.id]},
                        args, preload=preload, late_payments=[payment_json(p) for p in late]))


UNMATCHED_QUERY = Schema("UnmatchedQuery", PAGE_QUERY)


@bp.get("/unmatched-payments")
@operation("Payments no request claimed, newest first", query=UNMATCHED_QUERY, answers={200: PAYMENT_PAGE})
@api_access(API_STAFF)
def unmatched_payments():
    args = UNMATCHED_QUERY.read(request.args)
    query = Payment.select().where(Payment.status == PaymentStatus.UNMATCHED)
    return jsonify(page(PAYMENT_PAGE, query, Payment, payment_json, args, preload=preload_payments))


@bp.get("/requests/<reference>")
@operation("A request, its customer, and the candidate payments with their evidence", answers={200: REVIEWED_REQUEST})
@api_access(API_STAFF)
def admin_request(reference: str):
    req = ledger.find_request(reference)
    return jsonify(REVIEWED_REQUEST.shape({**request_json(req), "candidates": candidates_of(req)}))


_PAYMENT_ID = Integer("the payment to decide on; the best candidate when left out", low=1, high=MAX_ID)


def _waiting_payment(req: PaymentRequest, payment_id: int | None) -> int:
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


CONFIRM = Schema("ConfirmInput", {"payment_id": _PAYMENT_ID})


@bp.post("/requests/<reference>/confirm")
@operation("Confirm a payment in review as paying this request", body=CONFIRM, answers={200: CONFIRMED}, errors=(409,))
@api_access(API_STAFF)
def admin_confirm(reference: str):
    data = CONFIRM.read(json_body())
    req = ledger.find_request(reference)
    payment = ledger.confirm(_waiting_payment(req, data["payment_id"]), req.reference, actor=actor())
    return jsonify(CONFIRMED.shape({**request_json(ledger.find_request(req.reference)), "confirmed_payment": payment.id}))


def _message(data: dict) -> dict:
    if data["message"] and not data["notify_customer"]:
        from webapp.api.inputs import field_error

        raise field_error("message", "is sent only with notify_customer: true")
    return data


REJECT = Schema("RejectInput", {
    "reason": Text("why (kept internal)", required=True, max_length=500, multiline=True),
    "notify_customer": Boolean("send the customer `message`", default=False),
    "message": Text("the text the customer gets (only with notify_customer)", max_length=1000, multiline=True),
    "payment_id": _PAYMENT_ID,
})


@bp.post("/requests/<reference>/reject")
@operation("Reject a payment in review for this request", body=REJECT, answers={200: REJECTED}, errors=(409,))
@api_access(API_STAFF)
def admin_reject(reference: str):
    data = _message(REJECT.read(json_body()))
    req = ledger.find_request(reference)
    payment = ledger.reject(_waiting_payment(req, data["payment_id"]), req.reference, data["reason"], actor=actor(),
                            notify_customer=bool(data["notify_customer"]), message=data["message"])
    return jsonify(REJECTED.shape({**request_json(ledger.find_request(req.reference)),
                                   "rejected_payment": payment_json(payment)}))


LINK = Schema("LinkInput", {"reference": Text("the request this payment pays", required=True, max_length=64)})


@bp.post("/payments/<int:payment_id>/link")
@operation("Link an unmatched payment to a request", body=LINK, answers={200: PAYMENT}, errors=(409,))
@api_access(API_STAFF)
def admin_link(payment_id: int):
    data = LINK.read(json_body())
    return jsonify(payment_json(ledger.link(payment_id, data["reference"], actor=actor())))
