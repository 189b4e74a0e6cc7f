"""What a batch of payments needs read, read for the whole batch at once (ledger.ingest_payments).

Ingesting one payment reads: is this report or this money stored already (find_stored),
which requests have its amount (candidate_requests), which installment requests name its
payer, what staff taught about its name and phone. A source pass hands over up to a few
hundred payments; each of those reads is one statement for the whole batch here instead of
one per payment (on PostgreSQL a round trip each), and each payment then takes its own part.

What a batch's earlier payments change is not in what was read first, so a payment uses
what was read only where nothing earlier in the batch touched it:
- a report or money key already ingested in this batch: find_stored() reads again;
- a request an earlier payment confirmed, moved to review or named as a candidate: the
  payment's requests (of its amount, or its installment requests) are read again;
- a payment that was not new (another sighting of known money can match it again, and that
  releases requests): everything after it is read again (`spoiled`).
Another process's commit after the read is caught as it always is: the request's
compare-and-set fails and matching decides again on fresh state (money_in._match's second
attempt reads live), and a duplicate key rolls the batch back (ingest_payments).

The batch's new payments are written the same way, all at once: each is decided with its row
held back (`hold`), and `flush` writes the held rows in one INSERT when the batch ends, after
the rows that name them (the transaction checks its foreign keys at COMMIT:
db.defer_foreign_keys). A read that could see them writes them first: the next payment's
report or money read again (`stored` says None), its transaction id's other amounts (`hold`),
and anything about a payment that is not new. With a webhook endpoint listening nothing is
held (an event's body is read from the rows).
"""
from __future__ import annotations

from collections import defaultdict
from webapp.domain import learned, matching, webhooks
from webapp.domain.ledger import installments
from webapp.domain.matching.lookup import payment_facts, requests_by_amount
from webapp.storage import sqlcache
from webapp.storage.models import Payment, PaymentRequest


class Lookahead:
    """Reads for a batch of new payments (`payments`: as they will be stored, without ids; the
    same order as `keys`, each (report key, money key or None))."""

    def __init__(self, payments: list[Payment], keys: list[tuple[tuple, tuple | None]],
                 settings: matching.MatchSettings):
        self.settings = settings
        self.spoiled = False
        self._done: set[tuple] = set()  # report and money keys this batch already ingested
        self._touched: set[int] = set()  # requests this batch changed or named
        self._stored = _stored_many(keys)
        parsed = [p for p in payments if p.parsed and p.amount_minor is not None and p.currency]
        self._by_amount: dict[str, dict[int, list[matching.RequestFacts]]] = {}
        self._installments: dict[str, list[PaymentRequest] | None] = {}
        for currency, group in _by_currency(parsed).items():
            times = [p.received_at for p in group]
            self._by_amount[currency] = requests_by_amount(
                currency, [p.amount_minor for p in group], max(times) + settings.skew,
                min(times) - settings.grace - settings.late_lookback)
            self._installments[currency] = installments.lookup_many(group, settings)
        self._pairs = {pair for p in parsed for pair in learned.wanted(payment_facts(p), settings.names)}
        self._learned = learned.for_many(self._pairs) if self._pairs else {}
        self._ids = iter(sqlcache.next_ids(Payment, len(payments)))
        self.holding = not webhooks.anyone_listening()
        self._held: list[Payment] = []
        self._held_txns: set[tuple[str, str]] = set()  # (currency, txn_norm) of the held rows

    def next_id(self) -> int:
        """The id of the batch's next new payment (one for each observation)."""
        return next(self._ids)

    # ------------------------------------------------------------ reads, or None: read it yourself

    def stored(self, report: tuple, money: tuple | None) -> tuple[Payment | None, Payment | None] | None:
        """find_stored()'s answer for this report, as read for the batch."""
        if self.spoiled or report in self._done or (money is not None and money in self._done):
            return None
        known = self._stored.get(report)
        return (known, None) if known is not None else (None, self._stored.get(money) if money else None)

    def requests(self, facts: matching.PaymentFacts) -> list[matching.RequestFacts] | None:
        """The requests of this payment's amount (candidate_requests' `by_amount`)."""
        found = None if self.spoiled else self._by_amount.get(facts.currency, {}).get(facts.amount_minor)
        if found is None or any(r.id in self._touched for r in found):
            return None
        return found

    def installment_rows(self, payment: Payment) -> list[PaymentRequest] | None:
        """installments.decide()'s `rows` for this payment."""
        if self.spoiled or payment.currency not in self._installments:
            return None
        rows = self._installments[payment.currency]
        if rows is None:
            return []  # nobody in the batch named a payer: nobody's installment
        if any(r.id in self._touched for r in rows):
            return None
        return rows

    def learned(self, facts: matching.PaymentFacts, rules: matching.NameRules) -> tuple[matching.Learned, ...] | None:
        pairs = learned.wanted(facts, rules)
        if self.spoiled or not set(pairs) <= self._pairs:
            return None
        return learned.pick(self._learned, pairs)

    # ------------------------------------------------------------ new rows, written at the end

    def hold(self, payment: Payment) -> None:
        """Keep this new payment's row (`payment.unwritten`) for the batch's INSERT; write_payment()
        adds to it what is decided meanwhile. The held rows are written first when one has its
        transaction id (money_in._doubt reads that id's other amounts next)."""
        if payment.txn_norm:
            txn = (payment.currency, payment.txn_norm)
            if txn in self._held_txns:
                self.flush()
            self._held_txns.add(txn)
        payment.held = True
        self._held.append(payment)

    def flush(self) -> None:
        """INSERT every held row not written yet, in one statement (per sqlcache.MANY_ROWS)."""
        held = [p for p in self._held if p.unwritten is not None]
        sqlcache.insert_many(Payment, [{**p.unwritten, "id": p.id} for p in held])
        for payment in self._held:
            payment.unwritten, payment.held = None, False
        self._held.clear()
        self._held_txns.clear()

    # ------------------------------------------------------------ what each payment changed

    def done(self, report: tuple, money: tuple | None, created: bool, decision: matching.Decision | None) -> None:
        self._done.add(report)
        if money is not None:
            self._done.add(money)
        if not created:
            self.spoiled = True  # known money seen again may have been matched again
        elif decision is not None:
            self._touched.update(c.request_id for c in decision.candidates)
            if decision.candidate is not None:
                self._touched.add(decision.candidate.request_id)


def _by_currency(payments: list[Payment]) -> dict[str, list[Payment]]:
    groups: dict[str, list[Payment]] = defaultdict(list)
    for payment in payments:
        groups[payment.currency].append(payment)
    return groups


def _stored_many(keys: list[tuple[tuple, tuple | None]]) -> dict[tuple, Payment]:
    """find_stored() for many reports: report key (source, source_ref) -> the payment it made or
    was seen on; money key (currency, transaction id, amount) -> the payment of that money.
    One statement per source and one per currency (a source pass has one of each)."""
    found: dict[tuple, Payment] = {}
    refs: dict[str, list[str]] = defaultdict(list)
    txns: dict[str, set[str]] = defaultdict(set)
    for (source, ref), money in keys:
        refs[source].append(ref)
        if money is not None:
            txns[money[0]].add(money[1])
    for source, wanted in refs.items():
        values = sqlcache.padded(sorted(set(wanted)))
        rows = sqlcache.select(
            Payment, f"stored_many_{len(values)}",
            lambda p: (
                f'SELECT 1 AS "found_by", "payment"."source_ref" AS "found_ref", "payment".* FROM "payment" '
                f'WHERE "source" = {p} AND "source_ref" IN ({sqlcache.marks(values, p)}) '
                f'UNION ALL SELECT 2 AS "found_by", "payment_sighting"."source_ref" AS "found_ref", "payment".* '
                f'FROM "payment_sighting" JOIN "payment" ON "payment"."id" = "payment_sighting"."payment_id" '
                f'WHERE "payment_sighting"."source" = {p} AND "payment_sighting"."source_ref" IN '
                f'({sqlcache.marks(values, p)})'),
            [source, *values, source, *values])
        for row in sorted(rows, key=lambda r: r.found_by):  # the payment's own report first
            found.setdefault((source, row.found_ref), row)
    for currency, wanted in txns.items():
        values = sqlcache.padded(sorted(wanted))
        rows = sqlcache.select(
            Payment, f"stored_money_many_{len(values)}",
            lambda p: f'SELECT * FROM "payment" WHERE "currency" = {p} AND "txn_norm" IN ({sqlcache.marks(values, p)})',
            [currency, *values])
        for row in rows:
            found[(row.currency, row.txn_norm, row.amount_minor)] = row
    return found
