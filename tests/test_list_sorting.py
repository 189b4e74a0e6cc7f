"""Sortable lists (Requests, Payments, Notifications, Audit log), keyset pages in every order, the
streamed CSV exports of Requests and Payments, and the no-agent filter."""
import csv
import html
import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain import audit, ledger
from webapp.storage import db
from webapp.storage.models import Agent, Event, Notification, NotificationStatus, Payment
from webapp.web import listing

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def references(page: str) -> list[str]:
    return re.findall(r'<tr id="request-([A-Za-z0-9_-]+)"', page)


def payment_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="payment-(\d+)"', page)]


def next_link(page: str) -> str | None:
    found = re.search(r'href="([^"]*after=[^"]*)"[^>]*>(?:Older|Next) →', page)
    return html.unescape(found.group(1)) if found else None


def walk(client, url: str, rows) -> list:
    """Every row of a list, following its "next page" links from `url`."""
    seen = []
    while url:
        page = client.get(url)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        seen += rows(text)
        url = next_link(text)
    return seen


def exported(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def requests_made(make_request):
    """Seven requests: created an hour apart but not in id order, amounts with ties."""
    made = []
    for hours, amount in [(3, 5000), (1, 7000), (6, 5000), (0, 9000), (5, 7000), (2, 5000), (4, 1000)]:
        made.append(make_request(amount, now=T0 + timedelta(hours=hours), expires_in=timedelta(days=3650)))
    return made


@pytest.fixture
def ingest(domain):
    def run(source_ref, amount_minor=5000, received_at=None, **fields):
        return domain(ledger.ingest_payment, ledger.PaymentObservation(
            source=fields.pop("source", "mailbox"), source_ref=source_ref, amount_minor=amount_minor,
            currency="UGX", received_at=received_at or T0, **fields)).payment

    return run


# ---------------------------------------------------------------- order


def test_requests_are_newest_first_by_creation_not_by_insertion(client, login_as, requests_made):
    login_as("viewer")
    by_created = [r.reference for r in sorted(requests_made, key=lambda r: r.created_at, reverse=True)]
    assert by_created != [r.reference for r in reversed(requests_made)]  # the data tells the two apart
    page = client.get("/requests/").get_data(as_text=True)
    assert references(page) == by_created
    assert '<th aria-sort="descending" class="sortable"' in page and 'id="sort-created"' in page


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("size", [2, 3, 50])
def test_requests_sorted_by_amount_page_by_keyset_without_repeats_or_gaps(client, login_as, requests_made, order, size):
    login_as("viewer")
    expected = sorted(requests_made, key=lambda r: (r.amount_minor, r.id), reverse=order == "desc")
    seen = walk(client, f"/requests/?sort=amount&order={order}&size={size}", references)
    assert seen == [r.reference for r in expected]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_requests_sorted_by_creation_both_ways_across_pages(client, login_as, requests_made, order):
    login_as("viewer")
    expected = sorted(requests_made, key=lambda r: r.created_at, reverse=order == "desc")
    assert walk(client, f"/requests/?sort=created&order={order}&size=2", references) == \
        [r.reference for r in expected]


def test_a_filter_and_a_sort_go_together_on_every_page(client, login_as, requests_made):
    login_as("viewer")
    fives = sorted((r for r in requests_made if r.amount_minor == 5000), key=lambda r: r.created_at)
    url = "/requests/?amount=5000&sort=created&order=asc&size=1"
    first = client.get(url).get_data(as_text=True)
    following = next_link(first)
    assert "amount=5000" in following and "sort=created" in following and "order=asc" in following
    assert walk(client, url, references) == [r.reference for r in fives]


def test_the_header_links_toggle_the_sorted_column_and_keep_the_filters(client, login_as, requests_made):
    login_as("viewer")
    page = client.get("/requests/?sort=amount&order=asc&status=pending&size=2").get_data(as_text=True)
    amount = re.search(r'<th aria-sort="([a-z]+)"[^>]*>\s*<a href="([^"]+)"[^>]*id="sort-amount"', page)
    assert amount.group(1) == "ascending"
    toggle = html.unescape(amount.group(2))
    assert "order=desc" in toggle and "status=pending" in toggle and "size=2" in toggle and "after=" not in toggle
    reference = re.search(r'<th aria-sort="([a-z]+)"[^>]*>\s*<a href="([^"]+)"[^>]*id="sort-reference"', page)
    assert reference.group(1) == "none" and "sort=reference" in reference.group(2) and "order=asc" in reference.group(2)
    # The sort rides in the filter form (hidden inputs bound to it), the live poll and the export link.
    assert '<input type="hidden" name="sort" value="amount" form="request-filters">' in page
    assert re.search(r'hx-get="[^"]*sort=amount[^"]*" hx-trigger="every 5s"', page)
    export = html.unescape(re.search(r'href="([^"]+)" download id="requests-export"', page).group(1))
    assert "sort=amount" in export and "status=pending" in export


@pytest.mark.parametrize("query", ["sort=nope", "sort=amount&order=sideways", "sort=agent_id", "sort=id",
                                   "after=garbage", "after=" + "A" * 5000, "sort=amount&after=WyJ4Il0"])
def test_an_unknown_sort_or_a_forged_cursor_reads_a_first_page(client, login_as, requests_made, query):
    login_as("viewer")
    response = client.get(f"/requests/?{query}")
    assert response.status_code == 200
    assert len(references(response.get_data(as_text=True))) == len(requests_made)


def test_a_cursor_from_another_order_is_not_applied(client, login_as, requests_made):
    login_as("viewer")
    first = client.get("/requests/?sort=amount&order=asc&size=2").get_data(as_text=True)
    cursor = re.search(r"after=([^&\"]+)", next_link(first)).group(1)
    response = client.get(f"/requests/?sort=amount&order=desc&after={cursor}")
    assert references(response.get_data(as_text=True))[0] == max(requests_made, key=lambda r: (r.amount_minor, r.id)).reference


def test_payments_are_newest_first_by_when_the_money_arrived(client, login_as, ingest):
    login_as("viewer")
    made = [ingest(f"t-{n}", 100 + n, received_at=T0 + timedelta(minutes=m)) for n, m in enumerate([5, 1, 9, 3])]
    expected = [p.id for p in sorted(made, key=lambda p: p.received_at, reverse=True)]
    assert payment_ids(client.get("/payments/").get_data(as_text=True)) == expected
    assert walk(client, "/payments/?sort=received&order=asc&size=3", payment_ids) == list(reversed(expected))


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_payments_sorted_by_a_column_with_empty_values_keep_them_last_across_pages(client, login_as, ingest, domain,
                                                                                   order):
    login_as("viewer")
    made = [ingest(f"c-{n}", 100 + n) for n in range(7)]
    confidences = [40, None, 90, 40, None, 10, 90]
    for payment, confidence in zip(made, confidences):
        domain(Payment.update(confidence=confidence).where(Payment.id == payment.id).execute)
    filled = sorted(((c, p.id) for p, c in zip(made, confidences) if c is not None), reverse=order == "desc")
    empty = sorted((p.id for p, c in zip(made, confidences) if c is None), reverse=order == "desc")
    seen = walk(client, f"/payments/?sort=confidence&order={order}&size=2", payment_ids)
    assert seen == [i for _, i in filled] + empty


@pytest.fixture
def outbox(domain):
    counter = iter(range(1, 10_000))

    def add(phone="+256772111111", **fields):
        fields.setdefault("kind", "admin_alert")
        return domain(Notification.create, phone=phone, dedupe_key=f"sort:{next(counter)}", **fields)

    return add


def notification_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="notification-(\d+)"', page)]


def test_notifications_sort_by_due_time_and_by_sent_time_with_unsent_last(client, login_as, outbox):
    login_as("viewer")
    rows = [outbox(due_at=T0 + timedelta(minutes=m), sent_at=(T0 + timedelta(minutes=s) if s is not None else None),
                   status=NotificationStatus.SENT if s is not None else NotificationStatus.PENDING)
            for m, s in [(3, 4), (9, None), (1, 8), (5, 6)]]
    by_due = [n.id for n in sorted(rows, key=lambda n: n.due_at, reverse=True)]
    assert notification_ids(client.get("/notifications/").get_data(as_text=True)) == by_due
    assert walk(client, "/notifications/?sort=due&order=asc&size=1", notification_ids) == list(reversed(by_due))
    sent = [n.id for n in sorted((n for n in rows if n.sent_at), key=lambda n: n.sent_at, reverse=True)]
    assert walk(client, "/notifications/?sort=sent&size=2", notification_ids) == sent + [rows[1].id]


def test_the_audit_log_sorts_by_action_both_ways(client, login_as, app):
    login_as("viewer")
    with app.app_context(), db.database.connection_context():
        ids = {action: audit.record(action, "request:PW-SORT01", actor="test")
               for action in ["request.paid", "payment.confirmed", "request.created", "agent.added"]}
    page = client.get("/audit/?subject=PW-SORT01&sort=action&order=asc&size=3").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'<tr id="event-(\d+)"', page)]
    assert shown == [ids[a] for a in sorted(ids)][:3]
    descending = walk(client, "/audit/?subject=PW-SORT01&sort=action&order=desc&size=3",
                      lambda text: [int(i) for i in re.findall(r'<tr id="event-(\d+)"', text)])
    assert descending == [ids[a] for a in sorted(ids, reverse=True)]


def test_the_audit_log_is_newest_first_by_its_time(client, login_as, app):
    login_as("viewer")
    with app.app_context(), db.database.connection_context():
        late = audit.record("request.created", "request:PW-TIME01", actor="test")
        early = audit.record("request.created", "request:PW-TIME02", actor="test")
        Event.update(at=T0).where(Event.id == early).execute()
    page = client.get("/audit/?subject=PW-TIME0").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<tr id="event-(\d+)"', page)] == [late, early]


# ---------------------------------------------------------------- no agent


def test_the_no_agent_filter_lists_only_requests_nobody_brought(client, login_as, make_request, domain):
    login_as("viewer")
    agent = domain(Agent.create, name="Amina", phone="+256700000001", code="AG7")
    theirs, nobodys = make_request(5000, agent_id=agent.id), make_request(6000)
    page = client.get("/requests/?no_agent=1").get_data(as_text=True)
    assert references(page) == [nobodys.reference]
    assert re.search(r'<input[^>]*checked[^>]*name="no_agent"|<input[^>]*name="no_agent"[^>]*checked', page)
    assert references(client.get("/requests/?agent=AG7").get_data(as_text=True)) == [theirs.reference]
    both = client.get("/requests/?agent=AG7&no_agent=1")
    assert both.status_code == 400 and "not both" in both.get_data(as_text=True)
    rows = exported(client.get("/requests/export.csv?no_agent=1"))
    assert [row["reference"] for row in rows] == [nobodys.reference]


# ---------------------------------------------------------------- CSV


def test_the_requests_export_is_the_filtered_list_with_decimal_amounts_and_local_times(
        client, login_as, make_request, domain):
    login_as("viewer")
    agent = domain(Agent.create, name="Amina", phone="+256700000001", code="AG7")
    usd = make_request(123456, currency="USD", customer_name="Grace Nakato", customer_phone="+256772123456",
                       agent_id=agent.id, now=T0)
    make_request(5000, customer_name="Other", now=T0 + timedelta(hours=1))
    response = client.get("/requests/export.csv?q=nakato")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert re.fullmatch(r'attachment; filename="paywatch-requests-\d{4}-\d{2}-\d{2}\.csv"',
                        response.headers["Content-Disposition"])
    rows = exported(response)
    assert len(rows) == 1
    row = rows[0]
    assert row["reference"] == usd.reference and row["status"] == "pending"
    assert row["amount"] == "1234.56" and row["currency"] == "USD" and row["requested_amount"] == "1234.56"
    assert row["paid_amount"] == "0.00" and row["agent_code"] == "AG7" and row["customer_phone"] == "+256772123456"
    assert row["created_at"] == "2026-03-02T11:00:00+03:00"  # 08:00 UTC in Kampala
    assert datetime.fromisoformat(row["expires_at"]) == usd.expires_at and row["paid_at"] == ""


def test_the_payments_export_names_the_paid_request_and_follows_the_filters(client, login_as, make_request, ingest):
    login_as("viewer")
    paid = make_request(4000, customer_phone="+256772123456")
    confirmed = ingest("m-1", 4000, sender_phone="+256772123456", sender_name="Grace", received_at=datetime.now(UTC))
    ingest("m-2", 9000, sender_name="John", transaction_id="QX12345")
    rows = exported(client.get("/payments/export.csv?status=confirmed"))
    assert [int(row["id"]) for row in rows] == [confirmed.id]
    assert rows[0]["request_reference"] == paid.reference and rows[0]["amount"] == "4000"
    assert rows[0]["currency"] == "UGX" and rows[0]["late"] == "no"
    everything = exported(client.get("/payments/export.csv?sort=amount&order=asc"))
    assert [row["amount"] for row in everything] == ["4000", "9000"]
    assert everything[1]["transaction_id"] == "QX12345" and everything[1]["request_reference"] == ""


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+256 cmd", "-2+3", "@SUM(A1)", "\tTAB"])
def test_exported_text_that_looks_like_a_formula_is_quoted(client, login_as, make_request, ingest, name):
    login_as("viewer")
    make_request(5000, customer_name=name)
    ingest("f-1", 7000, sender_name=name, note=name)
    request_row = exported(client.get("/requests/export.csv"))[0]
    payment_row = exported(client.get("/payments/export.csv"))[0]
    assert request_row["customer_name"] == "'" + name
    assert payment_row["sender_name"] == "'" + name and payment_row["note"] == "'" + name


def test_the_export_streams_every_row_in_batches(client, login_as, make_request, monkeypatch):
    login_as("viewer")
    monkeypatch.setattr(listing, "EXPORT_BATCH", 2)
    made = [make_request(1000 + n, now=T0 + timedelta(minutes=n)) for n in range(7)]
    response = client.get("/requests/export.csv")
    assert response.is_streamed
    pieces = list(response.response)
    assert len(pieces) >= 4  # header + 7 rows, flushed every 2 rows
    rows = list(csv.DictReader(io.StringIO("".join(p.decode() if isinstance(p, bytes) else p for p in pieces))))
    assert [row["reference"] for row in rows] == [r.reference for r in reversed(made)]


def test_the_export_refuses_unreadable_filters_and_needs_a_login(client, login_as):
    assert client.get("/requests/export.csv").status_code in (302, 401)
    assert client.get("/payments/export.csv").status_code in (302, 401)
    login_as("viewer")
    bad = client.get("/payments/export.csv?status=lost")
    assert bad.status_code == 400 and bad.mimetype == "text/plain" and "Status" in bad.get_data(as_text=True)
    assert client.get("/requests/export.csv?amount=abc").status_code == 400


def test_each_list_links_its_export(client, login_as, make_request):
    login_as("viewer")
    make_request()
    assert 'id="requests-export"' in client.get("/requests/?status=pending").get_data(as_text=True)
    assert 'id="payments-export"' in client.get("/payments/").get_data(as_text=True)


# ---------------------------------------------------------------- notifications message cell


def test_a_notification_message_shows_its_first_line_and_opens_to_the_rest(client, login_as, outbox):
    login_as("viewer")
    sent = outbox(status=NotificationStatus.SENT, sent_at=T0,
                  body="Payment received for PW-AAA111\nAmount: UGX 5,000\nThank you for paying on time.")
    page = client.get("/notifications/").get_data(as_text=True)
    cell = re.search(rf'<details class="body" id="message-{sent.id}" hx-preserve="true">(.*?)</details>', page, re.S)
    assert cell, "the message is an expandable cell"
    assert re.search(r"<summary>Payment received for PW-AAA111</summary>", cell.group(1))
    rest = re.search(r'<div class="text">(.*?)</div>', cell.group(1), re.S).group(1)
    assert rest == "Amount: UGX 5,000\nThank you for paying on time."


@pytest.mark.parametrize("value, written", [
    ("=1+2", "'=1+2"), ("+1 234", "'+1 234"), ("-1-2", "'-1-2"), ("@A1", "'@A1"), ("\r=1", "'\r=1"),
    ("+256772123456", "+256772123456"), ("-5.00", "-5.00"), ("Grace", "Grace"), (None, ""), (42, "42"),
])
def test_a_csv_cell_is_quoted_only_when_a_spreadsheet_could_run_it(value, written):
    assert listing.csv_cell(value) == written
