"""The audit log page: filters, keyset pages, the streamed CSV export; viewers may read."""
import csv
import io
import json
import re
from datetime import datetime, timezone

import pytest

from webapp.domain import audit
from webapp.storage import db
from webapp.storage.models import Event
from webapp.web import audit_log

UTC = timezone.utc


def add(app, action, subject, actor="system", at=None, **details):
    with app.app_context(), db.database.connection_context():
        event_id = audit.record(action, subject, actor=actor, **details)
        if at is not None:  # a fixed time, for the date filters
            Event.update(at=at).where(Event.id == event_id).execute()
        return event_id


def shown_ids(response):
    return [int(i) for i in re.findall(r'<tr id="event-(\d+)"', response.get_data(as_text=True))]


def exported(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def log(app):
    """A small log: two requests' events, a payment, a setting change (ids in order)."""
    return {
        "created": add(app, "request.created", "request:PW-AAA111", actor="api:ab12cd34", amount="5000"),
        "paid": add(app, "request.paid", "request:PW-AAA111", actor="system", payment=7),
        "other": add(app, "request.created", "request:PW-BBB222", actor="user:901"),
        "payment": add(app, "payment.confirmed", "payment:7", actor="user:901", score=91),
        "setting": add(app, "setting.changed", "setting:tie_margin", actor="user:902", old=30, new=20),
    }


@pytest.mark.parametrize("role", ["viewer", "staff", "admin"])
def test_every_role_reads_the_audit_log_newest_first(client, login_as, log, role):
    login_as(role)
    response = client.get("/audit/")
    assert response.status_code == 200
    ids = [i for i in shown_ids(response) if i in log.values()]  # logging in adds events too
    assert ids == sorted(log.values(), reverse=True)
    assert client.get("/audit/export.csv").status_code == 200


def test_details_read_as_key_value(client, login_as, log):
    login_as("viewer")
    page = client.get("/audit/").get_data(as_text=True)
    assert "new=20</span>" in page and "old=30</span>" in page


def test_an_actor_that_is_a_user_shows_their_email(client, login_as, app):
    user = login_as("viewer")
    add(app, "request.cancelled", "request:PW-CCC333", actor=f"user:{user.id}")
    page = client.get("/audit/").get_data(as_text=True)
    assert f'<span title="user:{user.id}">{user.email}</span>' in page


@pytest.mark.parametrize(
    "query, expected",
    [
        ("action=request.created", ["other", "created"]),
        ("action=request.", ["other", "paid", "created"]),
        ("action=request", ["other", "paid", "created"]),
        ("actor=user:901", ["payment", "other"]),
        ("actor=api:", ["created"]),
        ("subject=PW-AAA", ["paid", "created"]),
        ("subject=pw-aaa111&action=request.paid", ["paid"]),
        ("subject=nothing-like-this", []),
    ],
)
def test_the_filters_narrow_the_list(client, login_as, log, query, expected):
    login_as("viewer")
    assert shown_ids(client.get(f"/audit/?{query}")) == [log[name] for name in expected]


def test_an_actor_can_be_given_by_email(client, login_as, app, log):
    user = login_as("viewer")
    mine = add(app, "user.password_changed", f"user:{user.id}", actor=f"user:{user.id}")
    with db.database.connection_context():
        theirs = [e.id for e in Event.select().where(Event.actor == f"user:{user.id}").order_by(Event.id.desc())]
    assert mine in theirs
    assert shown_ids(client.get(f"/audit/?actor={user.email.upper()}")) == theirs


def test_dates_are_days_in_the_configured_zone(client, login_as, app):
    login_as("viewer")
    # Kampala is UTC+3: 22:30 UTC on the 1st is 01:30 on the 2nd there.
    late = add(app, "request.created", "request:PW-LATE01", at=datetime(2025, 5, 1, 22, 30, tzinfo=UTC))
    early = add(app, "request.created", "request:PW-EARLY1", at=datetime(2025, 5, 1, 20, 30, tzinfo=UTC))
    add(app, "request.created", "request:PW-NEXT01", at=datetime(2025, 5, 3, 12, 0, tzinfo=UTC))
    assert shown_ids(client.get("/audit/?from=2025-05-02&to=2025-05-02")) == [late]
    assert shown_ids(client.get("/audit/?from=2025-05-01&to=2025-05-01")) == [early]
    assert shown_ids(client.get("/audit/?to=2025-05-01")) == [early]


def test_a_malformed_date_is_refused(client, login_as):
    login_as("viewer")
    response = client.get("/audit/?from=yesterday")
    assert response.status_code == 400
    assert "expected a date" in response.get_data(as_text=True)


def test_pages_follow_the_keyset_and_keep_the_filters(client, login_as, app):
    login_as("viewer")
    ids = [add(app, "request.created", f"request:PW-P{n:05d}") for n in range(7)]
    add(app, "payment.confirmed", "payment:1")
    seen, url = [], "/audit/?action=request.created&size=3"
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += shown_ids_from(page)
        older = re.search(r'href="([^"]+)" role="button" class="secondary outline">Older', page)
        url = older.group(1).replace("&amp;", "&") if older else None
        if url:
            assert "action=request.created" in url and "after=" in url
    assert seen == sorted(ids, reverse=True)


def shown_ids_from(page):
    return [int(i) for i in re.findall(r'<tr id="event-(\d+)"', page)]


def test_an_htmx_filter_gets_the_table_alone(client, login_as, log):
    login_as("viewer")
    response = client.get("/audit/?action=payment.", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="audit-table">') and "<html" not in body
    assert shown_ids(response) == [log["payment"]]
    assert "HX-Request" in response.headers["Vary"]


def test_the_export_is_the_filtered_events_as_csv(client, login_as, log):
    login_as("viewer")
    response = client.get("/audit/export.csv?action=request.&subject=AAA111&before=1")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert re.fullmatch(r'attachment; filename="paywatch-audit-\d{4}-\d{2}-\d{2}\.csv"',
                        response.headers["Content-Disposition"])
    rows = exported(response)
    assert list(rows[0]) == list(audit_log.CSV_COLUMNS)
    assert [row["action"] for row in rows] == ["request.paid", "request.created"]
    paid, created = rows
    assert created["actor"] == "api:ab12cd34" and created["subject"] == "request:PW-AAA111"
    assert json.loads(created["details"]) == {"amount": "5000"}
    at = datetime.fromisoformat(created["at"])
    assert at.utcoffset().total_seconds() == 0
    assert datetime.fromisoformat(created["at_local"]) == at
    assert datetime.fromisoformat(created["at_local"]).utcoffset().total_seconds() == 3 * 3600


def test_the_export_of_no_events_is_the_header_alone(client, login_as, log):
    login_as("viewer")
    text = client.get("/audit/export.csv?actor=nobody").get_data(as_text=True)
    assert text.strip() == ",".join(audit_log.CSV_COLUMNS)


def test_the_export_streams_in_batches(client, login_as, app, monkeypatch):
    login_as("viewer")
    monkeypatch.setattr(audit_log, "EXPORT_BATCH", 3)
    ids = [add(app, "request.created", f"request:PW-S{n:05d}") for n in range(8)]
    response = client.get("/audit/export.csv?action=request.created")
    assert response.is_streamed
    rows = exported(response)
    assert [row["subject"] for row in rows] == [f"request:PW-S{n:05d}" for n in reversed(range(8))]
    assert len(rows) == len(ids)
