"""Agents and their leads: create, edit, (de)activate, add leads, CSV import — each audited.

Every write is one transaction with its audit event. Phones are stored E.164, read
in the configured region (webapp.domain.phones); an agent's code is kept as the source
shows it (trimmed) and is unique. Bad input raises AgentError naming the field.

CSV import (`import_csv`): agents `name,phone,code`, leads `name,phone,agent_code`.
A header row is optional (then columns may come in any order); cells are trimmed;
every rejected line is reported with its number and reason and the rest is
imported. Agents are keyed by code and leads by (agent, phone), so importing the
same file again updates rows and never duplicates them.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from webapp.config import settings
from webapp.domain import audit, phones
from webapp.storage import db
from webapp.storage.models import Agent, Lead

MAX_NAME = 200
MAX_CODE = 64
FIELDS = ("name", "phone", "code")
COLUMNS = {"agents": ("name", "phone", "code"), "leads": ("name", "phone", "agent_code")}


class AgentError(ValueError):
    """Input that cannot be accepted; `field` names the field ("name", "phone", "code", "agent_code")."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def clean_name(raw: str | None, *, required: bool = True) -> str:
    name = " ".join((raw or "").split())
    if required and not name:
        raise AgentError("name", "Name: enter the agent's name.")
    if len(name) > MAX_NAME:
        raise AgentError("name", f"Name: at most {MAX_NAME} characters.")
    return name


def clean_phone(raw: str | None) -> str:
    """A WhatsApp number as E.164, read in the configured region; AgentError("phone") otherwise."""
    try:
        return phones.to_e164(raw, settings().phone_region)
    except phones.PhoneError as exc:
        text = exc.args[0]
        raise AgentError("phone", f"Phone: {text} (use e.g. +256772123456).") from None


def clean_code(raw: str | None, field_name: str = "code") -> str:
    code = (raw or "").strip()
    if not code:
        raise AgentError(field_name, "Code: enter the agent's code as the source shows it.")
    if len(code) > MAX_CODE or any(ch.isspace() for ch in code):
        raise AgentError(field_name, f"Code: {code[:80]!r} must be 1–{MAX_CODE} characters without spaces.")
    return code


def _refuse_taken(code: str, agent_id: int | None = None) -> None:
    query = Agent.select().where(Agent.code == code)
    if agent_id is not None:
        query = query.where(Agent.id != agent_id)
    if query.exists():
        raise AgentError("code", f"Code: another agent already has code {code!r}.")


def _subject(agent: Agent) -> str:
    return f"agent:{agent.code}"  # as webapp.domain.ledger names agents it creates


def create_agent(name: str, phone: str, code: str, *, actor: str) -> Agent:
    """A new active agent; AgentError for a bad field or a code already taken."""
    name, phone, code = clean_name(name), clean_phone(phone), clean_code(code)
    with db.transaction():
        _refuse_taken(code)
        agent = Agent.create(name=name, phone=phone, code=code)
        audit.record("agent.created", _subject(agent), actor=actor, name=name, phone=phone)
    return agent


def get_agent(agent_id: int) -> Agent:
    agent = Agent.get_or_none(Agent.id == agent_id)
    if agent is None:
        raise AgentError("agent", f"There is no agent #{agent_id}.")
    return agent


def update_agent(agent_id: int, *, actor: str, **changes: str) -> Agent:
    """Change some of name, phone, code (raw text, cleaned here); audited with old → new values."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise AgentError(sorted(unknown)[0], f"{sorted(unknown)[0]} cannot be edited.")
    cleaners = {"name": clean_name, "phone": clean_phone, "code": clean_code}
    clean = {key: cleaners[key](value) for key, value in changes.items()}
    with db.transaction():
        agent = get_agent(agent_id)
        if "code" in clean:
            _refuse_taken(clean["code"], agent.id)
        diff = {key: [getattr(agent, key), value] for key, value in clean.items() if getattr(agent, key) != value}
        if not diff:
            return agent
        Agent.update(**{key: new for key, (_, new) in diff.items()}).where(Agent.id == agent.id).execute()
        agent = Agent.get_by_id(agent.id)
        audit.record("agent.changed", _subject(agent), actor=actor, **diff)
    return agent


def set_active(agent_id: int, active: bool, *, actor: str) -> Agent:
    """Activate or deactivate an agent (an inactive agent gets no WhatsApp messages)."""
    with db.transaction():
        agent = get_agent(agent_id)
        if agent.is_active != active:
            Agent.update(is_active=active).where(Agent.id == agent.id).execute()
            audit.record("agent.activated" if active else "agent.deactivated", _subject(agent), actor=actor)
    return Agent.get_by_id(agent_id)


def add_lead(agent_id: int, name: str, phone: str, *, actor: str) -> tuple[Lead, bool]:
    """Add a lead to an agent, or rename the one with that phone. Returns (lead, created)."""
    name, phone = clean_name(name, required=False), clean_phone(phone)
    with db.transaction():
        agent = get_agent(agent_id)
        lead = Lead.get_or_none(Lead.agent == agent.id, Lead.phone == phone)
        if lead is None:
            lead = Lead.create(agent=agent.id, name=name, phone=phone)
            audit.record("lead.added", _subject(agent), actor=actor, lead=lead.id, name=name, phone=phone)
            return lead, True
        if name and lead.name != name:
            Lead.update(name=name).where(Lead.id == lead.id).execute()
            audit.record("lead.changed", _subject(agent), actor=actor, lead=lead.id, name=[lead.name, name])
    return Lead.get_by_id(lead.id), False


# ---------------------------------------------------------------- CSV import


@dataclass
class ImportReport:
    """What an import did: counts, and every rejected line as (line number, reason)."""

    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


def detect_kind(text: str) -> str:
    """"leads" when the header names agent_code, else "agents"."""
    first = next(csv.reader(io.StringIO(text)), [])
    return "leads" if "agent_code" in [c.strip().lower() for c in first] else "agents"


def decode(data: bytes) -> str:
    """Uploaded bytes as text (UTF-8, with or without BOM); AgentError("file") otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AgentError("file", f"The file is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8.") from None


def import_csv(text: str, *, actor: str, kind: str | None = None) -> ImportReport:
    """Import agents or leads (kind detected from the header when None); one transaction, one audit event."""
    kind = kind or detect_kind(text)
    if kind not in COLUMNS:
        raise AgentError("kind", f"kind must be agents or leads, got {kind!r}")
    report = ImportReport(kind)
    rows = list(csv_rows(text, COLUMNS[kind], report))
    seen: dict[str, int] = {}
    with db.transaction():
        for number, row in rows:
            try:
                key, apply = (_agent_line if kind == "agents" else _lead_line)(row)
            except AgentError as exc:
                report.rejected.append((number, exc.message))
                continue
            if key in seen:
                report.rejected.append((number, f"repeats line {seen[key]} ({key})"))
                continue
            seen[key] = number
            outcome = apply()
            setattr(report, outcome, getattr(report, outcome) + 1)
        report.rejected.sort()
        audit.record(f"{kind}.imported", f"import:{kind}", actor=actor, created=report.created,
                     updated=report.updated, unchanged=report.unchanged, rejected=len(report.rejected))
    return report


def csv_rows(text: str, columns: tuple[str, ...], report: ImportReport):
    """(line number, {column: trimmed text}) per data line; malformed lines go to report.rejected.

    Shared by the CSV imports (agents, leads, payers): a header row is optional.
    """
    reader = csv.reader(io.StringIO(text))
    order = list(columns)
    for row in reader:
        number = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        lowered = [c.lower() for c in cells]
        if number == 1 and set(columns) <= set(lowered):
            order = lowered  # a header: columns by name, in its order
            continue
        if len(cells) < len(columns):
            report.rejected.append((number, f"expected {len(columns)} columns ({','.join(columns)}), got {len(cells)}"))
            continue
        yield number, {name: cells[i] if i < len(cells) else "" for i, name in enumerate(order) if name in columns}


def _agent_line(row: dict[str, str]):
    """(key, apply) for one agent line; everything is validated before anything is written."""
    name, phone, code = clean_name(row["name"]), clean_phone(row["phone"]), clean_code(row["code"])

    def apply() -> str:
        agent = Agent.get_or_none(Agent.code == code)
        if agent is None:
            Agent.create(name=name, phone=phone, code=code)
            return "created"
        if (agent.name, agent.phone) == (name, phone):
            return "unchanged"
        Agent.update(name=name, phone=phone).where(Agent.id == agent.id).execute()
        return "updated"

    return code, apply


def _lead_line(row: dict[str, str]):
    name, phone = clean_name(row["name"], required=False), clean_phone(row["phone"])
    code = clean_code(row["agent_code"], "agent_code")
    agent = Agent.get_or_none(Agent.code == code)
    if agent is None:
        raise AgentError("agent_code", f"Agent code: no agent has code {code!r}.")

    def apply() -> str:
        lead = Lead.get_or_none(Lead.agent == agent.id, Lead.phone == phone)
        if lead is None:
            Lead.create(agent=agent.id, name=name, phone=phone)
            return "created"
        if not name or lead.name == name:
            return "unchanged"
        Lead.update(name=name).where(Lead.id == lead.id).execute()
        return "updated"

    return f"{code} {phone}", apply
