"""Read-only figures for the dashboard and the agent page (no writes but folding the request tally).

Days are calendar days in the configured zone; money is summed per currency in
minor units (never mixed). Time to pay is paid_at − created_at of a paid request that Paywatch
watched being paid: requests first seen already settled (portal history, `seen_settled`) have
no true time to pay and are left out of those figures (they still count as paid).
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from peewee import JOIN, SQL, NodeList, PostgresqlDatabase, fn

from webapp.config import settings
from webapp.storage.db import database, transaction
from webapp.storage.models import UTC, Agent, Notification, PaymentRequest, RequestStatus, RequestTally, utcnow

MATRIX_STATUSES = RequestStatus.ALL  # pending, review, partial (installments), paid, failed, expired, cancelled
ENDED = (RequestStatus.PAID, RequestStatus.EXPIRED, RequestStatus.FAILED, RequestStatus.CANCELLED)


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings().zone)


def last_days(count: int, now: datetime | None = None) -> list[date]:
    """The last `count` calendar days in the configured zone, oldest first, today last."""
    today = (now or utcnow()).astimezone(settings().zone).date()
    return [today - timedelta(days=i) for i in range(count - 1, -1, -1)]


def collected_per_day(days: int, *, agent_id: int | None = None, now: datetime | None = None) -> dict[str, list[tuple[date, int]]]:
    """{currency: [(day, minor units paid that day)…]} over the last `days` local days (every day listed)."""
    span = last_days(days, now)
    zone = settings().zone
    query = PaymentRequest.select(PaymentRequest.paid_at, PaymentRequest.amount_minor, PaymentRequest.currency).where(
        PaymentRequest.status == RequestStatus.PAID,
        PaymentRequest.paid_at >= _local_start(span[0]),
        PaymentRequest.paid_at < _local_start(span[-1] + timedelta(days=1)),
    )
    if agent_id is not None:
        query = query.where(PaymentRequest.agent == agent_id)
    totals: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
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

    Reads a few thousand rows at most whatever the number of requests: when the tally's +1 / −1
    rows pile up (more than TALLY_SLACK beyond two per pair), they are folded into one per pair.
    """
    query = RequestTally.select(RequestTally.agent_id, RequestTally.status, fn.SUM(RequestTally.n))
    if not every_agent:
        query = query.where(RequestTally.agent_id == agent_id if agent_id is not None else RequestTally.agent_id.is_null())
    counts: dict[int | None, dict[str, int]] = defaultdict(dict)
    pairs = 0
    for agent, status, count in query.group_by(RequestTally.agent_id, RequestTally.status).tuples():
        pairs += 1
        if count:
            counts[agent][status] = int(count)
    if every_agent and RequestTally.select().limit(2 * pairs + TALLY_SLACK + 1).count() > 2 * pairs + TALLY_SLACK:
        fold_tally()  # for the next read; what was read above is already exact
    return counts


def fold_tally() -> None:
    """Replace the tally's rows by one per (agent, status) with their sum (exact under concurrent writers:
    only the rows this statement deletes are summed; rows appended meanwhile stay)."""
    with transaction():
        if isinstance(database.obj, PostgresqlDatabase):
            database.execute_sql(
                "WITH gone AS (DELETE FROM request_tally RETURNING agent_id, status, n) "
                "INSERT INTO request_tally (agent_id, status, n) "
                "SELECT agent_id, status, SUM(n) FROM gone GROUP BY agent_id, status HAVING SUM(n) <> 0")
            return
        # SQLite: one writer at a time, so a snapshot of the ids read here is all there is.
        top = RequestTally.select(fn.MAX(RequestTally.id)).scalar()
        if top is None:
            return
        database.execute_sql(
            "INSERT INTO request_tally (agent_id, status, n) SELECT agent_id, status, SUM(n) FROM request_tally "
            "WHERE id <= ? GROUP BY agent_id, status HAVING SUM(n) <> 0", (top,))
        RequestTally.delete().where(RequestTally.id <= top).execute()


def agent_status_matrix() -> list[MatrixRow]:
    """Request counts per agent × status: every agent with requests or active, then "no agent"."""
    counts = request_counts(every_agent=True)
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


def slowest_paid(days: int = 30, limit: int = 10, now: datetime | None = None):
    """Paid requests of the last `days` days with the longest time to pay, slowest first (with .seconds)."""
    since = (now or utcnow()) - timedelta(days=days)
    seconds = _seconds_to_pay()
    return (PaymentRequest.select(PaymentRequest, Agent, seconds.alias("seconds"))
            .join(Agent, on=(PaymentRequest.agent == Agent.id), join_type=JOIN.LEFT_OUTER)
            .where(PaymentRequest.status == RequestStatus.PAID, PaymentRequest.paid_at >= since,
                   PaymentRequest.seen_settled == False)  # noqa: E712
            .order_by(seconds.desc(), PaymentRequest.id).limit(limit))


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


def agent_stats(agent: Agent) -> AgentStats:
    counts = {s: 0 for s in RequestStatus.ALL}
    counts.update(request_counts(agent.id).get(agent.id, {}))
    ended = sum(counts[s] for s in ENDED)
    seconds = _seconds_to_pay()
    durations = [float(s) for (s,) in PaymentRequest.select(seconds).where(
        PaymentRequest.agent == agent.id, PaymentRequest.status == RequestStatus.PAID,
        PaymentRequest.paid_at.is_null(False), PaymentRequest.seen_settled == False).tuples()]  # noqa: E712
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


def duration(seconds: float | None) -> str:
    """A short human duration: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True)
class FeeLine:
    label: str  # the request's label (e.g. "Term 1 fees"); "" for unlabelled ones
    due_minor: int
    collected_minor: int
    overdue_minor: int  # balance of the ones past their due date


def fees_summary(currency: str, now: datetime | None = None, limit: int = 6) -> list[FeeLine]:
    """Collected vs due per label for requests with a due date (fees, invoices) in `currency`,
    newest labels first; cancelled and failed ones are left out."""
    now = now or utcnow()
    rows = (PaymentRequest.select(PaymentRequest.meta, PaymentRequest.amount_minor, PaymentRequest.paid_minor,
                                  PaymentRequest.due_at, PaymentRequest.status, PaymentRequest.id)
            .where(PaymentRequest.due_at.is_null(False), PaymentRequest.currency == currency,
                   PaymentRequest.status.not_in((RequestStatus.CANCELLED, RequestStatus.FAILED)))
            .order_by(PaymentRequest.id.desc()).limit(20_000))
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
