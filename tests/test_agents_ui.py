"""Agents: create, edit inline, (de)activate, leads, CSV import (page and CLI), the agent page's figures."""
import io
import re
from datetime import timedelta, timezone

import pytest

from webapp.domain import agents
from webapp.storage.models import Agent, Event, Lead, Notification, PaymentRequest, utcnow

HTMX = {"HX-Request": "true"}
UTC = timezone.utc


@pytest.fixture
def staff(login_as, auth):
    login_as("staff")
    return {"X-CSRFToken": auth.csrf_token("/agents/")}


def agent_rows(domain):
    return domain(lambda: [(a.code, a.name, a.phone, a.is_active) for a in Agent.select().order_by(Agent.code)])


def events(domain, action):
    return domain(lambda: [(e.subject, e.actor, e.details) for e in Event.select().where(Event.action == action)])


# ---------------------------------------------------------------- create


def test_staff_add_an_agent_with_a_local_number_read_in_the_configured_region(client, staff, domain):
    response = client.post("/agents/", data={"name": " Amina  Nakato ", "phone": "0772 123456", "code": " AG7 "},
                           headers=staff)
    assert response.status_code == 302
    assert agent_rows(domain) == [("AG7", "Amina Nakato", "+256772123456", True)]
    [(subject, actor, details)] = events(domain, "agent.created")
    assert subject == "agent:AG7" and actor.startswith("user:") and details["phone"] == "+256772123456"
    page = client.get("/agents/").get_data(as_text=True)
    assert 'id="agent-1-phone"' in page and "+256772123456" in page


@pytest.mark.parametrize("form, field, words", [
    ({"name": "", "phone": "0772123456", "code": "A1"}, "name", "Name: enter"),
    ({"name": "Amina", "phone": "12", "code": "A1"}, "phone", "Phone: "),
    ({"name": "Amina", "phone": "", "code": "A1"}, "phone", "Phone: phone number is empty"),
    ({"name": "Amina", "phone": "0772123456", "code": ""}, "code", "Code: enter"),
    ({"name": "Amina", "phone": "0772123456", "code": "A 1"}, "code", "without spaces"),
])
def test_a_bad_field_is_refused_and_named(client, staff, domain, form, field, words):
    response = client.post("/agents/", data=form, headers=staff)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(rf'<small class="error" id="error-{field}">([^<]+)</small>', page)
    assert error and words in error.group(1)
    assert agent_rows(domain) == []


def test_a_duplicate_code_is_refused_naming_the_code(client, staff, domain):
    domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    response = client.post("/agents/", data={"name": "Other", "phone": "0772000111", "code": "AG7"}, headers=staff)
    assert response.status_code == 400
    assert "another agent already has code &#39;AG7&#39;" in response.get_data(as_text=True)
    assert len(agent_rows(domain)) == 1


def test_viewers_read_the_list_but_cannot_add_or_edit(client, login_as, auth, domain):
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    login_as("viewer")
    page = client.get("/agents/").get_data(as_text=True)
    assert "AG7" in page and "agent-create" not in page and "cell-edit" not in page
    token = {"X-CSRFToken": auth.csrf_token("/agents/")}
    assert client.post("/agents/", data={"name": "X", "phone": "0772000111", "code": "X"}, headers=token).status_code == 403
    assert client.post(f"/agents/{agent.id}/cell/name", data={"value": "Y"}, headers=token).status_code == 403


# ---------------------------------------------------------------- inline editing


def test_a_click_on_a_cell_gives_an_input_and_escape_gives_the_cell_back(client, staff, domain):
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    editor = client.get(f"/agents/{agent.id}/cell/phone/edit", headers=HTMX).get_data(as_text=True)
    assert 'class="inline-edit"' in editor and 'name="value" value="+256772123456"' in editor and "autofocus" in editor
    assert f'data-cancel-url="/agents/{agent.id}/cell/phone"' in editor
    cell = client.get(f"/agents/{agent.id}/cell/phone", headers=HTMX).get_data(as_text=True)
    assert "inline-edit" not in cell and "+256772123456" in cell


def test_inline_edit_saves_a_good_phone_and_shows_the_error_for_a_bad_one(client, staff, domain):
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    bad = client.post(f"/agents/{agent.id}/cell/phone", data={"value": "0772"}, headers={**staff, **HTMX})
    assert bad.status_code == 200  # htmx swaps 2xx only: the editor comes back with its error
    body = bad.get_data(as_text=True)
    assert 'role="alert"' in body and "Phone: " in body and 'value="0772"' in body
    assert agent_rows(domain)[0][2] == "+256772123456"

    good = client.post(f"/agents/{agent.id}/cell/phone", data={"value": "0701 234567"}, headers={**staff, **HTMX})
    assert good.status_code == 200 and "inline-edit" not in good.get_data(as_text=True)
    assert agent_rows(domain)[0][2] == "+256701234567"
    [(_, _, details)] = events(domain, "agent.changed")
    assert details == {"phone": ["+256772123456", "+256701234567"]}


def test_inline_edit_of_the_code_refuses_a_taken_one(client, staff, domain):
    domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    other = domain(agents.create_agent, "Brian", "+256772123457", "AG8", actor="test")
    response = client.post(f"/agents/{other.id}/cell/code", data={"value": "AG7"}, headers={**staff, **HTMX})
    assert "another agent already has code" in response.get_data(as_text=True)
    assert [a[0] for a in agent_rows(domain)] == ["AG7", "AG8"]
    # Without htmx the same refusal is a 400.
    assert client.post(f"/agents/{other.id}/cell/code", data={"value": "AG7"}, headers=staff).status_code == 400


def test_staff_deactivate_and_reactivate_an_agent(client, staff, domain):
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    row = client.post(f"/agents/{agent.id}/active/0", headers={**staff, **HTMX}).get_data(as_text=True)
    assert row.startswith(f'<tr id="agent-{agent.id}" class="muted"') and "Activate" in row
    assert agent_rows(domain)[0][3] is False
    assert client.post(f"/agents/{agent.id}/active/1", headers=staff).status_code == 302
    assert agent_rows(domain)[0][3] is True
    assert [e[0] for e in events(domain, "agent.deactivated")] == ["agent:AG7"]
    assert len(events(domain, "agent.activated")) == 1


def test_staff_add_a_lead_on_the_agent_page(client, staff, domain):
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    response = client.post(f"/agents/{agent.id}/leads", data={"lead_name": "Grace", "lead_phone": "0772 999888"},
                           headers=staff)
    assert response.status_code == 302
    bad = client.post(f"/agents/{agent.id}/leads", data={"lead_name": "X", "lead_phone": "nope"}, headers=staff)
    assert bad.status_code == 400 and 'id="error-lead_phone"' in bad.get_data(as_text=True)
    page = client.get(f"/agents/{agent.id}").get_data(as_text=True)
    assert "Grace" in page and "+256772999888" in page


# ---------------------------------------------------------------- CSV import

AGENTS_CSV = """name,phone,code
Amina Nakato, 0772 123456 ,AG1
Brian Ouma,+256701234567,AG2
No Phone,,AG3
Bad Phone,12345,AG4
,0772000111,AG5
Amina Again,0772123456,AG1
Short line,0772000222
"""


def test_csv_import_reports_every_rejected_line_and_never_duplicates(client, staff, domain):
    def upload():
        return client.post("/agents/import", data={"file": (io.BytesIO(AGENTS_CSV.encode()), "agents.csv")},
                           headers=staff, content_type="multipart/form-data")

    page = upload().get_data(as_text=True)
    assert re.search(r'id="import-created">2<', page) and re.search(r'id="import-rejected"[^>]*>5<', page)
    rejected = dict(re.findall(r'<tr id="rejected-line-(\d+)"><td>\d+</td><td>([^<]+)</td>', page))
    assert set(rejected) == {"4", "5", "6", "7", "8"}
    assert "empty" in rejected["4"] and "Phone" in rejected["5"] and "Name" in rejected["6"]
    assert "repeats line 2" in rejected["7"] and "expected 3 columns" in rejected["8"]
    assert agent_rows(domain) == [("AG1", "Amina Nakato", "+256772123456", True),
                              ("AG2", "Brian Ouma", "+256701234567", True)]

    again = upload().get_data(as_text=True)
    assert re.search(r'id="import-created">0<', again) and re.search(r'id="import-unchanged">2<', again)
    assert len(agent_rows(domain)) == 2
    assert [e[2]["created"] for e in events(domain, "agents.imported")] == [2, 0]


def test_a_leads_file_is_recognised_by_its_header_and_updates_names(client, staff, domain):
    domain(agents.create_agent, "Amina", "+256772123456", "AG1", actor="test")
    text = "agent_code,phone,name\nAG1,0772 555444,Grace\nNOPE,0772 555445,Joy\n"
    first = domain(agents.import_csv, text, actor="test")
    assert (first.kind, first.created, first.rejected) == ("leads", 1, [(3, "Agent code: no agent has code 'NOPE'.")])
    second = domain(agents.import_csv, text.replace("Grace", "Grace N."), actor="test")
    assert (second.created, second.updated) == (0, 1)
    assert domain(lambda: [(lead.name, lead.phone) for lead in Lead.select()]) == [("Grace N.", "+256772555444")]


def test_an_upload_that_is_not_utf8_is_refused_clearly(client, staff):
    response = client.post("/agents/import", data={"file": (io.BytesIO(b"name\xff,phone\n"), "a.csv")},
                           headers=staff, content_type="multipart/form-data")
    assert response.status_code == 400 and "not UTF-8" in response.get_data(as_text=True)


def test_the_cli_imports_and_prints_rejected_lines(app, runner, domain, tmp_path):
    path = tmp_path / "agents.csv"
    path.write_text(AGENTS_CSV)
    result = runner.invoke(args=["agents", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "agents: imported 2, updated 0, unchanged 0, rejected 5" in result.output
    assert "  line 5: Phone: " in result.output
    path.write_text("Amina N.,0772123456,AG1\n")  # no header: name,phone,code
    result = runner.invoke(args=["agents", "import", str(path)])
    assert "imported 0, updated 1, unchanged 0, rejected 0" in result.output
    assert agent_rows(domain)[0][:2] == ("AG1", "Amina N.")


# ---------------------------------------------------------------- the agent page


def _request(agent, reference, status, created, paid=None, amount=10000, currency="UGX"):
    return PaymentRequest.create(reference=reference, amount_minor=amount, requested_minor=amount, currency=currency,
                                 agent=agent, status=status, created_at=created, expires_at=created + timedelta(hours=1),
                                 paid_at=paid)


def test_the_agent_page_shows_conversion_median_time_to_pay_collections_and_alerts(client, login_as, domain):
    now = utcnow()
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    other = domain(agents.create_agent, "Brian", "+256772123457", "AG8", actor="test")

    def seed():
        t = now - timedelta(days=1)
        _request(agent, "PW-A1", "paid", t, t + timedelta(minutes=10))
        _request(agent, "PW-A2", "paid", t, t + timedelta(minutes=30), amount=25000)
        _request(agent, "PW-A3", "paid", t, t + timedelta(minutes=50), currency="USD", amount=700)
        _request(agent, "PW-A4", "expired", t)
        _request(agent, "PW-A5", "pending", now)
        _request(other, "PW-B1", "paid", t, t + timedelta(minutes=1))
        for i, status in enumerate(("sent", "sent", "cancelled")):
            Notification.create(kind="pending_alert_agent", phone=agent.phone, status=status, dedupe_key=f"k{i}")
        Notification.create(kind="pending_alert_customer", phone=agent.phone, status="sent", dedupe_key="c")

    domain(seed)
    login_as("viewer")
    page = client.get(f"/agents/{agent.id}").get_data(as_text=True)
    stat = dict(re.findall(r'data-stat="(\w+)">\s*<span class="value">([^<]+)</span>', page))
    assert stat == {"requests": "5", "conversion": "75%", "median": "30 min", "alerts": "2"}
    assert 'data-alert-status="cancelled">cancelled 1<' in page
    assert 'href="/requests/?agent=AG7"' in page and 'href="/requests/?agent=AG7&amp;status=paid"' in page
    # Per currency, the configured one first; the bars are for the last 30 days, the paid ones on yesterday.
    assert re.findall(r'<figure class="chart-figure" data-currency="(\w+)"', page) == ["UGX", "USD"]
    collected, conversion = page.split('id="agent-conversion-figure"')
    assert "UGX: UGX 35,000 in 30 days" in collected and collected.count('class="bar"') == 60
    assert re.search(r'data-value="35000"><title>[^<]+: UGX 35,000</title>', collected)
    # Conversion per day of creation: yesterday 3 of 4 paid (the USD one counts too), today 0 of 1.
    bars = re.findall(r'<rect class="bar" [^>]*data-label="([^"]+)" data-value="(\d+)"', conversion)
    assert len(bars) == 30 and [value for _, value in bars[-2:]] == ["75", "0"]
    assert bars[-2][0].endswith("(3 of 4 paid)") and bars[-1][0].endswith("(0 of 1 paid)")
    assert sum(int(value) for _, value in bars) == 75


def test_an_agent_with_nothing_yet_shows_dashes(client, login_as, domain):
    agent = domain(agents.create_agent, "Amina", "+256772123456", "AG7", actor="test")
    login_as("viewer")
    stats = client.get(f"/agents/{agent.id}/stats", headers=HTMX).get_data(as_text=True)
    assert stats.startswith('<section id="agent-stats"') and 'hx-trigger="every 10s"' in stats
    assert re.search(r'data-stat="conversion">\s*<span class="value">—<', stats)
    assert "No request for AG7 in the last 30 days." in stats and 'id="agent-conversion"' not in stats
    assert client.get("/agents/999").status_code == 404
