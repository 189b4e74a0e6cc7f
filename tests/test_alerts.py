"""Operators' alerts: stored first, e-mailed over real SMTP (aiosmtpd) beside WhatsApp, once per
episode with the all-clear; the alerts sweep, failed messages, the daily summary, no-worker alerts."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.smtp_server import SmtpServer
from webapp.domain import alerts, options, sources
from webapp.plumbing import jobqueue
from webapp.storage import db
from webapp.storage.models import Alert, AlertMail, Notification, NotificationStatus

ADMIN_PHONE = "+256700000001"


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def environ(environ, smtp):
    return {**environ, "PAYWATCH_SMTP_URL": smtp.url, "PAYWATCH_MAIL_FROM": "paywatch@shop.example",
            "PAYWATCH_ALERT_EMAILS": "ops@shop.example, boss@shop.example"}


def _send_pending(app) -> list[str]:
    """Run the send job inline, as a worker would (it opens and closes its own connection)."""
    from jobs.alert_mail import send_alert_mail

    with app.app_context(), db.database.connection_context():
        ids = [m.id for m in AlertMail.select().where(AlertMail.status == "pending")]
    with app.app_context():
        return [send_alert_mail(mail_id) for mail_id in ids]


def test_an_alert_is_told_once_per_episode_by_mail_and_whatsapp_then_all_clear(ctx, smtp, run_worker):
    options.update({"admin_phones": ADMIN_PHONE}, actor="test")
    assert alerts.open_alert(alerts.SOURCE_STALE, "acme", "Source acme has had no good pass since never.")
    assert not alerts.open_alert(alerts.SOURCE_STALE, "acme", "again")  # same episode: told once
    run_worker(queues=("fast",))
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == "[Paywatch] source stale: acme"
    assert mail["From"] == "paywatch@shop.example"
    assert smtp.handler.envelopes[0][1] == ["ops@shop.example", "boss@shop.example"]
    assert "no good pass since never" in mail.get_content()
    whatsapp = Notification.select().where(Notification.phone == ADMIN_PHONE)
    assert [n.kind for n in whatsapp] == ["admin_alert"]

    assert alerts.clear_alert(alerts.SOURCE_STALE, "acme")
    assert not alerts.clear_alert(alerts.SOURCE_STALE, "acme")
    run_worker(queues=("fast",))
    assert [m["Subject"] for m in smtp.messages] == ["[Paywatch] source stale: acme",
                                                     "[Paywatch] all clear: source stale: acme"]
    assert Notification.select().where(Notification.phone == ADMIN_PHONE).count() == 2
    # A new episode is told again.
    assert alerts.open_alert(alerts.SOURCE_STALE, "acme", "stale again")
    assert Alert.select().where(Alert.kind == alerts.SOURCE_STALE).count() == 2
    assert AlertMail.select().where(AlertMail.status == "sent").count() == 2


def test_an_unknown_alert_kind_is_refused_by_name(ctx):
    with pytest.raises(alerts.AlertError, match="unknown alert kind 'whatever'"):
        alerts.open_alert("whatever", "x", "y")


def test_a_transient_smtp_answer_is_retried_and_a_permanent_one_recorded(app, domain, smtp):
    from jobs.alert_mail import MailError

    smtp.handler.answers = ["451 4.3.0 try again later"]
    domain(alerts.open_alert, alerts.NO_WORKER, "paywatch", "no worker")
    with pytest.raises(MailError, match="451"):
        _send_pending(app)
    row = domain(AlertMail.get)
    assert (row.status, row.attempts) == ("pending", 1) and "451" in row.last_error
    assert _send_pending(app) == ["sent"]
    assert len(smtp.messages) == 1

    smtp.handler.answers = ["550 5.1.1 mailbox unknown"]
    domain(alerts.clear_alert, alerts.NO_WORKER, "paywatch")
    assert _send_pending(app) == ["failed: SMTP 550: 5.1.1 mailbox unknown"]
    assert domain(AlertMail.get, AlertMail.status == "failed").last_error == "SMTP 550: 5.1.1 mailbox unknown"


def _check(app, now=None):
    """The alerts sweep job, inline as a worker runs it (its own connection)."""
    from jobs import watchdog

    with app.app_context():
        return watchdog.check(now)


def test_the_sweep_opens_and_clears_a_stale_source_and_resends_lost_mail(app, domain, smtp, redis_conn):
    from jobs import watchdog

    # No daily summary: from its time (20:00 in the zone) until midnight the sweep would queue one more mail.
    domain(options.update, {"daily_summary_at": ""}, actor="test")
    source, _ = domain(sources.save, {"kind": "gateway", "name": "iotec-main", "interval_s": 60, "config": {
        "provider": "iotec", "auth_url": "http://127.0.0.1:9/auth", "api_url": "http://127.0.0.1:9/api",
        "client_id_env": "X_ID", "client_secret_env": "X_SECRET", "wallet_id": "w"}}, actor="test")
    assert _check(app)["opened"] == ["source_stale:iotec-main"]
    assert _check(app)["opened"] == []
    domain(sources.record_pass, source.id, ok=True)
    assert _check(app)["cleared"] == ["source_stale:iotec-main"]
    # Redis lost the mail jobs: the sweep enqueues them again once they are overdue.
    redis_conn.flushdb()
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert domain(watchdog.resend_lost_mails, later) == 2
    assert jobqueue.queue("fast", redis_conn).count == 2


def test_a_message_failed_for_good_is_told_once(app, domain, smtp, make_request):
    request = make_request(customer_phone="+256700000099")
    row = domain(Notification.create, kind="payment_confirmed_customer", phone="+256700000099", request=request.id,
                 status=NotificationStatus.FAILED, last_error="not a WhatsApp number", dedupe_key="t:1")
    _check(app)
    _check(app)
    told = domain(lambda: [a.key for a in Alert.select().where(Alert.kind == alerts.MESSAGE_FAILED)])
    assert told == [f"notification:{row.id}"]
    mail = domain(AlertMail.get)
    assert mail.subject == f"[Paywatch] a message failed for good: notification:{row.id}"
    assert request.reference in mail.body and "not a WhatsApp number" in mail.body


def test_the_daily_summary_goes_once_a_day_at_its_time_in_the_zone(ctx, smtp):
    from webapp.domain import daily_summary

    options.update({"daily_summary_at": "20:00", "admin_phones": ADMIN_PHONE}, actor="test")
    # 16:59 UTC is 19:59 in Kampala (UTC+3): not yet; 17:00 UTC is 20:00 there.
    assert not daily_summary.send_if_due(datetime(2026, 3, 2, 16, 59, tzinfo=timezone.utc))
    assert daily_summary.send_if_due(datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc))
    assert not daily_summary.send_if_due(datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc))
    mail = AlertMail.get()
    assert mail.subject == "[Paywatch] daily summary 2026-03-02"
    for part in ("Collected by source:", "Collected by agent:", "Payments left unmatched today: 0",
                 "Requests in review now: 0", "WhatsApp messages failed today: 0"):
        assert part in mail.body
    assert Notification.select().where(Notification.kind == "admin_alert", Notification.phone == ADMIN_PHONE).count() == 1


def test_no_live_worker_is_reported_by_the_scheduler_process_which_mails_it_itself(app, smtp, redis_conn):
    from jobs import watchdog

    redis_conn.set("paywatch:down-since:no_worker", time.time() - watchdog.GRACE_S - 1)
    watchdog.watch_workers(app)  # no worker runs in this test
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"] == "[Paywatch] no live worker: paywatch"
    watchdog.watch_workers(app)
    assert len(smtp.messages) == 1


def test_without_smtp_settings_alerts_still_go_by_whatsapp(app, settings):
    from webapp import create_app
    from webapp.storage import db

    bare = create_app(settings.with_overrides(smtp_url=None, alert_emails=()))
    with bare.app_context(), db.database.connection_context():
        options.update({"admin_phones": ADMIN_PHONE}, actor="test")
        assert alerts.open_alert(alerts.SENDING_PAUSED, "whatsapp", "paused")
        assert AlertMail.select().count() == 0
        assert Notification.select().where(Notification.kind == "admin_alert").count() == 1
