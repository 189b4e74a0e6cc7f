"""Figures for /metrics beyond rows by status (what docs/monitoring's Grafana dashboard shows):
confirmed payments by source, time to paid over the last 24 h, seconds since each source's last good pass."""
from __future__ import annotations

import statistics
from datetime import timedelta

from peewee import fn

from webapp.storage.models import Payment, PaymentRequest, PaymentStatus, RequestStatus, Source, utcnow


def export(registry) -> None:
    """Add the gauges to a prometheus_client registry (read fresh from the database)."""
    from prometheus_client import Gauge

    now = utcnow()
    by_source = Gauge("paywatch_payments_by_source", "confirmed payments per source", ["source"], registry=registry)
    for source, count in (Payment.select(Payment.source, fn.COUNT(Payment.id))
                          .where(Payment.status == PaymentStatus.CONFIRMED).group_by(Payment.source).tuples()):
        by_source.labels(source=source).set(count)
    paid = Gauge("paywatch_time_to_paid_seconds", "paid_at - created_at of requests paid in the last 24 h",
                 ["quantile"], registry=registry)
    rows = (PaymentRequest.select(PaymentRequest.created_at, PaymentRequest.paid_at)
            .where(PaymentRequest.status == RequestStatus.PAID, PaymentRequest.paid_at >= now - timedelta(days=1))
            .limit(100000))
    seconds = sorted((r.paid_at - r.created_at).total_seconds() for r in rows)
    if seconds:
        paid.labels(quantile="0.5").set(statistics.median(seconds))
        paid.labels(quantile="0.9").set(seconds[min(len(seconds) - 1, int(len(seconds) * 0.9))])
    fresh = Gauge("paywatch_source_last_ok_age_seconds", "seconds since a source's last good pass", ["source"],
                  registry=registry)
    for source in Source.select(Source.name, Source.last_ok_at).where(Source.enabled == True):  # noqa: E712
        if source.last_ok_at is not None:
            fresh.labels(source=source.name).set((now - source.last_ok_at).total_seconds())
