"""The sources page: a card per source (state, last contact, progress, alarms in red, settings), run a pass
now, enable / disable (admins, audited)."""
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from rq.job import Job

from webapp.domain import sources
from webapp.plumbing import jobqueue
from webapp.storage.models import Event, Source, utcnow
from webapp.web.sources import ago, settings_rows

HTMX = {"HX-Request": "true"}
GATEWAY = {"kind": "gateway", "name": "iotec", "interval_s": 60, "config": {
    "provider": "iotec", "auth_url": "http://x/auth", "api_url": "http://x/api",
    "client_id_env": "IOTEC_ID", "client_secret_env": "IOTEC_SECRET"}}
WEBHOOK = {"kind": "webhook", "name": "hooks", "config": {}}
MAILBOX = {"kind": "mailbox", "name": "shop-mail", "config": {
    "host": "127.0.0.1", "username_env": "SHOP_IMAP_USER", "password_env": "SHOP_IMAP_PASSWORD"}}


@pytest.fixture
def gateway(domain):
    return domain(sources.save, GATEWAY, actor="test")[0]


def row(html, name):
    return html.split(f'<article id="source-{name}"')[1].split("</article>")[0]


def test_each_source_is_a_card_with_its_state_contact_progress_and_alarms_in_red(client, login_as, domain, gateway):
    webhook = domain(sources.save, WEBHOOK, actor="test")[0]
    contacted = utcnow() - timedelta(minutes=3, seconds=5)  # one instant: two would straddle a minute now and then
    domain(sources.record_pass, gateway.id, ok=True, last_contact_at=contacted,
           progress={"pages": 3}, counts={"not_money": 12})
    domain(sources.raise_alarm, webhook.id, "login_failed", "the portal refused the password")
    login_as("viewer")
    html = client.get("/sources/").get_data(as_text=True)
    ok, alarm = row(html, "iotec"), row(html, "hooks")
    assert 'data-health="ok"' in ok and 'class="source-card health-ok"' in ok
    # Last contact in words and in the configured zone (Africa/Kampala is UTC+3), never a raw key=value dump.
    assert "Last contact <strong>3 min ago</strong>" in ok
    contact = contacted.astimezone(ZoneInfo("Africa/Kampala"))
    assert contact.strftime("%Y-%m-%d %H:%M") in ok and "times are in Africa/Kampala" in html
    assert "Last pass: pages</dt><dd>3</dd>" in ok and "<strong>12</strong> not money" in ok and "=" not in text(ok)
    assert 'data-health="alarm"' in alarm and 'class="source-card health-alarm"' in alarm
    assert 'data-alarm="login_failed"' in alarm and "the portal refused the password" in alarm
    assert 'class="badge health alarm"' in alarm
    # The settings, readable: where each secret is read from, not a secret.
    assert "<dt>Client ID</dt><dd>read from the environment variable IOTEC_ID</dd>" in ok
    assert "<dt>Auth URL</dt><dd>http://x/auth</dd>" in ok
    # Viewers see no buttons; the cards poll themselves.
    assert "Run now" not in html and "Disable" not in html
    partial = client.get("/sources/", headers=HTMX).get_data(as_text=True)
    assert partial.startswith('<div class="source-cards" id="source-cards"') and 'hx-trigger="every 10s"' in partial


def test_a_mailbox_catching_up_shows_a_progress_bar_and_a_silent_one_says_so(client, login_as, domain):
    mailbox = domain(sources.save, MAILBOX, actor="test")[0]
    domain(sources.record_pass, mailbox.id, ok=True, last_contact_at=utcnow(),
           progress={"running": True, "done": 640, "total": 1500, "started_at": utcnow().isoformat()})
    login_as("viewer")
    card = row(client.get("/sources/").get_data(as_text=True), "shop-mail")
    assert "Catching up: 640 of 1500 mails read (42%)" in card and '<progress value="640" max="1500">' in card
    domain(sources.record_pass, mailbox.id, ok=True, progress={"running": False, "done": 1500, "total": 1500,
                                                               "finished_at": utcnow().isoformat()})
    domain(sources.raise_alarm, mailbox.id, "silent", "no contact since it was added")
    card = row(client.get("/sources/").get_data(as_text=True), "shop-mail")
    assert "Last catch-up: 1500 of 1500 mails read, finished just now" in card
    assert 'data-health="silent"' in card and 'data-alarm="silent"' in card


def text(card):
    """What a card says, tags left out (`card` is what row() returns: it starts inside the <article> tag)."""
    return re.sub(r"<[^>]+>", " ", "<article" + card)


@pytest.mark.parametrize("seconds, words", [(0, "just now"), (-5, "just now"), (45, "45 s ago"), (180, "3 min ago"),
                                            (3600, "1 h ago"), (3900, "1 h 5 min ago"), (86400 * 3, "3 d ago")])
def test_ago_says_how_long_ago_in_words(seconds, words):
    now = utcnow()
    assert ago(now - timedelta(seconds=seconds), now) == words
    assert ago(None, now) == "never"


def test_settings_read_as_lines_with_nested_parts_and_environment_variables():
    rows = settings_rows({"host": "imap.example", "ssl": True, "senders": ["a@x", "b@y"], "password_env": "PW",
                          "login": {"url": "/login", "fields": {"username": "email"}}})
    assert rows == [("Host", "imap.example"), ("SSL", "yes"), ("Senders", "a@x, b@y"),
                    ("Password", "read from the environment variable PW"), ("Login › URL", "/login"),
                    ("Login › Fields › Username", "email")]


def test_run_now_enqueues_the_kinds_pass_job_when_it_exists(client, login_as, auth, domain, gateway, redis_conn):
    login_as("admin")
    token = {"X-CSRFToken": auth.csrf_token("/sources/")}
    spec = jobqueue.JOBS[sources.PASS_JOBS["gateway"]]
    assert 'id="run-iotec"' in client.get("/sources/").get_data(as_text=True)
    response = client.post(f"/sources/{gateway.id}/run", headers=token)
    assert response.status_code == 302
    job_id = re.search(r"A pass of iotec is queued \(([\w-]+)\)", client.get("/sources/").get_data(as_text=True)).group(1)
    # Read by id: a worker of a test running alongside on the same Redis may already have taken it.
    job = Job.fetch(job_id, connection=redis_conn)
    assert (job.func_name, job.args, job.origin) == (spec.func, (gateway.id,), spec.queue)


def test_run_now_is_refused_when_the_kind_has_no_job(client, login_as, auth, domain, redis_conn):
    webhook = domain(sources.save, WEBHOOK, actor="test")[0]
    login_as("admin")
    assert 'id="run-hooks"' not in client.get("/sources/").get_data(as_text=True)
    response = client.post(f"/sources/{webhook.id}/run", headers={"X-CSRFToken": auth.csrf_token("/sources/")})
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "webhook sources cannot be run in this version" in body and "is queued" not in body


def test_admins_disable_and_enable_a_source_and_it_is_audited(client, login_as, auth, domain, gateway, redis_conn):
    admin = login_as("admin")
    token = {"X-CSRFToken": auth.csrf_token("/sources/")}
    assert client.post(f"/sources/{gateway.id}/enabled/0", headers=token).status_code == 302
    assert domain(lambda: Source.get_by_id(gateway.id).enabled) is False
    html = client.get("/sources/").get_data(as_text=True)
    assert 'data-health="disabled"' in row(html, "iotec") and "Source iotec disabled." in html
    client.post(f"/sources/{gateway.id}/enabled/0", headers=token)  # already disabled: nothing new
    client.post(f"/sources/{gateway.id}/enabled/1", headers=token)
    assert domain(lambda: Source.get_by_id(gateway.id).enabled) is True
    audited = domain(lambda: [(e.action, e.subject, e.actor) for e in Event.select().where(
        Event.action.in_(("source.enabled", "source.disabled"))).order_by(Event.id)])
    assert audited == [("source.disabled", "source:iotec", f"user:{admin.id}"),
                       ("source.enabled", "source:iotec", f"user:{admin.id}")]


@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_only_admins_run_or_switch_sources(client, login_as, auth, domain, gateway, role, redis_conn):
    login_as(role)
    token = {"X-CSRFToken": auth.csrf_token("/sources/")}
    assert client.post(f"/sources/{gateway.id}/run", headers=token).status_code == 403
    assert client.post(f"/sources/{gateway.id}/enabled/0", headers=token).status_code == 403
    assert domain(lambda: Source.get_by_id(gateway.id).enabled) is True
    assert re.search(r"Run now|Disable", client.get("/sources/").get_data(as_text=True)) is None


def test_run_now_says_so_when_the_job_queue_is_down(client, login_as, auth, gateway, redis_control):
    login_as("admin")
    token = {"X-CSRFToken": auth.csrf_token("/sources/")}
    redis_control.stop()
    response = client.post(f"/sources/{gateway.id}/run", headers=token)
    assert response.status_code == 503
    assert "Could not queue a pass of iotec: the job queue did not answer" in response.get_data(as_text=True)


def test_a_source_disabled_while_redis_is_down_stays_disabled_and_its_schedule_follows(
        client, login_as, auth, domain, gateway, redis_control, redis_conn):
    from rq_scheduler import Scheduler

    login_as("admin")
    token = {"X-CSRFToken": auth.csrf_token("/sources/")}
    scheduler = Scheduler(connection=redis_conn)
    domain(sources.sync_schedule, scheduler)
    assert sources.schedule_id("iotec") in {job.id for job in scheduler.get_jobs()}
    redis_control.stop()
    response = client.post(f"/sources/{gateway.id}/enabled/0", headers=token, follow_redirects=True)
    assert response.status_code == 200 and "the schedule follows it once the queue is back" in response.get_data(
        as_text=True)
    assert domain(lambda: Source.get_by_id(gateway.id).enabled) is False
    redis_control.start()  # empty
    domain(sources.sync_schedule, scheduler)  # what the scheduler process does at once and every 15 s
    ids = {job.id for job in scheduler.get_jobs()}
    assert sources.schedule_id("iotec") not in ids and jobqueue.recurring_id("notification_sweep") in ids
