"""What /metrics tells Prometheus, read from the database and Redis at scrape time.

Nothing is counted in a web process's memory: every series comes from rows (payments,
notifications, audit events, webhook deliveries, sources) or from Redis (queue depth, the
job durations the workers record through webapp.plumbing.jobstats), so any number of web
and worker processes give one consistent answer, and a restart loses nothing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

from peewee import SqliteDatabase, fn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from webapp.domain.health import health
from webapp.plumbing import jobqueue, jobstats
from webapp.storage.db import database
from webapp.storage.models import (
    Event,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
    Source,
    WebhookDelivery,
    utcnow,
)

# Money received → request paid, in seconds (a minute … a day).
PAID_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0)
# Audit actions that record a match decision, and the kind each one is.
DECISIONS = {"payment.confirmed": "confirmed", "payment.review": "review", "payment.unmatched": "unmatched",
             "payment.rejected": "rejected"}
CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition() -> bytes:
    """The Prometheus text of every series, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PaywatchCollector())
    return generate_latest(registry)


class PaywatchCollector(Collector):
    def collect(self) -> Iterator:
        yield from rows_by_status()
        yield payments_seen()
        yield match_decisions()
        yield paid_latency()
        yield whatsapp_sends()
        yield webhook_deliveries()
        yield source_contact()
        yield from queues_and_health()
        yield from job_durations()


def rows_by_status() -> Iterator[GaugeMetricFamily]:
    for model, name in ((PaymentRequest, "requests"), (Payment, "payments"), (Notification, "notifications")):
        gauge = GaugeMetricFamily(f"paywatch_{name}", f"{name} by status", labels=["status"])
        for status, count in model.select(model.status, fn.COUNT(model.id)).group_by(model.status).tuples():
            gauge.add_metric([status], count)
        yield gauge


def payments_seen() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("paywatch_payments_seen", "payments seen, by source and outcome (status now)",
                              labels=["source", "outcome"])
    query = (Payment.select(Payment.source, Payment.status, fn.COUNT(Payment.id))
             .group_by(Payment.source, Payment.status).tuples())
    for source, status, count in query:
        gauge.add_metric([source, status], count)
    return gauge


def match_decisions() -> CounterMetricFamily:
    counter = CounterMetricFamily("paywatch_match_decisions", "match decisions by kind (from the audit log)",
                                  labels=["kind"])
    counts = dict(Event.select(Event.action, fn.COUNT(Event.id)).where(Event.action.in_(list(DECISIONS)))
                  .group_by(Event.action).tuples())
    for action, kind in DECISIONS.items():
        counter.add_metric([kind], counts.get(action, 0))
    return counter


def _seconds_between(later: str, earlier: str) -> str:
    """SQL for `later - earlier` in seconds, in this database's dialect."""
    if isinstance(database.obj, SqliteDatabase):
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


def paid_latency() -> HistogramMetricFamily:
    """Time from money received (the payment's received_at) to the request paid (its paid_at)."""
    delta = _seconds_between('r."paid_at"', 'p."received_at"')
    buckets = ", ".join(f"SUM(CASE WHEN {delta} <= {bound} THEN 1 ELSE 0 END)" for bound in PAID_BUCKETS)
    sql = (f'SELECT COUNT(*), COALESCE(SUM({delta}), 0), {buckets} FROM "payment" p '
           f'JOIN "payment_request" r ON r."id" = p."request_id" '
           f'WHERE p."status" = {database.obj.param} AND r."paid_at" IS NOT NULL')
    row = database.execute_sql(sql, [PaymentStatus.CONFIRMED]).fetchone()
    count, total = int(row[0] or 0), float(row[1] or 0)
    cumulative = [(str(bound), int(n or 0)) for bound, n in zip(PAID_BUCKETS, row[2:])]
    histogram = HistogramMetricFamily("paywatch_money_to_paid_seconds",
                                      "seconds from money received to its request paid")
    histogram.add_metric([], [*cumulative, ("+Inf", count)], total)
    return histogram


def whatsapp_sends() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("paywatch_whatsapp_messages", "WhatsApp messages by kind and outcome (status now)",
                              labels=["kind", "outcome"])
    query = (Notification.select(Notification.kind, Notification.status, fn.COUNT(Notification.id))
             .group_by(Notification.kind, Notification.status).tuples())
    for kind, status, count in query:
        gauge.add_metric([kind, status], count)
    return gauge


def webhook_deliveries() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("paywatch_webhook_deliveries", "webhook deliveries by outcome (status now)",
                              labels=["outcome"])
    query = (WebhookDelivery.select(WebhookDelivery.status, fn.COUNT(WebhookDelivery.id))
             .group_by(WebhookDelivery.status).tuples())
    for status, count in query:
        gauge.add_metric([status], count)
    return gauge


def _when(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def source_contact(now: datetime | None = None) -> GaugeMetricFamily:
    """Seconds since each source last answered (its last contact, else its last good pass)."""
    now = now or utcnow()
    gauge = GaugeMetricFamily("paywatch_source_last_contact_age_seconds",
                              "seconds since each source last answered", labels=["source", "kind"])
    for source in Source.select().order_by(Source.name):
        at = _when((source.state or {}).get("last_contact_at")) or source.last_ok_at
        if at is not None:
            gauge.add_metric([source.name, source.kind], max(0.0, (now - at).total_seconds()))
    return gauge


def queues_and_health() -> Iterator[GaugeMetricFamily]:
    healthy = GaugeMetricFamily("paywatch_up", "1 when the part answers", labels=["part"])
    checks, _ = health()
    for part, check in checks.items():
        healthy.add_metric([part], 1 if check.get("ok") else 0)
    yield healthy
    queued = GaugeMetricFamily("paywatch_queue_jobs", "jobs waiting per RQ queue", labels=["queue"])
    try:
        for name in jobqueue.QUEUES:
            queued.add_metric([name], jobqueue.queue(name).count)
    except RedisError:
        pass  # paywatch_up{part="redis"} says why
    yield queued


def job_durations() -> Iterator:
    histogram = HistogramMetricFamily("paywatch_job_duration_seconds", "how long jobs ran, by job", labels=["job"])
    runs = CounterMetricFamily("paywatch_job_runs", "job runs by job and outcome", labels=["job", "outcome"])
    try:
        stats = jobstats.read(jobqueue.redis_connection())
    except RedisError:
        stats = {}
    for name, stat in stats.items():
        buckets = [(str(bound), n) for bound, n in stat["buckets"]]
        histogram.add_metric([name], [*buckets, ("+Inf", stat["count"])], stat["sum"])
        for outcome, n in sorted(stat["outcomes"].items()):
            runs.add_metric([name, outcome], n)
    yield histogram
    yield runs
