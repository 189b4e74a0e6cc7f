"""The picture tally behind the dashboard's charts (migration 0095): after every kind of write
(creates, status changes, re-links, a request changing agent, an agent deleted, deletes) and after
folding, each chart's figures equal what counting the rows themselves says — per local day of a zone
whose offset is not whole hours and that leaves DST inside the window, at the window's very edges."""
import random
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from webapp.domain import reports, tallies
from webapp.storage import db
from webapp.storage.models import UTC, Agent, Event, Notification, Payment, PaymentRequest, PictureTally

ADELAIDE = ZoneInfo("Australia/Adelaide")  # +10:30 until 5 April 2026 03:00, then +09:30
NOW = datetime(2026, 4, 12, 2, 0, tzinfo=UTC)


@pytest.fixture
def environ(environ):
    return {**environ, "PAYWATCH_TIMEZONE": "Australia/Adelaide"}


def counted() -> dict:
    """Every chart's figures computed from the rows themselves, in the reports' shapes."""
    span, start, end = reports.window(now=NOW)
    inside = lambda moment: moment is not None and start <= moment < end  # noqa: E731
    day = lambda moment: moment.astimezone(ADELAIDE).date()  # noqa: E731
    buckets, collected = defaultdict(int), defaultdict(lambda: dict.fromkeys(span, 0))
    for r in PaymentRequest.select().where(PaymentRequest.status == "paid"):
        if inside(r.paid_at):
            collected[r.currency][day(r.paid_at)] += r.amount_minor
        if inside(r.paid_at) and not r.seen_settled:
            seconds = (r.paid_at - r.created_at).total_seconds()
            buckets[next(i for i, (limit, _) in enumerate(reports.TIME_TO_PAY_BUCKETS) if limit is None or seconds < limit)] += 1
    by_source, by_agent = defaultdict(int), defaultdict(int)
    for p in Payment.select().where(Payment.status == "confirmed", Payment.currency == "UGX"):
        if inside(p.received_at):
            by_source[p.source] += p.amount_minor
            if p.request_id:
                agent = PaymentRequest.get_by_id(p.request_id).agent
                by_agent[agent.code if agent else "no agent"] += p.amount_minor
    trend = {d: [0, 0] for d in span}
    for e in Event.select():
        if inside(e.at) and e.action in ("payment.unmatched", "payment.review"):
            trend[day(e.at)][e.action == "payment.review"] += 1
    outcomes = {d: [0, 0, 0] for d in span}
    for n in Notification.select():
        if n.status == "sent" and inside(n.sent_at):
            outcomes[day(n.sent_at)][1 if (n.ack or 0) >= 2 else 0] += 1
        if n.status == "failed" and inside(n.due_at):
            outcomes[day(n.due_at)][2] += 1
    ordered = lambda sums: sorted(sums.items(), key=lambda row: (-row[1], row[0]))  # noqa: E731
    return {
        "time_to_pay": [(label, buckets[i]) for i, (_, label) in enumerate(reports.TIME_TO_PAY_BUCKETS)],
        "source": ordered(by_source), "agent": ordered({k: v for k, v in by_agent.items() if v}),
        "review": [(d, *trend[d]) for d in span], "whatsapp": [(d, *outcomes[d]) for d in span],
        "collected": {currency: list(per_day.items()) for currency, per_day in sorted(collected.items())},
    }


def read() -> dict:
    return {"time_to_pay": reports.time_to_pay_histogram(now=NOW),
            "source": reports.collections_by("source", "UGX", now=NOW, limit=99),
            "agent": reports.collections_by("agent", "UGX", now=NOW, limit=99),
            "review": reports.review_trend(now=NOW), "whatsapp": reports.whatsapp_outcomes(now=NOW),
            "collected": reports.collected_per_day(reports.PICTURE_DAYS, now=NOW)}


def moments(rng: random.Random) -> list[datetime]:
    """Instants around the window's edges, local and UTC midnights, the DST change, and anywhere."""
    _, start, end = reports.window(now=NOW)
    edges = [start, end, datetime(2026, 4, 5, 3, tzinfo=ADELAIDE), datetime(2026, 3, 20, tzinfo=UTC),
             datetime(2026, 4, 4, tzinfo=ADELAIDE), datetime(2026, 4, 6, tzinfo=ADELAIDE), NOW]
    found = [edge + timedelta(seconds=s) for edge in edges for s in (-60, -1, 0, 1, 60, 899, 900)]
    return found + [start + timedelta(seconds=rng.randrange(int((end - start).total_seconds()))) for _ in range(40)]


def test_the_charts_equal_a_count_of_the_rows_after_every_kind_of_write(domain):
    rng = random.Random(19)

    def scenario():
        at = moments(rng)
        with db.transaction():
            agents = [Agent.create(name=f"A{i}", code=f"AG{i}") for i in range(3)]
            requests = []
            for i, moment in enumerate(at):
                took = timedelta(seconds=rng.choice((30, 59, 60, 299, 4000, 90000, 700000)))
                requests.append(PaymentRequest.create(
                    reference=f"PW-T{i}", amount_minor=1000 + i, requested_minor=1000 + i,
                    currency=rng.choice(("UGX", "UGX", "USD")),
                    agent=rng.choice(agents + [None]), status=rng.choice(("paid", "paid", "pending", "expired")),
                    created_at=moment - took, expires_at=moment + timedelta(days=1), paid_at=moment,
                    seen_settled=i % 9 == 0))
            payments = [Payment.create(source=rng.choice(("portal", "mailbox")), source_ref=f"p{i}", amount_minor=100 * (i + 1),
                                       currency=rng.choice(("UGX", "UGX", "USD")), received_at=moment,
                                       status=rng.choice(("confirmed", "confirmed", "unmatched", "review")),
                                       request=rng.choice(requests + [None]))
                        for i, moment in enumerate(at)]
            for i, moment in enumerate(at):
                Event.create(at=moment, actor="system", action=rng.choice(("payment.unmatched", "payment.review",
                                                                           "payment.confirmed")), subject=f"payment:{i}")
                Notification.create(kind="reminder", phone="+256700000001", status=rng.choice(("sent", "failed", "pending")),
                                    ack=rng.choice((None, 1, 2, 3)), sent_at=moment, due_at=moment - timedelta(minutes=1),
                                    dedupe_key=f"n{i}")
        assert read() == counted()
        with db.transaction():
            for p in payments[::3]:  # confirmed, unmatched, moved to another request, amount corrected
                Payment.update(status=rng.choice(("confirmed", "rejected")), request=rng.choice(requests),
                               amount_minor=p.amount_minor + 7).where(Payment.id == p.id).execute()
            for r in requests[::4]:  # paid later, reassigned, marked seen settled
                PaymentRequest.update(status="paid", paid_at=r.paid_at + timedelta(minutes=20), agent=rng.choice(agents),
                                      seen_settled=not r.seen_settled).where(PaymentRequest.id == r.id).execute()
            for r in requests[1::5]:  # amount or currency corrected, paid ones too; some no longer paid
                PaymentRequest.update(amount_minor=r.amount_minor + 3, currency=rng.choice(("UGX", "USD")),
                                      status=rng.choice(("paid", "cancelled", r.status))
                                      ).where(PaymentRequest.id == r.id).execute()
            Notification.update(ack=4).where(Notification.ack == 1).execute()
            Notification.update(status="failed").where(Notification.status == "pending").execute()
            Event.delete().where(Event.id.in_([e.id for e in Event.select(Event.id)][::5])).execute()
            Payment.delete().where(Payment.id.in_([p.id for p in payments[::7]])).execute()
        assert read() == counted()
        with db.transaction():
            Agent.delete().where(Agent.id == agents[0].id).execute()  # its requests lose their agent (SET NULL)
        assert read() == counted()
        rows = PictureTally.select().count()
        for figure in ("paid", "source", "agent", "review", "whatsapp", "collected"):
            tallies.fold("picture_tally", ("figure", "slot", "key", "currency"), ("n", "amount"),
                          f"figure IN ('{figure}', '{figure}/day')")
        assert PictureTally.select().count() < rows
        assert read() == counted()

    domain(scenario)


def test_a_read_folds_the_tally_when_its_rows_pile_up(domain):
    def scenario():
        start = reports.window(now=NOW)[1]
        with db.transaction():
            for i in range(3000):  # one slot, one key: 3,000 appended rows, then 3,000 more by updates
                Event.create(at=start + timedelta(minutes=1), actor="system", action="payment.review", subject=f"p:{i}")
            Event.update(at=start + timedelta(minutes=2)).execute()
        assert PictureTally.select().where(PictureTally.figure == "review").count() >= 9000
        trend = reports.review_trend(now=NOW)
        assert trend[0][2] == 3000 and sum(r for _, _, r in trend) == 3000
        assert PictureTally.select().where(PictureTally.figure == "review").count() == 1  # folded for the next read
        assert reports.review_trend(now=NOW) == trend

    domain(scenario)


def test_the_migration_counts_the_rows_already_there(domain):
    """Migrations 0095's and 0103's backfills (rows written before the triggers existed) give the same figures."""
    import importlib.util

    from peewee import PostgresqlDatabase

    def load(name):
        spec = importlib.util.spec_from_file_location(f"migration_{name}", db.MIGRATIONS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    migration, collected = load("0095_picture_tally"), load("0103_collected_tally")
    rng = random.Random(7)

    def scenario():
        at = moments(rng)
        with db.transaction():
            agent = Agent.create(name="A", code="AG1")
            for i, moment in enumerate(at):
                request = PaymentRequest.create(
                    reference=f"PW-B{i}", amount_minor=1000 + i, requested_minor=1000 + i,
                    currency=("UGX", "USD")[i % 3 == 0],
                    agent=agent if i % 2 else None, status="paid", created_at=moment - timedelta(seconds=30 * i),
                    expires_at=moment + timedelta(days=1), paid_at=moment)
                Payment.create(source="portal", source_ref=f"b{i}", amount_minor=100 + i, currency="UGX",
                               received_at=moment, status="confirmed", request=request)
                Event.create(at=moment, actor="system", action="payment.unmatched", subject=f"payment:{i}")
                Notification.create(kind="reminder", phone="+256700000001", status="sent", ack=i % 4, sent_at=moment,
                                    dedupe_key=f"b{i}")
        expected = counted()
        assert read() == expected
        pg = isinstance(db.database.obj, PostgresqlDatabase)
        with db.transaction():
            PictureTally.delete().execute()
            for table in migration.WATCHED:
                for statement in migration.backfill(table, pg):
                    db.database.execute_sql(statement)
            db.database.execute_sql(collected.backfill(pg))
        assert read() == expected and sum(expected["time_to_pay"][i][1] for i in range(10)) > 0
        assert set(expected["collected"]) == {"UGX", "USD"}

    domain(scenario)
