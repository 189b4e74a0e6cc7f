"""Retention (run-time options keep_*): old raw bodies and message texts are blanked, old idempotency
records and failed job records deleted; payments, requests and the audit log stay."""
from __future__ import annotations

from datetime import timedelta

from rq import Queue
from rq.registry import FailedJobRegistry

from webapp.domain import options, retention
from webapp.storage.models import (ApiKey, Event, IdempotencyRecord, Notification, NotificationStatus, Payment,
                                   utcnow)


def _payment(ref: str, age: timedelta) -> Payment:
    return Payment.create(source="mail", source_ref=ref, amount_minor=5000, currency="UGX",
                          received_at=utcnow() - age, raw=f"From: bank\n\nYou received UGX 5,000 ({ref})")


def test_old_bodies_and_texts_are_blanked_and_the_records_kept(ctx, make_request):
    options.update({"keep_mail_days": 30, "keep_message_days": 10, "keep_idempotency_hours": 24}, actor="test")
    old, new = _payment("old", timedelta(days=31)), _payment("new", timedelta(days=29))
    request = make_request()
    sent = Notification.create(kind="reminder", phone="+256772000001", body="Pay PW-1 please", status="sent",
                               context={"text": "x"}, dedupe_key="a", created_at=utcnow() - timedelta(days=11))
    waiting = Notification.create(kind="reminder", phone="+256772000002", body="Pay PW-2 please",
                                  status=NotificationStatus.PENDING, dedupe_key="b",
                                  created_at=utcnow() - timedelta(days=11))
    key = ApiKey.create(name="k", prefix="pw_x", hash="h")
    IdempotencyRecord.create(api_key=key, key="old", fingerprint="f", created_at=utcnow() - timedelta(hours=25))
    IdempotencyRecord.create(api_key=key, key="new", fingerprint="f", created_at=utcnow() - timedelta(hours=23))
    events = Event.select().count()

    done = retention.apply()
    assert done["payment_raw"] == 1 and done["message_texts"] == 1 and done["idempotency_records"] == 1
    assert Payment.get_by_id(old.id).raw == "" and Payment.get_by_id(old.id).amount_minor == 5000
    assert Payment.get_by_id(new.id).raw.startswith("From: bank")
    assert Notification.get_by_id(sent.id).body == "" and Notification.get_by_id(sent.id).context == {}
    assert Notification.get_by_id(waiting.id).body == "Pay PW-2 please"  # not ended: still needed
    assert [r.key for r in IdempotencyRecord.select()] == ["new"]
    assert Event.select().count() >= events and request.reference  # the audit log and requests stay
    assert retention.apply()["payment_raw"] == 0  # nothing twice


def test_the_retention_options_refuse_a_bad_value_by_name(ctx):
    import pytest

    with pytest.raises(options.OptionError, match="keep_idempotency_hours: must be between 24"):
        options.update({"keep_idempotency_hours": 2}, actor="test")


def test_failed_job_records_older_than_the_option_are_forgotten(app, redis_conn):
    from jobs.retention import forget_failed_jobs

    queue = Queue("slow", connection=redis_conn)
    job = queue.enqueue("jobs.schedule.heartbeat")
    registry = FailedJobRegistry("slow", connection=redis_conn)
    job.ended_at = utcnow() - timedelta(days=8)
    job.save()
    registry.add(job, ttl=-1)
    with app.app_context():
        assert forget_failed_jobs(utcnow() - timedelta(days=9)) == 0
        assert forget_failed_jobs(utcnow() - timedelta(days=7)) == 1
    assert registry.get_job_ids() == []
