"""Read-only figures for the dashboard and the agent page (no writes but folding the tallies: webapp.domain.tallies).

Days are calendar days in the configured zone; money is summed per currency in
minor units (never mixed). Time to pay is paid_at − created_at of a paid request that Paywatch
watched being paid: requests first seen already settled (portal history, `seen_settled`) have
no true time to pay and are left out of those figures (they still count as paid).
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from peewee import JOIN, SQL, Case, NodeList, PostgresqlDatabase, fn

from webapp.config import settings
from webapp.domain import durations, tallies
from webapp.storage.db import database
from webapp.storage.models import (
    UTC,
    Agent,
    Notification,
    PaymentRequest,
    PaymentTally,
    PictureTally,
    RequestStatus,
    RequestTally,
    utcnow,
)

MATRIX_STATUSES = RequestStatus.ALL  # pending, review, partial (installments), paid, failed, expired, cancelled
# Paid requests, the status written out: the partial indexes of migration 0100 hold only rows with
# status = 'paid', and SQLite uses one only when the query says so in the statement itself (a bound
# parameter is unknown when it chooses an index).
PAID = PaymentRequest.status == SQL("'paid'")
ENDED = (RequestStatus.PAID, RequestStatus.EXPIRED, RequestStatus.FAILED, RequestStatus.CANCELLED)


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings().zone)


def last_days(count: int, now: datetime | None = None) -> list[date]:
    """The last `count` calendar days in the configured zone, oldest first, today last."""
    today = (now or utcnow()).astimezone(settings().zone).date()
    return [today - timedelta(days=i) for i in range(count - 1, -1, -1)]


def collected_per_day(days: int, *, agent_id: int | None = None, now: datetime | None = None) -> dict[str, list[tuple[date, int]]]:
    """{currency: [(day, minor units paid that day)…]} over the last `days` local days (every day listed):
    the amounts of the requests paid (paid_at) that day, seen-settled ones included. Every agent's from
    the picture tally's "collected" figure (migration 0103: a few rows a quarter hour); one agent's from
    their paid requests."""
    span, start, end = window(days, now)
    totals: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    if agent_id is None:
        for (day, currency), (_, amount) in _tally("collected", start, end, span=span).items():
            totals[currency][span[day]] += amount
        return {currency: [(day, per_day.get(day, 0)) for day in span] for currency, per_day in sorted(totals.items())}
    zone = settings().zone
    query = PaymentRequest.select(PaymentRequest.paid_at, PaymentRequest.amount_minor, PaymentRequest.currency).where(
        PAID, PaymentRequest.paid_at >= start, PaymentRequest.paid_at < end, PaymentRequest.agent == agent_id)
    # A local day is not a UTC day, and zones have DST; but every zone's offset is a whole number
    # of quarter hours, so the database sums per UTC quarter hour and each quarter goes to its
    # local day here (a few hundred rows, not every payment).
    quarter = _quarter_hour(PaymentRequest.paid_at)
    grouped = (query.select(quarter.alias("quarter"), PaymentRequest.currency, fn.SUM(PaymentRequest.amount_minor))
               .group_by(quarter, PaymentRequest.currency))
    for quarter_number, currency, amount in grouped.tuples():
        moment = datetime.fromtimestamp(int(quarter_number) * 900, tz=UTC)
        totals[currency][moment.astimezone(zone).date()] += int(amount)
    return {currency: [(day, per_day.get(day, 0)) for day in span] for currency, per_day in sorted(totals.items())}


def _quarter_hour(column):
    """SQL: the number of the UTC quarter hour (seconds since the epoch // 900) a naive-UTC column falls in."""
    if isinstance(database.obj, PostgresqlDatabase):
        return fn.floor(fn.date_part("epoch", column) / 900)
    return fn.strftime("%s", column).cast("INTEGER") / 900


def main_first(per_currency: dict) -> list[str]:
    """Currencies with the configured one first."""
    main = settings().currency
    return sorted(per_currency, key=lambda c: (c != main, c))


@dataclass(frozen=True)
class MatrixRow:
    agent: Agent | None  # None: requests without an agent
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


TALLY_SLACK = 1_000  # +1 / −1 rows tolerated beyond two per (agent, status) before they are folded


def request_counts(agent_id: int | None = None, *, every_agent: bool = False) -> dict[int | None, dict[str, int]]:
    """{agent id (None: no agent): {status: requests}} from the request tally (kept by triggers, exact).

    One statement, reading a few thousand rows at most whatever the number of requests: it also
    counts the tally's rows, and when the +1 / −1 rows pile up (more than TALLY_SLACK beyond two per
    pair) they are folded into one per pair for the next read.
    """
    query = RequestTally.select(RequestTally.agent_id, RequestTally.status, fn.SUM(RequestTally.n), fn.COUNT(SQL("*")))
    if not every_agent:
        query = query.where(RequestTally.agent_id == agent_id if agent_id is not None else RequestTally.agent_id.is_null())
    counts: dict[int | None, dict[str, int]] = defaultdict(dict)
    pairs = rows = 0
    for agent, status, count, appended in query.group_by(RequestTally.agent_id, RequestTally.status).tuples():
        pairs += 1
        rows += appended
        if count:
            counts[agent][status] = int(count)
    if every_agent and rows > 2 * pairs + TALLY_SLACK:
        tallies.fold_after_read("request_tally", ("agent_id", "status"), ("n",))  # for the next read
    return counts


def payment_counts() -> dict[str, int]:
    """{status: payments} from the payment tally (migration 0104, kept by triggers, exact): one
    statement over a few rows; folded for the next read when the +1 / −1 rows pile up."""
    counts, pairs, rows = {}, 0, 0
    query = PaymentTally.select(PaymentTally.status, fn.SUM(PaymentTally.n), fn.COUNT(SQL("*")))
    for status, count, appended in query.group_by(PaymentTally.status).tuples():
        pairs += 1
        rows += appended
        if count:
            counts[status] = int(count)
    if rows > 2 * pairs + TALLY_SLACK:
        tallies.fold_after_read("payment_tally", ("status",), ("n",))  # for the next read
    return counts


def fold_tally() -> None:
    """Replace the tally's rows by one per (agent, status) with their sum (exact under concurrent writers:
    only the rows this statement deletes are summed; rows appended meanwhile stay)."""
    tallies.fold("request_tally", ("agent_id", "status"), ("n",))


def agent_status_matrix(counts: dict[int | None, dict[str, int]] | None = None) -> list[MatrixRow]:
    """Request counts per agent × status: every agent with requests or active, then "no agent".
    `counts`: request_counts(every_agent=True) when the caller read it already."""
    counts = request_counts(every_agent=True) if counts is None else counts
    agents = Agent.select().where(Agent.id.in_([a for a in counts if a is not None]) | Agent.is_active).order_by(Agent.code)
    rows = [MatrixRow(agent, {s: counts.get(agent.id, {}).get(s, 0) for s in MATRIX_STATUSES}) for agent in agents]
    rows.append(MatrixRow(None, {s: counts.get(None, {}).get(s, 0) for s in MATRIX_STATUSES}))
    return rows


def _seconds_to_pay():
    """SQL for paid_at − created_at in seconds, on either backend."""
    if isinstance(database.obj, PostgresqlDatabase):
        # Both columns are naive UTC timestamps: their difference is the interval.
        return fn.date_part("epoch", NodeList((PaymentRequest.paid_at, SQL("-"), PaymentRequest.created_at)))
    return (fn.julianday(PaymentRequest.paid_at) - fn.julianday(PaymentRequest.created_at)) * 86400


def _time_to_pay_order():
    """SQL ordering paid requests by time to pay: the expression of the paid requests' time-to-pay
    index (migrations 0097, 0100), written exactly as there (no bound parameter), so the database walks it."""
    if isinstance(database.obj, PostgresqlDatabase):
        return NodeList((PaymentRequest.paid_at, SQL("-"), PaymentRequest.created_at), parens=True)
    return fn.julianday(PaymentRequest.paid_at) - fn.julianday(PaymentRequest.created_at)


def slowest_paid(days: int = 30, limit: int = 10, now: datetime | None = None):
    """Paid requests of the last `days` days with the longest time to pay, slowest first (with .seconds).

    Walks the paid requests slowest first through the time-to-pay index and stops at the `limit`th
    one paid in the window (a month of paid requests is not read and sorted)."""
    since = (now or utcnow()) - timedelta(days=days)
    return (PaymentRequest.select(PaymentRequest, Agent, _seconds_to_pay().alias("seconds"))
            .join(Agent, on=(PaymentRequest.agent == Agent.id), join_type=JOIN.LEFT_OUTER)
            .where(PAID, PaymentRequest.paid_at >= since, PaymentRequest.seen_settled == False)  # noqa: E712
            .order_by(_time_to_pay_order().desc(), PaymentRequest.id).limit(limit))


def oldest_pending(limit: int = 10):
    """Pending requests, oldest first."""
    return (PaymentRequest.select(PaymentRequest, Agent)
            .join(Agent, on=(PaymentRequest.agent == Agent.id), join_type=JOIN.LEFT_OUTER)
            .where(PaymentRequest.status == RequestStatus.PENDING)
            .order_by(PaymentRequest.created_at, PaymentRequest.id).limit(limit))


@dataclass(frozen=True)
class AgentStats:
    counts: dict[str, int]
    conversion: float | None  # paid / (paid + expired + failed + cancelled); None before any ended
    median_seconds_to_pay: float | None
    alerts: dict[str, int]  # pending alerts sent to the agent's phone, by notification status

    @property
    def total(self) -> int:
        return sum(self.counts.values())


MEDIAN_OF = 2_000  # the agent page's median time to pay: over this many latest paid requests


def agent_stats(agent: Agent) -> AgentStats:
    counts = {s: 0 for s in RequestStatus.ALL}
    counts.update(request_counts(agent.id).get(agent.id, {}))
    ended = sum(counts[s] for s in ENDED)
    seconds = _seconds_to_pay()
    # The median of the agent's MEDIAN_OF latest paid requests (latest paid first, through the
    # paid requests' (agent_id, paid_at) index, migration 0100; PAID is the literal it needs): a
    # busy agent's whole history would be thousands of rows a view.
    durations = [float(s) for (s,) in PaymentRequest.select(seconds).where(
        PAID, PaymentRequest.agent == agent.id,
        PaymentRequest.paid_at.is_null(False), PaymentRequest.seen_settled == False)  # noqa: E712
        .order_by(PaymentRequest.paid_at.desc()).limit(MEDIAN_OF).tuples()]
    alerts: dict[str, int] = {}
    if agent.phone:
        from webapp.domain.outbox import Kind

        alerts = dict(Notification.select(Notification.status, fn.COUNT(Notification.id))
                      .where(Notification.kind == Kind.PENDING_ALERT_AGENT, Notification.phone == agent.phone)
                      .group_by(Notification.status).tuples())
    return AgentStats(
        counts=counts,
        conversion=counts[RequestStatus.PAID] / ended if ended else None,
        median_seconds_to_pay=statistics.median(durations) if durations else None,
        alerts=alerts,
    )


duration = durations.spoken  # "45 s", "12 min" (templates of the dashboard and agent page)


@dataclass(frozen=True)
class FeeLine:
    label: str  # the request's label (e.g. "Term 1 fees"); "" for unlabelled ones
    due_minor: int
    collected_minor: int
    overdue_minor: int  # balance of the ones past their due date


def fees_summary(currency: str, now: datetime | None = None, limit: int = 6) -> list[FeeLine]:
    """Collected vs due per label for requests with a due date (fees, invoices) in `currency`,
    the labels of the latest due dates first; cancelled and failed ones are left out."""
    now = now or utcnow()
    rows = (PaymentRequest.select(PaymentRequest.meta, PaymentRequest.amount_minor, PaymentRequest.paid_minor,
                                  PaymentRequest.due_at, PaymentRequest.status, PaymentRequest.id)
            .where(PaymentRequest.due_at.is_null(False), PaymentRequest.currency == currency,
                   PaymentRequest.status.not_in((RequestStatus.CANCELLED, RequestStatus.FAILED)))
            .order_by(PaymentRequest.due_at.desc()).limit(20_000))  # the due_at index: no walk of all requests
    totals: dict[str, list[int]] = {}
    for r in rows:
        label = str((r.meta or {}).get("label") or "")
        line = totals.setdefault(label, [0, 0, 0])
        paid = r.amount_minor if r.status == RequestStatus.PAID else (r.paid_minor or 0)
        line[0] += r.amount_minor
        line[1] += paid
        if r.due_at < now and r.status != RequestStatus.PAID:
            line[2] += r.amount_minor - paid
    return [FeeLine(label, *values) for label, values in list(totals.items())[:limit]]


# ---------------------------------------------------------------- pictures (dashboard and agent page charts)
#
# The dashboard's figures read the picture tally (webapp.storage.models.PictureTally, kept by the
# triggers of migrations 0095 and 0103): rows per UTC quarter hour ("slot"), and per UTC day for the figures
# summed over the whole window. Every zone's UTC offset is a whole number of quarter hours, so a
# slot lies inside one local day: the database sums the slots per local day (a CASE over the
# window's day boundaries, DST included) and per key, and a chart reads ~30 rows per series.
# The agent page's conversion reads its requests (one agent's month) grouped by 15-minute slot.

PICTURE_DAYS = 30
SLOT_SECONDS = 900
DAY_SECONDS = 86400
# Time-to-pay histogram buckets: (upper bound in seconds, label); the last one is open. The tally's
# key is the bucket's index, computed by migration 0095's triggers: changing the bounds needs a migration.
TIME_TO_PAY_BUCKETS = (
    (60, "< 1 min"), (300, "1–5 min"), (900, "5–15 min"), (3600, "15–60 min"), (3 * 3600, "1–3 h"),
    (12 * 3600, "3–12 h"), (86400, "12–24 h"), (3 * 86400, "1–3 d"), (7 * 86400, "3–7 d"), (None, "> 7 d"),
)
ACK_DELIVERED = 2  # WhatsApp acks: 1 sent to the server, 2 delivered to the phone, 3 read, 4 played
FOLD_SLACK = 1_000  # tally rows tolerated beyond twice the (period, key) pairs a read covers before folding


def window(days: int = PICTURE_DAYS, now: datetime | None = None) -> tuple[list[date], datetime, datetime]:
    """The last `days` local days (oldest first) and the UTC instants where they start and end."""
    span = last_days(days, now)
    return span, _local_start(span[0]), _local_start(span[-1] + timedelta(days=1))


def _slot(field):
    """SQL: the 15-minute slot of a (naive UTC) timestamp column, as an integer."""
    if isinstance(database.obj, PostgresqlDatabase):
        return fn.floor(fn.date_part("epoch", field) / SLOT_SECONDS)
    return fn.strftime("%s", field).cast("INTEGER") / SLOT_SECONDS


def _day_of_slot(slot) -> date:
    return datetime.fromtimestamp(int(slot) * SLOT_SECONDS, timezone.utc).astimezone(settings().zone).date()


def _per_day(rows, span: list[date], keys: tuple) -> list[tuple]:
    """(slot, key, count) rows → [(day, count of keys[0], count of keys[1], …)…] for every day of `span`."""
    counts: dict[date, dict] = defaultdict(lambda: defaultdict(int))
    for slot, key, count in rows:
        counts[_day_of_slot(slot)][key] += int(count or 0)
    return [(day, *(counts[day][key] for key in keys)) for day in span]


def _slot_at(moment: datetime, size: int = SLOT_SECONDS) -> int:
    return int(moment.timestamp()) // size


def _tally_ranges(figure: str, start: datetime, end: datetime) -> list[tuple[str, int, int]]:
    """[(figure name, first slot, end slot)…] covering [start, end): whole UTC days from "<figure>/day",
    the quarter hours before the first and after the last of them from `figure`."""
    first, last = _slot_at(start), _slot_at(end)
    day_first, day_end = -(-first // 96), last // 96  # the whole UTC days inside (96 quarters a day)
    if day_first >= day_end:
        return [(figure, first, last)]
    ranges = [(figure + "/day", day_first, day_end), (figure, first, day_first * 96), (figure, day_end * 96, last)]
    return [(name, lo, hi) for name, lo, hi in ranges if lo < hi]


def _tally(figure: str, start: datetime, end: datetime, *, span: list[date] | None = None,
           currency: str | None = None) -> dict:
    """{key: (n, amount)} of the picture tally over [start, end) — or, given the window's local days
    `span`, {(day index, key): (n, amount)} with the slots summed per local day (quarter rows only).
    Folds the figure's rows for the next read when they pile up."""
    ranges = [(figure, _slot_at(start), _slot_at(end))] if span else _tally_ranges(figure, start, end)
    where = None
    for name, lo, hi in ranges:
        part = (PictureTally.figure == name) & (PictureTally.slot >= lo) & (PictureTally.slot < hi)
        where = part if where is None else where | part
    if currency is not None:
        where &= PictureTally.currency == currency
    groups = [PictureTally.key]
    if span:
        bounds = [_slot_at(_local_start(day)) for day in span[1:]]
        groups.insert(0, Case(None, [(PictureTally.slot < bound, i) for i, bound in enumerate(bounds)], len(bounds)))
    query = (PictureTally.select(*groups, fn.SUM(PictureTally.n), fn.SUM(PictureTally.amount), fn.COUNT(SQL("*")))
             .where(where).group_by(*[SQL(str(i + 1)) for i in range(len(groups))]))
    found, rows = {}, 0
    for *group, n, amount, count in query.tuples():
        rows += count
        if n:
            found[(int(group[0]), group[1]) if span else group[0]] = (int(n), int(amount or 0))
    keys = {key[1] if span else key for key in found}
    if rows > 2 * sum(hi - lo for _, lo, hi in ranges) * max(len(keys), 1) + FOLD_SLACK:
        names = ", ".join(f"'{name}'" for name in {figure, figure + "/day"})  # constants of this module
        tallies.fold_after_read("picture_tally", ("figure", "slot", "key", "currency"), ("n", "amount"),
                                f"figure IN ({names})")
    return found


def time_to_pay_histogram(days: int = PICTURE_DAYS, now: datetime | None = None) -> list[tuple[str, int]]:
    """[(bucket label, paid requests)…] by time to pay (paid_at − created_at), paid in the window;
    every bucket listed, fastest first. Requests first seen already settled are left out."""
    _, start, end = window(days, now)
    counts = _tally("paid", start, end)
    return [(label, counts.get(str(i), (0, 0))[0]) for i, (_, label) in enumerate(TIME_TO_PAY_BUCKETS)]


def collections_by(what: str, currency: str, days: int = PICTURE_DAYS, now: datetime | None = None,
                   limit: int = 8) -> list[tuple[str, int]]:
    """Confirmed payments in `currency` received in the window, summed by "source" or "agent"
    (the agent of the request each paid; "no agent" for none), largest first; beyond `limit`
    names the rest are summed as "others"."""
    if what not in ("source", "agent"):
        raise ValueError(f"collections by {what!r}: by source or agent")
    _, start, end = window(days, now)
    sums = {key: amount for key, (_, amount) in _tally(what, start, end, currency=currency).items()}
    if what == "agent":
        codes = dict(Agent.select(Agent.id, Agent.code).where(Agent.id.in_([int(k) for k in sums if k])).tuples())
        sums = {codes.get(int(key), "no agent") if key else "no agent": amount for key, amount in sums.items()}
    rows = sorted(sums.items(), key=lambda row: (-row[1], row[0]))
    if len(rows) > limit:
        rows = rows[:limit - 1] + [("others", sum(amount for _, amount in rows[limit - 1:]))]
    return rows


def _daily(figure: str, keys: tuple[str, ...], days: int, now: datetime | None) -> list[tuple]:
    """[(day, n of keys[0], n of keys[1], …)…] for every local day of the window, from the tally."""
    span, start, end = window(days, now)
    counts = _tally(figure, start, end, span=span)
    return [(day, *(counts.get((i, key), (0, 0))[0] for key in keys)) for i, day in enumerate(span)]


def review_trend(days: int = PICTURE_DAYS, now: datetime | None = None) -> list[tuple[date, int, int]]:
    """[(day, payments that went unmatched, payments that went to review)…] per local day of the
    window, from the audit events the ledger writes when it sends a payment there."""
    return _daily("review", ("payment.unmatched", "payment.review"), days, now)


def whatsapp_outcomes(days: int = PICTURE_DAYS, now: datetime | None = None) -> list[tuple[date, int, int, int]]:
    """[(day, sent, delivered, failed)…] per local day of the window: messages sent that day
    (delivered: the phone acknowledged it, read or played included; sent: not, or not yet)
    and messages that failed, by the day they were due."""
    return _daily("whatsapp", ("sent", "delivered", "failed"), days, now)


def agent_conversion_per_day(agent_id: int, days: int = PICTURE_DAYS,
                             now: datetime | None = None) -> list[tuple[date, int, int]]:
    """[(day, requests the agent's customers were sent that day, how many of those are paid)…]."""
    span, start, end = window(days, now)
    paid = Case(None, [(PaymentRequest.status == RequestStatus.PAID, "paid")], "other")
    rows = (PaymentRequest.select(_slot(PaymentRequest.created_at), paid, fn.COUNT(PaymentRequest.id))
            .where(PaymentRequest.agent == agent_id, PaymentRequest.created_at >= start,
                   PaymentRequest.created_at < end)
            .group_by(SQL("1"), SQL("2")).tuples())
    return [(day, other + paid_count, paid_count) for day, paid_count, other in _per_day(rows, span, ("paid", "other"))]
