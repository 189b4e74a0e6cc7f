"""The review queue: payments staff must decide, one evidence card per candidate request.

One queue, oldest received first, of payments in review (with their MatchCandidate
rows, best score first) and unmatched payments (unreadable evidence included, raw
text shown). Viewers look; staff confirm, reject (with a reason) or link, each
through webapp.domain.ledger. A normal POST answers with a redirect back to the queue
(the page works without JavaScript); an HTMX POST gets the whole queue partial back
(a decision can change other items: a paid request leaves every card it was on).
A refused decision (LedgerError: 409, 422, 404) is answered with its status and the
payment's item alone, the error on the card it came from and what was typed kept
(HX-Retarget points htmx at the item; static/review.js lets htmx swap those answers in);
a plain form gets the page with the error on the card and a flash. A payment that left
the queue meanwhile gets the queue back, with the flash.

Each candidate card shows its decisive signal (the one that scored most) and the other
signals that scored; the signals that scored nothing sit behind "why not". An unmatched
payment offers suggested requests (webapp.domain.suggestions) with a one-click Link,
and a search (`GET /review/payments/<id>/search?q=`) answering more of them.

Live updates, and why they never clobber a reason being typed: the queue element
polls `GET /review/queue?v=<version>` every 5 s, where the version is a digest of
what the queue shows (see queue_version). An unchanged queue answers 204, which
htmx does not swap, so a poll costs the queue's queries and no rendering; a changed
one answers with the new queue (read once: the version comes from the same rows). static/review.js cancels the poll while a reject
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
from webapp.domain import claims, ledger, message_texts, reports, suggestions
from webapp.domain.outbox import Kind
from webapp.storage.models import MatchCandidate, Payment, PaymentRequest, PaymentStatus, RequestStatus, Role
from webapp.web.access import access, actor
from webapp.web.htmx import is_partial_request, render

bp = Blueprint("review", __name__, url_prefix="/review")

QUEUED = (PaymentStatus.REVIEW, PaymentStatus.UNMATCHED)
QUEUE_LIMIT = 30  # the oldest first; the rest wait their turn (the heading says how many): a card is
#                  rendered with all its candidates, and 30 keep the page and its 5-s poll under 100 ms
SUGGEST_INLINE = 5  # unmatched items rendered with their suggestions; the later ones load them on a click


@dataclass
class ReviewItem:
    """One payment in the queue and the candidate rows (request loaded) staff choose from."""

    payment: Payment
    candidates: list[MatchCandidate] = field(default_factory=list)
    suggest_inline: bool = True
    _suggested: list[suggestions.Suggestion] | None = None

    @property
    def suggestions(self) -> list[suggestions.Suggestion] | None:
        """Requests this unmatched payment may pay (read once, when the template asks);
        None when the item loads them on request (beyond the first SUGGEST_INLINE)."""
        if self._suggested is None and self.suggest_inline:
            self._suggested = suggestions.suggest(self.payment)
        return self._suggested

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


# Zero-point entries that are facts about the pair, not signals that failed to score.
NOTES = ("claim", "mismatch", "staff")


@dataclass
class CardSignals:
    """A candidate's evidence for the card: the decisive signal, the others that scored, the rest."""

    decisive: dict | None
    scored: list[dict]
    notes: list[dict]
    why_not: list[dict]


def card_signals(candidate: MatchCandidate) -> CardSignals:
    evidence = list(candidate.evidence or [])
    scored = sorted((e for e in evidence if e.get("points")), key=lambda e: -e["points"])  # stable: ties keep order
    notes = [e for e in evidence if not e.get("points") and e.get("signal") in NOTES]
    why_not = [e for e in evidence if not e.get("points") and e.get("signal") not in NOTES]
    return CardSignals(scored[0] if scored else None, scored[1:], notes, why_not)


@dataclass
class Problem:
    """A refused action, shown on the card it came from with what was typed."""

    payment_id: int
    action: str  # confirm, reject, link
    reference: str
    message: str
    reason: str = ""
    text: str = ""
    told: bool = False

    def refused(self, message: str) -> Problem:
        """Keep the ledger's message, as a sentence."""
        text = message.strip()
        self.message = (text[:1].upper() + text[1:]).rstrip(".") + "."
        return self

    def elsewhere(self, item: ReviewItem) -> bool:
        """About this item but about no card or form of it (a reference no card names): shown atop the item."""
        if self.payment_id != item.payment.id:
            return False
        if self.action == "link":
            return item.kind == "review"
        return self.reference not in {c.request.reference for c in item.candidates}

    def on(self, payment_id: int, action: str, reference: str | None = None) -> bool:
        return self.payment_id == payment_id and self.action == action and (
            reference is None or self.reference == reference)


def review_counts() -> dict[str, int]:
    """Requests in review, payments in review, unmatched payments, and `queue` (payments awaiting staff)."""
    payments = reports.payment_counts()  # the payment tally: tens of thousands unmatched in a large ledger
    counts = {
        "requests": PaymentRequest.select().where(PaymentRequest.status == RequestStatus.REVIEW).count(),
        "payments": payments.get(PaymentStatus.REVIEW, 0),
        "unmatched": payments.get(PaymentStatus.UNMATCHED, 0),
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


def queue_items(limit: int = QUEUE_LIMIT, payment_id: int | None = None) -> list[ReviewItem]:
    """The oldest `limit` payments awaiting a decision (or that one payment, while it waits),
    each with its candidates (three queries)."""
    if payment_id is None:
        payments = _queued_payments(limit)
    else:
        payments = list(Payment.select().where(Payment.id == payment_id, Payment.status.in_(QUEUED)))
    items = [ReviewItem(p) for p in payments]
    for later in [item for item in items if item.payment.status != PaymentStatus.REVIEW][SUGGEST_INLINE:]:
        later.suggest_inline = False
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


def queue_version(items: list[ReviewItem] | None = None, counts: dict[str, int] | None = None) -> str:
    """A digest of what the queue shows that can change: its payments, their candidates, request statuses,
    counts. From the `items` and `counts` a render already loaded, or read here (a poll: three queries
    for the items, three counts)."""
    items = queue_items() if items is None else items
    counts = review_counts() if counts is None else counts
    shown = [(item.payment.id, item.payment.status, item.payment.reason, item.payment.late,
              sorted((c.id, c.score, c.request.status) for c in item.candidates)) for item in items]
    return hashlib.sha1(repr((shown, counts)).encode(), usedforsecurity=False).hexdigest()[:16]


@bp.app_context_processor
def _nav_counts() -> dict:
    # A callable, so the badge in the navigation costs its queries only where it is rendered.
    return {"review_counts": review_counts}


def _card_context() -> dict:
    """What partials/review/item.html needs besides the item."""
    return {"can_act": current_user.has_role(Role.STAFF), "confirmable": confirmable, "rejection": rejection,
            "card_signals": card_signals, "link_endpoint": "review.link", "on": "review"}


def _queue(status: int = 200, problem: Problem | None = None, items: list[ReviewItem] | None = None,
           counts: dict[str, int] | None = None):
    counts = review_counts() if counts is None else counts
    items = queue_items() if items is None else items
    return render(
        "pages/review/index.html",
        "partials/review/queue.html",
        status=status,
        items=items,
        counts=counts,
        review_badge=counts,
        version=queue_version(items, counts),
        claims=claims.open_claims(),
        rejected_count=lambda: Payment.select().where(Payment.status == PaymentStatus.REJECTED).count(),
        problem=problem,
        **_card_context(),
    )


def _refused(problem: Problem, status: int):
    """Answer a refused action: the item alone with the error on its card (HTMX), else the page.

    A payment no longer in the queue (decided meanwhile) gets the whole queue and the flash."""
    items = queue_items(limit=1, payment_id=problem.payment_id)
    if not is_partial_request() or not items:
        flash(problem.message, "error")
        return _queue(status=status, problem=problem)
    response = make_response(render_template("partials/review/item.html", item=items[0], problem=problem,
                                             **_card_context()), status)
    response.headers["HX-Retarget"] = f"#review-item-{problem.payment_id}"
    response.headers["HX-Reswap"] = "outerHTML"
    response.headers["Vary"] = "HX-Request"
    return response


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
    counts, items = review_counts(), queue_items()
    if is_partial_request() and request.args.get("v") == queue_version(items, counts):
        return "", 204
    return _queue(items=items, counts=counts)


@bp.get("/counts")
@access(Role.VIEWER)
def counts():
    """The navigation badge (HTMX); a plain visit gets the queue itself."""
    if not is_partial_request():
        return redirect(url_for("review.index"))
    response = make_response(render_template("partials/review/counts.html", review_badge=review_counts()))
    response.headers["Vary"] = "HX-Request"
    return response


def _decide(action: Callable[[], Payment], done: Callable[[Payment], str], problem: Problem):
    """Run a ledger decision; flash what happened; answer the queue (HTMX) or a redirect (a form).
    Refused: the error on the card, with what was typed (`problem`, its message filled in)."""
    try:
        payment = action()
    except ledger.LedgerError as exc:
        return _refused(problem.refused(exc.message), exc.status)
    flash(done(payment), "success")
    if is_partial_request():
        return _queue()
    return redirect(url_for("review.index"))


def _reference() -> str:
    return (request.form.get("reference") or "").strip()[:64]


@bp.post("/payments/<int:payment_id>/confirm")
@access(Role.STAFF)
def confirm(payment_id: int):
    reference = _reference()
    return _decide(
        lambda: ledger.confirm(payment_id, reference, actor=actor(), user_id=current_user.id),
        lambda payment: f"Payment {payment.id} confirmed: {payment.request.reference} is paid.",
        Problem(payment_id, "confirm", reference, ""),
    )


@bp.post("/payments/<int:payment_id>/reject")
@access(Role.STAFF)
def reject(payment_id: int):
    reference = _reference()
    tell = request.form.get("notify_customer") == "1"
    reason, text = request.form.get("reason", ""), request.form.get("message")
    return _decide(
        lambda: ledger.reject(payment_id, reference, reason, actor=actor(),
                              notify_customer=tell, message=text if tell else None),
        lambda payment: f"Rejected: payment {payment.id} does not pay {reference}."
                        + (" The customer will be told." if tell else " The customer is not told."),
        Problem(payment_id, "reject", reference, "", reason=reason[:500], text=(text or "")[:2000], told=tell),
    )


@bp.post("/payments/<int:payment_id>/link")
@access(Role.STAFF)
def link(payment_id: int):
    reference = _reference()
    problem = Problem(payment_id, "link", reference, "")
    if not reference:
        problem.message = "Type the reference of the request this payment pays."
        return _refused(problem, 422)
    return _decide(
        lambda: ledger.link(payment_id, reference, actor=actor(), user_id=current_user.id),
        linked_message, problem,
    )


def linked_message(payment: Payment) -> str:
    return f"Payment {payment.id} linked: {payment.request.reference} is " + (
        "paid." if payment.request.status == RequestStatus.PAID else f"{payment.request.status}.")


@bp.get("/payments/<int:payment_id>/search")
@access(Role.VIEWER)
def search(payment_id: int):
    """Requests found by reference, phone or name, as link buttons (HTMX; `on=payment` for the payment page);
    with no `q`, the payment's suggestions."""
    try:
        payment = ledger.find_payment(payment_id)
    except ledger.LedgerError:
        return "", 404
    text = (request.args.get("q") or "").strip()
    on = "payment" if request.args.get("on") == "payment" else "review"
    context = _card_context()
    if on == "payment":
        context.update(on="payment", link_endpoint="payments.link")
    response = make_response(render_template(
        "partials/review/suggestions.html", p=payment,
        found=suggestions.search(payment, text) if text else suggestions.suggest(payment),
        searched=text, **context))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.post("/claims/<int:claim_id>/close")
@access(Role.STAFF)
def close_claim(claim_id: int):
    """Dismiss a customer's claim that waits with no payment (from the payment page's "I've paid")."""
    if claims.close(claim_id, actor=actor(), reason=(request.form.get("reason") or "")[:500]):
        flash(f"Claim {claim_id} closed.", "success")
    else:
        flash(f"Claim {claim_id} was no longer waiting.", "warning")
    return redirect(url_for("review.index"))
