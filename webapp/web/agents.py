"""The agents pages: list with inline editing, create, (de)activate, the agent page, leads, CSV import.

Viewers read; staff change. Every change goes through webapp.domain.agents, whose
AgentError names the field that was refused; the page shows it next to that field.
Inline editing (static/agents.js): a click on a cell GETs an input in its place,
Enter or leaving the field POSTs it, Escape GETs the cell back unchanged.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from webapp.config import settings
from webapp.domain import agents, reports
from webapp.storage.models import Agent, Lead, PaymentRequest, Role
from webapp.web import charts
from webapp.web.access import access, actor
from webapp.web.htmx import is_partial_request, render
from webapp.web.listing import keyset_page

bp = Blueprint("agents", __name__, url_prefix="/agents")
EDITABLE = agents.FIELDS  # name, phone, code
RECENT_REQUESTS = 20


def _agent_or_404(agent_id: int) -> Agent:
    agent = Agent.get_or_none(Agent.id == agent_id)
    if agent is None:
        abort(404, f"There is no agent #{agent_id}.")
    return agent


def _list_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    query = Agent.select()
    q = (request.args.get("q") or "").strip()
    if q:
        query = query.where(Agent.code.contains(q) | Agent.name.contains(q) | Agent.phone.contains(q))
    page = keyset_page(query, Agent)
    return render("pages/agents/index.html", "partials/agents/table.html", status=status, listing=page,
                  endpoint="agents.index", q=q, form=form or {}, errors=errors or {})


@bp.get("/")
@access(Role.VIEWER)
def index():
    return _list_page()


@bp.post("/")
@access(Role.STAFF)
def create():
    form = {key: request.form.get(key, "") for key in EDITABLE}
    try:
        agent = agents.create_agent(form["name"], form["phone"], form["code"], actor=actor())
    except agents.AgentError as exc:
        return _list_page(form, {exc.field: exc.message}, status=400)
    flash(f"Agent {agent.code} ({agent.name}) added.", "success")
    return redirect(url_for("agents.index"))


# ---------------------------------------------------------------- inline editing


def _field(field: str) -> str:
    if field not in EDITABLE:
        abort(404)
    return field


def _cell(agent: Agent, field: str, *, editing: bool = False, value: str | None = None, error: str | None = None,
          status: int = 200):
    body = render_template("partials/agents/cell.html", agent=agent, field=field, editing=editing,
                           value=getattr(agent, field) if value is None else value, error=error)
    return body, status, {"Vary": "HX-Request"}


@bp.get("/<int:agent_id>/cell/<field>")
@access(Role.VIEWER)
def cell(agent_id: int, field: str):
    return _cell(_agent_or_404(agent_id), _field(field))


@bp.get("/<int:agent_id>/cell/<field>/edit")
@access(Role.STAFF)
def cell_editor(agent_id: int, field: str):
    return _cell(_agent_or_404(agent_id), _field(field), editing=True)


@bp.post("/<int:agent_id>/cell/<field>")
@access(Role.STAFF)
def cell_save(agent_id: int, field: str):
    agent, field = _agent_or_404(agent_id), _field(field)
    value = request.form.get("value", "")
    try:
        agent = agents.update_agent(agent.id, actor=actor(), **{field: value})
    except agents.AgentError as exc:
        # htmx swaps only 2xx answers: the editor with its error must come back as 200 to be seen.
        return _cell(agent, field, editing=True, value=value, error=exc.message,
                     status=200 if is_partial_request() else 400)
    if not is_partial_request():
        flash(f"Agent {agent.code} saved.", "success")
        return redirect(url_for("agents.index"))
    return _cell(agent, field)


@bp.post("/<int:agent_id>/active/<int:active>")
@access(Role.STAFF)
def set_active(agent_id: int, active: int):
    agent = agents.set_active(_agent_or_404(agent_id).id, bool(active), actor=actor())
    if is_partial_request():
        return render_template("partials/agents/row.html", agent=agent), 200, {"Vary": "HX-Request"}
    flash(f"Agent {agent.code} is {'active' if agent.is_active else 'inactive'}.", "success")
    return redirect(request.referrer or url_for("agents.index"))


# ---------------------------------------------------------------- the agent page


def _detail(agent: Agent, *, form: dict | None = None, errors: dict | None = None, status: int = 200):
    return render("pages/agents/detail.html", "partials/agents/stats.html", status=status, agent=agent,
                  form=form or {}, errors=errors or {}, **_stats_context(agent),
                  leads=agent.leads.order_by(Lead.name, Lead.id),
                  recent=(PaymentRequest.select().where(PaymentRequest.agent == agent.id)
                          .order_by(PaymentRequest.id.desc()).limit(RECENT_REQUESTS)))


def _stats_context(agent: Agent) -> dict:
    collected = reports.collected_per_day(30, agent_id=agent.id)
    currencies = reports.main_first(collected) or [settings().currency]
    chart_list = [
        (currency, sum(a for _, a in collected.get(currency, [])),
         charts.daily_chart(collected.get(currency) or [(d, 0) for d in reports.last_days(30)], currency,
                            chart_id=f"agent-collected-{currency}",
                            title=f"{agent.code}: {currency} collected per day, last 30 days"))
        for currency in currencies
    ]
    return {"stats": reports.agent_stats(agent), "charts": chart_list, "duration": reports.duration,
            "conversion": _conversion(agent)}


def _conversion(agent: Agent) -> dict | None:
    """Conversion per day of the requests the agent's customers were sent (paid of created, in %),
    with its figures; None when none was created in the window."""
    per_day = reports.agent_conversion_per_day(agent.id)
    if not any(created for _, created, _ in per_day):
        return None
    short, full = charts.day_labels([day for day, _, _ in per_day])
    rates = [round(100 * paid / created) if created else 0 for _, created, paid in per_day]
    chart = charts.bar_chart(
        list(zip(short, rates)), fmt=lambda rate: f"{rate:.0f} %", chart_id="agent-conversion",
        full_labels=[f"{label} ({paid} of {created} paid)" for label, (_, created, paid) in zip(full, per_day)],
        title=f"{agent.code}: share of each day's requests now paid, last {reports.PICTURE_DAYS} days")
    table = [(label, created, paid, f"{rate} %" if created else "—")
             for label, (_, created, paid), rate in zip(full, per_day, rates)]
    return {"chart": chart, "table": table, "days": reports.PICTURE_DAYS}


@bp.get("/<int:agent_id>")
@access(Role.VIEWER)
def detail(agent_id: int):
    return _detail(_agent_or_404(agent_id))


@bp.get("/<int:agent_id>/stats")
@access(Role.VIEWER)
def stats(agent_id: int):
    agent = _agent_or_404(agent_id)
    if not is_partial_request():  # the fragment's address opened as a page: the whole agent page
        return _detail(agent)
    return render("pages/agents/detail.html", "partials/agents/stats.html", agent=agent, **_stats_context(agent))


@bp.post("/<int:agent_id>")
@access(Role.STAFF)
def update(agent_id: int):
    agent = _agent_or_404(agent_id)
    form = {key: request.form.get(key, "") for key in EDITABLE}
    try:
        agents.update_agent(agent.id, actor=actor(), **form)
    except agents.AgentError as exc:
        return _detail(agent, form=form, errors={exc.field: exc.message}, status=400)
    flash(f"Agent {form['code'].strip()} saved.", "success")
    return redirect(url_for("agents.detail", agent_id=agent.id))


@bp.post("/<int:agent_id>/leads")
@access(Role.STAFF)
def add_lead(agent_id: int):
    agent = _agent_or_404(agent_id)
    lead_form = {"lead_name": request.form.get("lead_name", ""), "lead_phone": request.form.get("lead_phone", "")}
    try:
        lead, created = agents.add_lead(agent.id, lead_form["lead_name"], lead_form["lead_phone"], actor=actor())
    except agents.AgentError as exc:
        return _detail(agent, form=lead_form, errors={f"lead_{exc.field}": exc.message}, status=400)
    flash(f"Lead {lead.phone} {'added' if created else 'already belongs to ' + agent.code}.", "success")
    return redirect(url_for("agents.detail", agent_id=agent.id) + "#leads")


# ---------------------------------------------------------------- CSV import


@bp.get("/import")
@access(Role.STAFF)
def import_form():
    return render_template("pages/agents/import.html", report=None, error=None)


@bp.post("/import")
@access(Role.STAFF)
def import_upload():
    upload = request.files.get("file")
    kind = request.form.get("kind") or None
    if kind not in (None, "agents", "leads"):
        kind = None
    if upload is None or not upload.filename:
        return render_template("pages/agents/import.html", report=None, error="Choose a CSV file to import."), 400
    try:
        report = agents.import_csv(agents.decode(upload.read()), actor=actor(), kind=kind)
    except agents.AgentError as exc:
        return render_template("pages/agents/import.html", report=None, error=exc.message), 400
    return render_template("pages/agents/import.html", report=report, error=None, filename=upload.filename)
