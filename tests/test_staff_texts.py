"""What staff read is ours, not a library's: phone errors, the 429 and form-expired pages, durations
in seconds under a minute, and the favicon every page names."""
import importlib
import re
from datetime import timedelta

import pytest

from webapp.config import settings
from webapp.domain import durations, message_texts, phones
from webapp.storage import db
from webapp.storage.models import Agent, Rule, Template, utcnow


@pytest.mark.parametrize("typed, words", [
    ("abc", "phone number 'abc' is not a phone number"),
    ("+999123456", "does not start with a known country code"),
    ("12", "is not a valid number: too few digits"),
    ("0772123456789012", "is not a valid number: too many digits"),
])
def test_phone_errors_are_in_our_words(typed, words):
    with pytest.raises(phones.PhoneError) as refused:
        phones.to_e164(typed, "UG")
    assert words in str(refused.value)
    assert "string supplied" not in str(refused.value) and "(1)" not in str(refused.value)


def test_editing_an_agents_phone_shows_no_library_text(client, auth, login_as, domain):
    login_as("staff")
    agent = domain(Agent.create, name="Amina", phone="+256772123456", code="AG7")
    token = {"X-CSRFToken": auth.csrf_token("/agents/")}
    response = client.post(f"/agents/{agent.id}/cell/phone", data={"value": "call me"}, headers=token)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "is not a phone number (use e.g. +256772123456)" in page
    assert "did not seem to be a phone number" not in page and "NumberParseException" not in page


def test_the_429_page_says_when_to_try_again_not_the_limit(client, auth, make_user):
    user = make_user("staff")
    for _ in range(5):  # PAYWATCH_LOGIN_RATE_LIMIT is 5 per minute in the tests
        auth.login(user.email, "wrong password!")
    response = auth.login(user.email, "wrong password!")
    page = response.get_data(as_text=True)
    assert response.status_code == 429
    found = re.search(r"Too many attempts — try again in (\d+) seconds?\.", page)
    assert found and 1 <= int(found.group(1)) <= 60, page[:2000]
    assert "per 1 minute" not in page and "per minute" not in page
    assert int(response.headers["Retry-After"]) <= 60


def test_a_form_sent_without_its_token_says_why_in_our_words(client, login_as):
    login_as("staff")
    response = client.post("/requests/", data={"amount": "5000"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "the form came without its token" in page and "data-form-kept" in page
    assert "The CSRF token is missing" not in page


def test_a_form_sent_after_the_session_ended_goes_to_the_login_page_of_its_own_page(client, auth, login_as, domain):
    from webapp.domain import login_sessions

    user = login_as("staff")
    token = auth.csrf_token("/requests/new")
    domain(login_sessions.end_all, user.id, "test")
    response = client.post("/requests/", data={"csrf_token": token, "amount": "5000"},
                           headers={"Referer": "http://localhost/requests/new"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login?next=%2Frequests%2Fnew")
    hx = client.post("/requests/", data={"csrf_token": token, "amount": "5000"},
                     headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/requests/new"})
    assert hx.status_code == 401 and hx.headers["HX-Redirect"].endswith("/login?next=%2Frequests%2Fnew")


def test_a_form_whose_session_cookie_is_gone_goes_to_the_login_page(client, login_as):
    login_as("staff")
    client.delete_cookie("paywatch_session")  # the browser dropped it: no session, no CSRF token
    response = client.post("/requests/", data={"amount": "5000"}, headers={"Referer": "http://localhost/requests/new"})
    assert response.status_code == 302 and "/login?next=%2Frequests%2Fnew" in response.headers["Location"]


def test_a_customer_form_without_its_token_stays_on_the_customer_side(client, make_request):
    request = make_request()
    response = client.post(f"/pay/{request.pay_token}/claim", data={"phone": "0772123456"})
    assert response.status_code == 400 and "/login" not in response.headers.get("Location", "")
    assert "the form came without its token" in response.get_data(as_text=True)


# ---------------------------------------------------------------- durations in words


@pytest.mark.parametrize("seconds, words", [
    (0, "0 s"), (45, "45 s"), (59.6, "1 min"), (60, "1 min"), (125, "2 min"), (3600, "1 h"), (3900, "1 h 5 min"),
    (86400 + 3600 * 4, "1 d 4 h"), (timedelta(seconds=-30), "30 s"), (None, "—"),
])
def test_durations_read_in_seconds_under_a_minute(seconds, words):
    assert durations.spoken(seconds) == words


@pytest.mark.parametrize("seconds, words", [(0.2, "in 1 second"), (45.1, "in 46 seconds"), (120, "in 120 seconds"),
                                            (600, "in 10 min")])
def test_waits_are_counted_in_whole_seconds_rounded_up(seconds, words):
    assert durations.seconds_until(seconds) == words


def test_the_agent_alert_says_seconds_under_a_minute(app, domain, make_request):
    now = utcnow()
    request = make_request(now=now - timedelta(seconds=45), customer_name="Grace")

    def text(at):
        with app.app_context():
            context = message_texts.context_of(request, None, settings().zone, at)
        return message_texts.render_text(message_texts.DEFAULTS["pending_alert_agent"], context)

    assert "is still pending after 45 s." in text(now)
    assert "is still pending after 3 min." in text(now + timedelta(minutes=2, seconds=20))


def test_the_migration_rewrites_saved_minute_texts(app, domain):
    migration = importlib.import_module("webapp.storage.migrations.0074_waited_in_words")
    saved = "Paywatch: {{ reference }} is still pending after {{minutes}} min. Please follow up."
    other = "Pending for {{ minutes }} minutes"

    def run():
        Template.create(kind="pending_alert_agent", body=saved, enabled=True)
        rule = Rule.create(name="r", cron="0 9 * * *", template=saved, filter={}, enabled=True)
        Template.create(kind="reminder", body=other, enabled=True)
        migration.up(None, db.database)
        bodies = {t.kind: t.body for t in Template.select()}
        return bodies, Rule.get_by_id(rule.id).template

    bodies, rule_text = domain(run)
    assert bodies["pending_alert_agent"] == rule_text == ("Paywatch: {{ reference }} is still pending after "
                                                          "{{ waited }}. Please follow up.")
    assert bodies["reminder"] == other
    message_texts.check(rule_text)  # `waited` is a known variable


def test_evidence_cards_say_seconds_under_a_minute():
    from datetime import datetime, timezone

    from webapp.domain import matching
    from webapp.domain.matching import variants

    created = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    request = matching.RequestFacts(id=1, reference="PW-7KQ2M9", amount_minor=5000, currency="UGX", status="pending",
                                    created_at=created, expires_at=created + timedelta(minutes=15))
    payment = matching.PaymentFacts(amount_minor=5000, currency="UGX", received_at=created + timedelta(seconds=40))
    candidate = matching.score(payment, request, same_amount_open=1,
                               settings=matching.MatchSettings(names=variants.load()))
    assert "received 40 s after the request" in [e.detail for e in candidate.evidence]


# ---------------------------------------------------------------- favicon


def test_every_page_names_the_favicon_and_it_is_served(client, login_as):
    login_as("viewer")
    page = client.get("/").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
    old_style = client.get("/favicon.ico")
    assert old_style.status_code == 301 and old_style.headers["Location"].endswith("/static/favicon.svg")


def test_the_payment_page_names_the_favicon(client, make_request):
    request = make_request()
    page = client.get(f"/pay/{request.pay_token}").get_data(as_text=True)
    assert 'rel="icon" href="/static/favicon.svg"' in page


# ---------------------------------------------------------------- other raw texts


@pytest.mark.parametrize("body, words", [
    ("{{ reference.__class__.__mro__ }}", "it reaches for something message texts may not use"),
    ("{{ amount - 1 }}", "it combines values that do not go together"),
])
def test_a_template_that_fails_when_filled_in_says_why_without_class_names(client, auth, login_as, body, words):
    login_as("staff")
    response = client.post("/notifications/templates/preview", headers={"HX-Request": "true"},
                           data={"csrf_token": auth.csrf_token("/notifications/templates"), "body": body})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and f"This text cannot be filled in: {words}" in page
    assert "Error:" not in page and "unsupported operand" not in page


@pytest.mark.parametrize("url, words", [
    ("https://no-such-host.invalid/hook", "host no-such-host.invalid does not resolve: no such name in DNS"),
    ("https://example.com:99999/hook", "the port must be a number from 1 to 65535"),
])
def test_a_webhook_url_that_cannot_be_used_says_why_in_words(app, url, words):
    from webapp.domain import webhooks

    with app.app_context(), pytest.raises(webhooks.WebhookError) as refused:
        webhooks.check_url(url)
    assert words in refused.value.message and "Errno" not in refused.value.message
