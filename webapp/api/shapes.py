"""What the JSON API answers: each answer's schema (published in the OpenAPI document) and its serializer.

A serializer builds its dict and passes it through `SCHEMA.shape(...)`, so an answer field that is
not declared here fails every call that returns it. Adding a field = one line in the schema and
one in the serializer.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context, request

from webapp.api.inputs import encode_cursor
from webapp.api.schema import (
    Amount,
    Boolean,
    Choice,
    Cursor,
    Field,
    Integer,
    Json,
    Meta,
    Ref,
    Schema,
    Text,
    Time,
    money_text,
)
from webapp.config import settings
from webapp.domain import paypage
from webapp.storage.models import (
    Agent,
    MatchCandidate,
    Payer,
    Payment,
    PaymentRequest,
    PaymentSighting,
    PaymentStatus,
    RequestStatus,
    Voucher,
)


def _null(field: Field) -> Field:
    field.nullable = True
    return field


ERROR = Schema("Error", {
    "success": Boolean("always false", enum=[False]),
    "error": Ref(Schema("ErrorDetail", {
        "code": Text("machine-readable, e.g. validation_failed, not_found, rate_limited", max_length=None),
        "message": Text("for people", max_length=None),
        "details": Json("object", "per-field problems for validation_failed: {field: problem}",
                        additionalProperties=True),
        "timestamp": Time("when the error happened"),
    })),
}, description="Every 4xx/5xx answer of the API has this shape.")

SIGHTING = Schema("Sighting", {
    "source": Text(max_length=None),
    "source_ref": Text(max_length=None),
    "received_at": _null(Time()),
    "corroborates": Boolean("whether this sighting confirms the payment (an independent source)"),
})

PAYMENT = Schema("Payment", {
    "id": Integer(low=1),
    "source": Text("where Paywatch saw the money: api, a source's name…", max_length=None),
    "source_ref": Text("the source's own id of it", max_length=None),
    "status": Choice("", PaymentStatus.ALL),
    "amount": _null(Amount("decimal string; null only for evidence no rule could read")),
    "currency": _null(Text(max_length=3)),
    "transaction_id": _null(Text(max_length=None)),
    "sender_name": Text(max_length=None),
    "sender_phone": _null(Text("E.164, or masked as the provider shows it", max_length=None)),
    "note": Text(max_length=None),
    "received_at": _null(Time()),
    "request": _null(Text("reference of the request it pays", max_length=None)),
    "confidence": _null(Integer("match score 0–100")),
    "evidence": Json("array", "the signals behind the match decision"),
    "parsed": Boolean(),
    "verified": Boolean("false for forwarded mail and other second-hand evidence"),
    "late": Boolean("arrived after its request expired"),
    "reason": _null(Text(max_length=None)),
    "provider": _null(Text(max_length=None)),
    "also_seen": Ref(SIGHTING, "other sources that reported the same money", many=True),
})

# A payment reported with POST /payments: `sighting` says it was already known.
REPORTED_PAYMENT = Schema("ReportedPayment", {
    "sighting": Boolean("true when this report is the same money as a payment already seen: nothing is paid twice"),
}, extends=PAYMENT)

CUSTOMER = Schema("Customer", {"name": Text(max_length=None), "phone": _null(Text("E.164", max_length=None))})

_REQUEST_FIELDS: dict[str, Field] = {
    "reference": Text("what the customer quotes", max_length=64),
    "status": Choice("", RequestStatus.ALL),
    "amount": Amount("the exact amount to pay (may differ from requested_amount by a unique-amount shift)"),
    "requested_amount": Amount(),
    "currency": Text(max_length=3),
    "customer": Ref(CUSTOMER),
    "agent": _null(Text("agent code", max_length=None)),
    "source": Text("api, ui, or the name of a gateway source that polls it", max_length=None),
    "external_id": _null(Text(max_length=None)),
    "created_at": Time(),
    "expires_at": Time(),
    "paid_at": _null(Time()),
    "voucher": _null(Text("the voucher code given on payment", max_length=None)),
    "voucher_pool": _null(Text(max_length=None)),
    "meta": Meta("what the request was created with"),
    "seen_settled": Boolean("first seen already paid at its source (history): no true time to pay"),
    "pay_url": Text("the customer's payment page (absolute with PAYWATCH_PUBLIC_URL)", max_length=None),
    "due_at": _null(Time("fees and invoices: when it is due (it then never expires)")),
    "allow_partial": Boolean("paid in installments"),
    "paid_amount": Amount("what confirmed payments toward it add up to", example=None),
    "balance": Amount("what is still owed", example=None),
    "payer": _null(Text("the payer's code (roster)", max_length=None)),
}
REQUEST_SUMMARY = Schema("RequestSummary", _REQUEST_FIELDS, description="A payment request, without its payments.")
REQUEST = Schema("Request", {"payments": Ref(PAYMENT, "payments linked to it, oldest first", many=True)},
                 extends=REQUEST_SUMMARY)

CANDIDATE = Schema("Candidate", {
    "payment": Ref(PAYMENT),
    "score": Integer(),
    "late": Boolean(),
    "mismatch": _null(Text(max_length=None)),
    "evidence": Json("array"),
})
REVIEWED_REQUEST = Schema("ReviewedRequest", {"candidates": Ref(CANDIDATE, "payments waiting for a decision, best first", many=True)},
                          extends=REQUEST)
PENDING_REQUEST = Schema("PendingRequest", {"candidates": Ref(CANDIDATE, many=True)}, extends=REQUEST_SUMMARY)
CONFIRMED = Schema("ConfirmedRequest", {"confirmed_payment": Integer("id of the payment confirmed")}, extends=REQUEST)
REJECTED = Schema("RejectedRequest", {"rejected_payment": Ref(PAYMENT)}, extends=REQUEST)


def page_of(item: Schema, name: str | None = None, data: str = "", **extra) -> Schema:
    """A page of a list: newest first; pass `next_cursor` as `cursor` for the next page (`extra`: more fields)."""
    return Schema(name or f"PageOf{item.name}", {
        "data": Ref(item, data, many=True),
        "has_more": Boolean(),
        "next_cursor": _null(Text("give it as ?cursor= to get the next page; null on the last", max_length=32)),
        **extra,
    })


REQUEST_PAGE, PAYMENT_PAGE = page_of(REQUEST), page_of(PAYMENT)
PENDING = page_of(PENDING_REQUEST, "PendingVerifications", "requests in review, newest first", late_payments=Ref(
    PAYMENT, "payments in review that came after their request expired, newest first: on the first page only "
    "(no cursor), at most `limit` of them (the others: GET /payments?status=review)", many=True))
MAX_PAGE = 200
PAGE_QUERY = {"limit": Integer("items per page, default 50", low=1, high=MAX_PAGE), "cursor": Cursor()}


def page(shape: Schema, query, model, serialize, args: dict[str, Any], preload=None, **extra) -> dict[str, Any]:
    """One page of `query` (newest first) after `args["cursor"]`, as `shape` (a page_of schema, its
    `extra` fields given); `preload(rows)` loads what the serializer reads for the whole page at once
    (no query per row)."""
    limit = page_size(args)
    if args["cursor"] is not None:
        query = query.where(model.id < args["cursor"])
    rows = list(query.order_by(model.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    if preload is not None:
        preload(rows)
    return shape.shape({"data": [serialize(r) for r in rows], "has_more": more,
                        "next_cursor": encode_cursor(rows[-1].id) if more else None, **extra})


def page_size(args: dict[str, Any]) -> int:
    return args["limit"] or 50

_CHECK = Json("object", "ok, and details that depend on the part", additionalProperties=True,
              properties={"ok": {"type": "boolean"}})
HEALTH = Schema("Health", {
    "ok": Boolean("every part up"),
    "database": _CHECK, "redis": _CHECK, "workers": _CHECK, "delayed_jobs": _CHECK, "scheduler": _CHECK,
    "sources": Json("array", "each source's freshness", items={"type": "object"}),
    "whatsapp": Json("object", "the WhatsApp session", additionalProperties=True),
}, description="200 when every part is up, 503 (same shape) when one is down.")

OPENAPI = Schema("OpenApiDocument", {"openapi": Text(max_length=10), "info": Json("object"), "paths": Json("object")},
                 open=True, description="This document.")


# ------------------------------------------------------------------ serializers


# ------------------------------------------------------------------ preloading (a list in a fixed number of queries)
# A serializer reads a row's agent, payer, voucher, payments, sightings and linked request; for a
# list these are loaded for every row at once and kept on the row (the attributes below), so a
# page costs the same few queries whatever its length.


def preload_payments(payments: list[Payment], *, requests: bool = True) -> list[Payment]:
    """Sightings (and, with `requests`, the request each pays) of `payments`, three queries at most."""
    ids = [p.id for p in payments if p.id]
    sightings: dict[int, list[PaymentSighting]] = {i: [] for i in ids}
    if ids:
        for s in PaymentSighting.select().where(PaymentSighting.payment.in_(ids)).order_by(PaymentSighting.id):
            sightings[s.payment_id].append(s)
    for p in payments:
        p._sightings = sightings.get(p.id, [])
    if requests:
        wanted = {p.request_id for p in payments if p.request_id}
        known = {r.id: r for r in PaymentRequest.select(PaymentRequest.id, PaymentRequest.reference)
                 .where(PaymentRequest.id.in_(list(wanted)))} if wanted else {}
        for p in payments:
            if p.request_id in known:
                p.request = known[p.request_id]
    return payments


def preload_requests(reqs: list[PaymentRequest], *, with_payments: bool = True) -> list[PaymentRequest]:
    """Agents, payers, vouchers (and payments with their sightings) of `reqs`, a few queries for the lot."""
    ids = [r.id for r in reqs if r.id]
    if not ids:
        return reqs
    for field, model in ((PaymentRequest.agent, Agent), (PaymentRequest.payer, Payer)):
        wanted = {getattr(r, field.name + "_id") for r in reqs} - {None}
        found = {row.id: row for row in model.select().where(model.id.in_(list(wanted)))} if wanted else {}
        for r in reqs:
            if getattr(r, field.name + "_id") in found:
                setattr(r, field.name, found[getattr(r, field.name + "_id")])
    vouchers: dict[int, Voucher] = {}
    for v in Voucher.select().where(Voucher.request.in_(ids)).order_by(Voucher.id.desc()):
        vouchers[v.request_id] = v  # the first (lowest id) wins, as iterating the backref did
    by_request: dict[int, list[Payment]] = {i: [] for i in ids}
    if with_payments:
        payments = list(Payment.select().where(Payment.request.in_(ids)).order_by(Payment.received_at, Payment.id))
        preload_payments(payments, requests=False)
        for p in payments:
            by_request[p.request_id].append(p)
    for r in reqs:
        r._voucher = vouchers.get(r.id)
        if with_payments:
            for p in by_request[r.id]:
                p.request = r
            r._payments = by_request[r.id]
    return reqs


def _sightings(payment: Payment) -> list[PaymentSighting]:
    preloaded = getattr(payment, "_sightings", None)
    if preloaded is not None:
        return preloaded
    return list(payment.sightings.order_by(PaymentSighting.id)) if payment.id else []


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def payment_json(payment: Payment) -> dict[str, Any]:
    return PAYMENT.shape({
        "id": payment.id,
        "source": payment.source,
        "source_ref": payment.source_ref,
        "status": payment.status,
        "amount": money_text(payment.amount_minor, payment.currency),
        "currency": payment.currency,
        "transaction_id": payment.transaction_id,
        "sender_name": payment.sender_name,
        "sender_phone": payment.sender_phone,
        "note": payment.note,
        "received_at": iso(payment.received_at),
        "request": payment.request.reference if payment.request_id else None,
        "confidence": payment.confidence,
        "evidence": payment.evidence or [],
        "parsed": payment.parsed,
        "verified": payment.verified,
        "late": payment.late,
        "reason": payment.reason,
        "provider": payment.provider,
        "also_seen": [SIGHTING.shape({"source": s.source, "source_ref": s.source_ref, "received_at": iso(s.received_at),
                                      "corroborates": s.corroborates}) for s in _sightings(payment)],
    })


def request_json(req: PaymentRequest, *, with_payments: bool = True) -> dict[str, Any]:
    voucher = getattr(req, "_voucher", None) if hasattr(req, "_voucher") else (
        next(iter(req.vouchers), None) if req.id else None)
    body = {
        "reference": req.reference,
        "status": req.status,
        "amount": money_text(req.amount_minor, req.currency),
        "requested_amount": money_text(req.requested_minor, req.currency),
        "currency": req.currency,
        "customer": CUSTOMER.shape({"name": req.customer_name, "phone": req.customer_phone}),
        "agent": req.agent.code if req.agent_id else None,
        "source": req.source,
        "external_id": req.external_id,
        "created_at": iso(req.created_at),
        "expires_at": iso(req.expires_at),
        "paid_at": iso(req.paid_at),
        "voucher": voucher.code if voucher else None,
        "voucher_pool": req.voucher_pool,
        "meta": req.meta or {},
        "seen_settled": bool(req.seen_settled),
        "pay_url": paypage.pay_url(req, settings().public_url, request.host_url if has_request_context() else None),
        "due_at": iso(req.due_at),
        "allow_partial": bool(req.allow_partial),
        "paid_amount": money_text(req.paid_minor or 0, req.currency),
        "balance": money_text(req.balance_minor, req.currency),
        "payer": req.payer.code if req.payer_id else None,
    }
    if not with_payments:
        return REQUEST_SUMMARY.shape(body)
    payments = getattr(req, "_payments", None)
    if payments is None:
        payments = preload_payments(list(Payment.select().where(Payment.request == req.id)
                                         .order_by(Payment.received_at, Payment.id)), requests=False)
        for p in payments:
            p.request = req
    return REQUEST.shape({**body, "payments": [payment_json(p) for p in payments]})


def candidates_of(req: PaymentRequest) -> list[dict]:
    return candidates_by_request([req])[req.id]


def candidates_by_request(reqs: list[PaymentRequest]) -> dict[int, list[dict]]:
    """Each request's candidate payments still in review, best first, as CANDIDATE answers (one
    query for the candidates, one for their payments, then the payments' sightings and requests preloaded)."""
    found: dict[int, list[MatchCandidate]] = {r.id: [] for r in reqs}
    if found:
        rows = list(MatchCandidate.select().where(MatchCandidate.request.in_(list(found)))
                    .order_by(MatchCandidate.score.desc(), MatchCandidate.id))
        # The payments by id, apart: joined, PostgreSQL may merge-join along every payment's id.
        waiting = {p.id: p for p in Payment.select().where(Payment.id.in_({row.payment_id for row in rows}),
                                                           Payment.status == PaymentStatus.REVIEW)} if rows else {}
        rows = [row for row in rows if row.payment_id in waiting]
        preload_payments(list(waiting.values()))
        for row in rows:
            row.payment = waiting[row.payment_id]
            found[row.request_id].append(row)
    return {rid: [CANDIDATE.shape({"payment": payment_json(row.payment), "score": row.score, "late": row.late,
                                   "mismatch": row.mismatch, "evidence": row.evidence}) for row in rows]
            for rid, rows in found.items()}
