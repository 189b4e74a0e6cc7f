"""The notifications pages: the outbox log (filters, retry, paused banner), templates, reminder rules, WhatsApp session."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain import message_texts, whatsapp_session
from webapp.plumbing import jobqueue
from webapp.storage.models import Agent, Event, Notification, NotificationStatus, Rule, Template, utcnow

UTC = timezone.utc


@pytest.fixture
def make_request(make_request):
    """The shared make_request, for a customer with a phone, open for a week."""

    def make(amount_minor=5000, now=None, **fields):
        fields.setdefault("customer_phone", "+256772000001")
        fields.setdefault("expires_in", timedelta(days=7))
        return make_request(amount_minor, now=now, **fields)

    return make


@pytest.fixture
def outbox(domain):
    """Insert an outbox row directly (the sender's outcomes are the test's data here)."""
    counter = iter(range(1, 10_000))

    def add(kind="admin_alert", phone="+256772111111", status=NotificationStatus.PENDING, **fields):
        return domain(Notification.create, kind=kind, phone=phone, status=status,
                      dedupe_key=f"test:{next(counter)}:{phone}", **fields)

    return add


def row_ids(response):
    return [int(i) for i in re.findall(r'<tr id="notification-(\d+)"', response.get_data(as_text=True))]


@pytest.fixture
def send(client, auth):
    """POST a form with a valid CSRF token."""

    def post(path, data=None, **kwargs):
        token = auth.csrf_token("/notifications/")
        return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)

    return post


# ---------------------------------------------------------------- log


def test_the_log_lists_newest_first_and_pages_by_keyset(client, login_as, outbox):
    login_as("viewer")
    ids = [outbox(phone=f"+25677200000{i}").id for i in range(5)]
    first = client.get("/notifications/?size=2")
    assert row_ids(first) == [ids[4], ids[3]]
    older = re.search(r'href="([^"]*after=[^"]*)"[^>]*>Older', first.get_data(as_text=True)).group(1)
    assert row_ids(client.get(older.replace("&amp;", "&"))) == [ids[2], ids[1]]


def test_the_log_filters_by_status_kind_phone_and_reference(client, login_as, outbox, make_request, domain):
    login_as("viewer")
    failed = outbox(status=NotificationStatus.FAILED, last_error="not on WhatsApp", phone="+256772999888")
    sent = outbox(kind="reminder", status=NotificationStatus.SENT, body="Hello Jane", ack=3)
    request = make_request(customer_phone="+256701234567")
    about_request = domain(lambda: [n.id for n in Notification.select().where(Notification.request == request.id)])
    assert about_request
    assert row_ids(client.get("/notifications/?status=failed")) == [failed.id]
    assert row_ids(client.get("/notifications/?kind=reminder")) == [sent.id]
    assert row_ids(client.get("/notifications/?phone=0772+999")) == [failed.id]
    assert set(row_ids(client.get(f"/notifications/?reference={request.reference.lower()}"))) == set(about_request)
    page = client.get("/notifications/?status=sent").get_data(as_text=True)
    assert "Hello Jane" in page and "read" in page


def test_the_log_filters_by_local_date_and_refuses_a_reversed_range(client, login_as, outbox):
    login_as("viewer")
    # 22:30 UTC on the 20th is 01:30 on the 21st in Kampala (UTC+3).
    late = outbox(created_at=datetime(2026, 11, 20, 22, 30, tzinfo=UTC))
    outbox(created_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    assert row_ids(client.get("/notifications/?from=2026-11-21&to=2026-11-21")) == [late.id]
    response = client.get("/notifications/?from=2026-11-21&to=2026-11-20")
    assert response.status_code == 400 and "before" in response.get_data(as_text=True)


def test_the_log_is_a_live_partial_for_htmx(client, login_as, outbox):
    login_as("viewer")
    outbox()
    response = client.get("/notifications/?status=pending", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="notifications-log"')
    assert 'hx-trigger="every 5s"' in body and "status=pending" in body


def test_staff_retry_a_failed_message(client, login_as, outbox, domain, send):
    user = login_as("staff")
    failed = outbox(status=NotificationStatus.FAILED, attempts=3, last_error="HTTP 500")
    assert f'id="retry-{failed.id}"' in client.get("/notifications/").get_data(as_text=True)
    waiting = domain(lambda: jobqueue.queue("fast").count)
    response = send(f"/notifications/{failed.id}/retry?status=failed")
    assert response.status_code == 302 and "status=failed" in response.location
    row = domain(Notification.get_by_id, failed.id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)
    assert domain(lambda: jobqueue.queue("fast").count) == waiting + 1
    event = domain(Event.get, Event.action == "notification.retried")
    assert (event.subject, event.actor) == (f"notification:{failed.id}", f"user:{user.id}")


def test_retry_is_refused_for_a_sent_message(client, login_as, outbox, domain, send):
    login_as("staff")
    sent = outbox(status=NotificationStatus.SENT, body="done")
    assert f'id="retry-{sent.id}"' not in client.get("/notifications/").get_data(as_text=True)
    response = send(f"/notifications/{sent.id}/retry")
    assert response.status_code == 409
    assert "not failed or cancelled" in response.get_data(as_text=True)
    assert domain(Notification.get_by_id, sent.id).status == "sent"
    # htmx swaps 2xx answers only: its refusal is the log again, with the flash out of band.
    swapped = send(f"/notifications/{sent.id}/retry", headers={"HX-Request": "true"})
    body = swapped.get_data(as_text=True)
    assert swapped.status_code == 200 and body.lstrip().startswith('<div id="notifications-log"')
    assert 'hx-swap-oob="true"' in body and "not failed or cancelled" in body


def test_viewers_cannot_retry(client, login_as, outbox, send):
    login_as("viewer")
    failed = outbox(status=NotificationStatus.FAILED)
    assert "retry-" not in client.get("/notifications/").get_data(as_text=True)
    assert send(f"/notifications/{failed.id}/retry").status_code == 403


def test_a_paused_sender_shows_a_banner_an_admin_resumes(client, login_as, domain, send):
    domain(whatsapp_session.pause, "wppconnect answered 401")
    login_as("admin")
    page = client.get("/notifications/").get_data(as_text=True)
    assert 'id="paused-banner"' in page and "wppconnect answered 401" in page and 'id="resume-sending"' in page
    response = send("/notifications/resume")
    assert response.status_code == 302
    assert domain(whatsapp_session.paused_reason) is None
    assert domain(Event.get, Event.action == "whatsapp.resumed").actor.startswith("user:")
    assert 'id="paused-banner"' not in client.get("/notifications/").get_data(as_text=True)


def test_staff_cannot_resume_sending(client, login_as, domain, send):
    domain(whatsapp_session.pause, "401")
    login_as("staff")
    assert 'id="resume-sending"' not in client.get("/notifications/").get_data(as_text=True)
    assert send("/notifications/resume").status_code == 403


# ---------------------------------------------------------------- templates


def test_every_kind_is_listed_with_its_text(client, login_as):
    login_as("viewer")
    page = client.get("/notifications/templates").get_data(as_text=True)
    for kind in message_texts.DEFAULTS:
        assert f'id="template-{kind}"' in page
    assert "switch-reminder" not in page  # viewers read


def test_staff_save_a_valid_template(client, login_as, domain, send):
    login_as("staff")
    page = client.get("/notifications/templates/reminder").get_data(as_text=True)
    assert "customer_name" in page and "the customer&#39;s name" in page and 'id="preview-text"' in page
    response = send("/notifications/templates/reminder",
                    {"body": "Hi {{ customer_name }}, pay {{ amount }}", "enabled": "1"})
    assert response.status_code == 302
    assert domain(message_texts.current, "reminder") == ("Hi {{ customer_name }}, pay {{ amount }}", True)


def test_an_unknown_variable_is_refused_by_name_and_nothing_is_saved(client, login_as, domain, send):
    login_as("staff")
    response = send("/notifications/templates/reminder",
                    {"body": "Hi {{ custmer_name }}", "enabled": "1"})
    assert response.status_code == 400
    assert "unknown variable: custmer_name" in response.get_data(as_text=True)
    assert domain(lambda: Template.select().count()) == 0


def test_a_syntax_error_is_refused(client, login_as, domain, send):
    login_as("staff")
    response = send("/notifications/templates/reminder", {"body": "Hi {{ amount ", "enabled": "1"})
    assert response.status_code == 400 and "line 1" in response.get_data(as_text=True)
    assert domain(lambda: Template.select().count()) == 0


def test_staff_switch_a_kind_off_keeping_its_text(client, login_as, domain, send):
    login_as("staff")
    response = send("/notifications/templates/reminder/switch", {"enabled": "0"})
    assert response.status_code == 302
    assert domain(message_texts.current, "reminder") == (message_texts.DEFAULTS["reminder"], False)
    assert 'data-enabled="no"' in client.get("/notifications/templates").get_data(as_text=True)


def test_viewers_cannot_save_templates(client, login_as, send):
    login_as("viewer")
    assert send("/notifications/templates/reminder", {"body": "x"}).status_code == 403


def test_the_preview_renders_sample_data_and_shows_errors(client, login_as, send):
    login_as("staff")
    ok = send("/notifications/templates/preview",
              {"body": "Pay {{ amount }} for {{ reference }}"}, headers={"HX-Request": "true"})
    assert ok.status_code == 200
    assert f"Pay {message_texts.SAMPLE['amount']} for {message_texts.SAMPLE['reference']}" in ok.get_data(as_text=True)
    bad = send("/notifications/templates/preview", {"template": "{{ nope }}"},
               headers={"HX-Request": "true"})
    assert bad.status_code == 200 and 'id="preview-error"' in bad.get_data(as_text=True)
    assert "unknown variable: nope" in bad.get_data(as_text=True)


# ---------------------------------------------------------------- reminder rules


RULE = {"name": "Two days", "cron": "0 9 * * *", "min_pending": "2", "min_pending_unit": "days", "amount_min": "",
        "amount_max": "", "currency": "", "agent_code": "", "template": "Reminder: {{ reference }} {{ amount }}",
        "enabled": "1"}


@pytest.mark.parametrize("change, field", [
    ({"name": " "}, "name"), ({"cron": "every day"}, "cron"), ({"amount_min": "12.5.0"}, "amount_min"),
    ({"min_pending": "two"}, "min_pending"), ({"template": "{{ whoever }}"}, "template"),
    ({"agent_code": "NOPE"}, "agent_code"),
])
def test_a_rule_with_a_bad_field_is_refused_naming_it(client, login_as, domain, change, field, send):
    login_as("staff")
    response = send("/notifications/rules", {**RULE, **change})
    assert response.status_code == 400
    assert f"<strong>{field}</strong>" in response.get_data(as_text=True)
    assert domain(lambda: Rule.select().count()) == 0


def test_staff_create_a_rule_and_see_its_next_run(client, login_as, domain, send):
    login_as("staff")
    response = send("/notifications/rules", {**RULE, "amount_max": "60000"})
    assert response.status_code == 302
    rule = domain(Rule.get)
    assert rule.filter == {"min_pending_minutes": 2880, "amount_max": "60000"}
    page = client.get("/notifications/rules").get_data(as_text=True)
    assert "pending ≥ 2 days" in page and "UGX 0–60000" in page
    # 09:00 in Kampala is 06:00 UTC: the next run shown is a local 09:00.
    assert re.search(r'class="nowrap next-run">\d{4}-\d\d-\d\d 09:00<', page)


def test_the_dry_run_lists_the_pending_requests_that_match(client, login_as, domain, make_request, send):
    login_as("staff")
    agent = domain(Agent.create, name="Amina", phone="+256700000001", code="AG7")
    old = make_request(50000, now=utcnow() - timedelta(days=3), agent_id=agent.id, customer_phone="+256772000010")
    make_request(50000, now=utcnow() - timedelta(hours=2), agent_id=agent.id, customer_phone="+256772000011")  # too new
    make_request(90000, now=utcnow() - timedelta(days=3), agent_id=agent.id, customer_phone="+256772000012")  # too much
    make_request(40000, now=utcnow() - timedelta(days=3), customer_phone="+256772000013")  # other agent
    send("/notifications/rules", {**RULE, "amount_max": "60000", "agent_code": "AG7"})
    rule = domain(Rule.get)
    page = client.get(f"/notifications/rules/{rule.id}/dry-run").get_data(as_text=True)
    assert re.findall(r'<tr id="planned-([^"]+)"', page) == [old.reference]
    assert f"Reminder: {old.reference} UGX 50,000" in page and "+256772000010" in page
    # The unsaved form's values (here without the agent filter) run the same way, nothing saved.
    unsaved = send("/notifications/rules/dry-run", {**RULE, "amount_max": "60000"},
                   headers={"HX-Request": "true"})
    assert unsaved.status_code == 200 and len(re.findall(r'<tr id="planned-', unsaved.get_data(as_text=True))) == 2
    assert domain(lambda: Rule.select().count()) == 1
    error = send("/notifications/rules/dry-run", {**RULE, "cron": "soon"})
    assert error.status_code == 400 and "cron" in error.get_data(as_text=True)


def test_staff_disable_and_delete_a_rule(client, login_as, domain, send):
    login_as("staff")
    send("/notifications/rules", RULE)
    rule = domain(Rule.get)
    assert send(f"/notifications/rules/{rule.id}/switch", {"enabled": "0"}).status_code == 302
    assert domain(Rule.get_by_id, rule.id).enabled is False
    assert send(f"/notifications/rules/{rule.id}/delete").status_code == 302
    assert domain(lambda: Rule.select().count()) == 0
    assert domain(Event.get, Event.action == "rule.deleted").subject == f"rule:{rule.id}"


# ---------------------------------------------------------------- WhatsApp session


QR = "data:image/png;base64,iVBORw0KGgo="


def test_the_session_page_shows_state_and_the_qr_while_pairing(client, login_as, domain):
    domain(whatsapp_session.update, session="QRCODE", qrcode=QR, checked_at=utcnow().isoformat(), last_error=None)
    login_as("viewer")
    page = client.get("/notifications/whatsapp").get_data(as_text=True)
    assert 'id="session-status">QRCODE<' in page and f'src="{QR}"' in page
    assert "session-start" not in page  # admins only
    partial = client.get("/notifications/whatsapp/state", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert partial.lstrip().startswith('<section id="whatsapp-session"') and 'hx-trigger="every 3s"' in partial


def test_a_qr_that_is_not_a_data_image_is_not_shown(client, login_as, domain):
    domain(whatsapp_session.update, session="QRCODE", qrcode="javascript:alert(1)")
    login_as("viewer")
    assert "id=\"session-qrcode\"" not in client.get("/notifications/whatsapp").get_data(as_text=True)


def test_an_admin_starts_the_session_through_a_job(client, login_as, domain, send):
    login_as("admin")
    waiting = domain(lambda: jobqueue.queue("fast").count)
    response = send("/notifications/whatsapp/start", follow_redirects=True)
    assert response.status_code == 200 and "Asked the WhatsApp server to start" in response.get_data(as_text=True)
    jobs = domain(lambda: jobqueue.queue("fast").get_jobs())
    assert domain(lambda: jobqueue.queue("fast").count) == waiting + 1
    assert [(j.func_name, j.args) for j in jobs if j.description == "whatsapp_session"] == [
        ("jobs.watchdog.session_action", ("start",))]


def test_staff_cannot_act_on_the_session(client, login_as, send):
    login_as("staff")
    assert send("/notifications/whatsapp/start").status_code == 403


def test_viewers_cannot_act_on_the_session(client, login_as, send):
    login_as("viewer")
    assert send("/notifications/whatsapp/check").status_code == 403
