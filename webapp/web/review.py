"""The review queue: payments staff must decide, one evidence card per candidate request.

One queue, oldest received first, of payments in review (with their MatchCandidate
rows, best score first) and unmatched payments (unreadable evidence included, raw
text shown). Viewers look; staff confirm, reject (with a reason) or link, each
through webapp.domain.ledger. A normal POST answers with a redirect back to the queue
(the page works without JavaScript); an HTMX POST gets the whole queue partial back
(a decision can change other items: a paid request leaves every card it was on).
A LedgerError is flashed and answered with its status (409, 422, 404) and the queue
re-rendered; static/review.js lets htmx swap those error answers in.

Live updates, and why they never clobber a reason being typed: the queue element
polls `GET /review/queue?v=<version>` every 5 s, where the version is a digest of
what the queue shows (see queue_version). An unchanged queue answers 204, which
htmx does not swap, so a poll costs two small queries and no rendering; a changed
one answers with the new queue. static/review.js cancels the poll while a reject
form is open or focus is inside a form of the queue, so a swap can only come from
the user's own action then. The navigation badge (partials/review/counts.html)
polls `GET /review/counts` every 10 s on every page.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.config import settings
from webapp.domain import claims, ledger, message_texts
from webapp.domain.outbox import Kind
from webapp.storage.models import MatchCandidate, Payment, PaymentRequest, PaymentStatus, RequestStatus, Role
from webapp.web.access import access, actor
from webapp.web.htmx import is_partial_request, render

bp = Blueprint("review", __name__, url_prefix="/review")

QUEUED = (PaymentStatus.REVIEW, PaymentStatus.UNMATCHED)
QUEUE_LIMIT = 100  # the oldest first; the rest wait their turn (the heading says how many)


@dataclass
class ReviewItem:
    """One payment in the queue and the candidate rows (request loaded) staff choose from."""

    payment: Payment
    candidates: list[MatchCandidate] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if not self.payment.parsed:
            return "unreadable"
        return "review" if self.payment.status == PaymentStatus.REVIEW else "unmatched"

    @property
    def best(self) -> MatchCandidate | None:
        """The candidate `c` confirms: the best scoring one staff may confirm."""
        return next((c for c in self.candidates if confirmable(c)), None)


def confirmable(candidate: MatchCandidate) -> bool:
    return candidate.mismatch is None and candidate.request.status in ledger.PAYABLE


def review_counts() -> dict[str, int]:
    """Requests in review, payments in review, unmatched payments, and `queue` (payments awaiting staff)."""
    counts = {
        "requests": PaymentRequest.select().where(PaymentRequest.status == RequestStatus.REVIEW).count(),
        "payments": Payment.select().where(Payment.status == PaymentStatus.REVIEW).count(),
        "unmatched": Payment.select().where(Payment.status == PaymentStatus.UNMATCHED).count(),
    }
    counts["queue"] = counts["payments"] + counts["unmatched"]
    return counts


def _queued_payments(limit: int, *fields) -> list[Payment]:
    """The oldest `limit` payments awaiting staff, oldest received first.

    One walk of the (status, received_at, id) index per queued status, merged here: the database
    reads at most `limit` rows per status, never sorts the whole queue (tens of thousands of
    unmatched payments in a large ledger)."""
    fields = fields or (Payment,)
    rows: list[Payment] = []
    for status in QUEUED:
        rows.extend(Payment.select(*fields).where(Payment.status == status)
                    .order_by(Payment.received_at, Payment.id).limit(limit))
    return sorted(rows, key=lambda p: (p.received_at, p.id))[:limit]


def queue_items(limit: int = QUEUE_LIMIT) -> list[ReviewItem]:
    """The oldest `limit` payments awaiting a decision, each with its candidates (three queries)."""
    items = [ReviewItem(p) for p in _queued_payments(limit)]
    by_id = {item.payment.id: item for item in items if item.payment.status == PaymentStatus.REVIEW}
    if by_id:
        rows = (
            MatchCandidate.select(MatchCandidate, PaymentRequest)
            .join(PaymentRequest)
            .where(MatchCandidate.payment.in_(list(by_id)))
            .order_by(MatchCandidate.score.desc(), MatchCandidate.id)
        )
        for row in rows:
            by_id[row.payment_id].candidates.append(row)
    return items


def queue_version(limit: int = QUEUE_LIMIT) -> str:
    """A digest of what the queue shows that can change: its payments, their candidates, request statuses, counts."""
    ids = [p.id for p in _queued_payments(limit, Payment.id, Payment.received_at)]
    digest = hashlib.sha1(repr((ids, review_counts())).encode(), usedforsecurity=False)
    if ids:
        payments = Payment.select(Payment.id, Payment.status, Payment.reason, Payment.late).where(Payment.id.in_(ids))
        digest.update(repr(sorted((p.id, p.status, p.reason, p.late) for p in payments)).encode())
        rows = (
            MatchCandidate.select(MatchCandidate.id, MatchCandidate.score, PaymentRequest.status)
            .join(PaymentRequest)
            .where(MatchCandidate.payment.in_(ids))
            .order_by(MatchCandidate.id)
        )
        digest.update(repr([(r.id, r.score, r.request.status) for r in rows]).encode())
    return digest.hexdigest()[:16]


@bp.app_context_processor
def _nav_counts() -> dict:
    # A callable, so the badge in the navigation costs its queries only where it is rendered.
    return {"review_counts": review_counts}


def _queue(status: int = 200):
    counts = review_counts()
    return render(
        "pages/review/index.html",
        "partials/review/queue.html",
        status=status,
        items=queue_items(),
        counts=counts,
        review_badge=counts,
        version=queue_version(),
        can_act=current_user.has_role(Role.STAFF),
        confirmable=confirmable,
        rejection=rejection,
        claims=claims.open_claims(),
    )


def rejection(payment: Payment, req: PaymentRequest) -> dict:
    """What the reject form offers about telling the customer: `why_not` (they may not be
    told), else `text`, the message they would get, for staff to edit."""
    why_not = ledger.why_not_tell_customer(payment, req)
    if why_not:
        return {"why_not": why_not}
    return {"text": message_texts.rendered(Kind.REJECTED_CUSTOMER, req, payment, settings().zone)}


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _queue()


@bp.get("/queue")
@access(Role.VIEWER)
def live_queue():
    """The queue partial for polling: 204 (nothing to swap) while the caller's version is current."""
    if is_partial_request() and request.args.get("v") == queue_version():
        return "", 204
    return _queue()


@bp.get("/counts")
@access(Role.VIEWER)
def counts():
    """The navigation badge (HTMX); a plain visit gets the queue itself."""
    if not is_partial_request():
        return redirect(url_for("review.index"))
    response = make_response(render_template("partials/review/counts.html", review_badge=review_counts()))
    response.headers["Vary"] = "HX-Request"
    return response


def _decide(action: Callable[[], Payment], done: Callable[[Payment], str]):
    """Run a ledger decision; flash what happened; answer the queue (HTMX) or a redirect (a form)."""
    try:
        payment = action()
    except ledger.LedgerError as exc:
        flash(exc.message, "error")
        return _queue(status=exc.status)
    flash(done(payment), "success")
    if is_partial_request():
        return _queue()
    return redirect(url_for("review.index"))


def _reference() -> str:
    return (request.form.get("reference") or "").strip()


@bp.post("/payments/<int:payment_id>/confirm")
@access(Role.STAFF)
def confirm(payment_id: int):
    reference = _reference()
    return _decide(
        lambda: ledger.confirm(payment_id, reference, actor=actor(), user_id=current_user.id),
        lambda payment: f"Payment {payment.id} confirmed: {payment.request.reference} is paid.",
    )


@bp.post("/payments/<int:payment_id>/reject")
@access(Role.STAFF)
def reject(payment_id: int):
    reference = _reference()
    tell = request.form.get("notify_customer") == "1"
    return _decide(
        lambda: ledger.reject(payment_id, reference, request.form.get("reason", ""), actor=actor(),
                              notify_customer=tell, message=request.form.get("message") if tell else None),
        lambda payment: f"Rejected: payment {payment.id} does not pay {reference}."
                        + (" The customer will be told." if tell else " The customer is not told."),
    )


@bp.post("/payments/<int:payment_id>/link")
@access(Role.STAFF)
def link(payment_id: int):
    reference = _reference()
    if not reference:
        flash("Type the reference of the request this payment pays.", "error")
        return _queue(status=422)
    return _decide(
        lambda: ledger.link(payment_id, reference, actor=actor(), user_id=current_user.id),
        lambda payment: f"Payment {payment.id} linked: {payment.request.reference} is paid.",
    )


@bp.post("/claims/<int:claim_id>/close")
@access(Role.STAFF)
def close_claim(claim_id: int):
    """Dismiss a customer's claim that waits with no payment (from the payment page's "I've paid")."""
    if claims.close(claim_id, actor=actor(), reason=(request.form.get("reason") or "")[:500]):
        flash(f"Claim {claim_id} closed.", "success")
    else:
        flash(f"Claim {claim_id} was no longer waiting.", "warning")
    return redirect(url_for("review.index"))
