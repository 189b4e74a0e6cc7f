"""A payment provider's merchant portal: the outside world Paywatch's portal scraper reads.

`make_app()` builds one portal; `python -m sandbox.portal --port 8101` serves it alone.
Pages (what a scraper sees): `/login` (form with a hidden CSRF field), `/payments?page=N`
(newest first, with a next-page link), `/logout`. Two markup skins, `classic` and
`ledger`, differ in ids, classes, labels, field names, date format and time zone.
Control endpoints (JSON, no auth) live under `/_sandbox/`: payments, faults, config,
sessions/expire, stats, stats/reset, reset. Nothing here imports `webapp` or `jobs`.
"""
from __future__ import annotations

import argparse
import copy
import math
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, current_app, g, jsonify, redirect, render_template, request
from jinja2 import DictLoader
from werkzeug.serving import make_server

STATUSES = ("Pending", "Completed", "Failed", "Expired", "Cancelled")
COLUMN_KEYS = ("id", "created", "customer", "phone", "agent", "amount", "currency", "status", "reference")
COOKIE = "portal_session"
CONTROL = "/_sandbox"
COUNTERS = ("logins", "failed_logins", "csrf_rejections", "login_redirects", "throttled",
            "errors_served")

SKINS: dict[str, dict[str, Any]] = {
    "classic": {
        "columns": ["id", "created", "customer", "phone", "agent", "amount", "status", "reference"],
        "labels": {"id": "ID", "created": "Created", "customer": "Customer", "phone": "Phone",
                   "agent": "Agent", "amount": "Amount", "currency": "Currency",
                   "status": "Status", "reference": "Reference"},
        "date_format": "%Y-%m-%d %H:%M:%S",
        "timezone": "Africa/Kampala",
        "currency": "UGX",
        "fields": {"username": "username", "password": "password", "csrf": "csrf_token"},
        "status_text": {},
    },
    "ledger": {
        "columns": ["created", "id", "reference", "customer", "phone", "amount", "currency",
                    "status", "agent"],
        "labels": {"id": "Txn No.", "created": "Date", "customer": "Payer", "phone": "MSISDN",
                   "agent": "Agent Code", "amount": "Amount", "currency": "Currency",
                   "status": "State", "reference": "Payment Ref"},
        "date_format": "%d/%m/%Y %H:%M",
        "timezone": "UTC",
        "currency": "UGX",
        "fields": {"username": "login", "password": "pin", "csrf": "authenticity_token"},
        "status_text": {"Pending": "PENDING", "Completed": "SUCCESS", "Failed": "FAILED",
                        "Expired": "EXPIRED", "Cancelled": "CANCELLED"},
    },
}
NO_FAULTS: dict[str, Any] = {"rename_column": {}, "remove_column": [], "error_5xx": 0,
                             "error_5xx_code": 500, "status_429": 0, "slow_seconds": 0.0,
                             "refuse_logins": False}

TEMPLATES = {
    "error.html": """<!doctype html><html><head><title>{{ code }} {{ title }}</title></head>
<body><h1>{{ code }} {{ title }}</h1><p class="message">{{ message }}</p></body></html>""",
    "classic/base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · AcmePay Merchant</title></head>
<body class="classic"><header class="topbar"><strong class="brand">AcmePay Merchant</strong>
{% if user %}<span class="who">Signed in as {{ user }}</span>
<a id="logout" href="/logout">Log out</a>{% endif %}</header>
<div class="container">{% block main %}{% endblock %}</div></body></html>""",
    "classic/login.html": """{% extends "classic/base.html" %}{% block main %}<h1>Sign in</h1>
{% if error %}<p class="alert alert-error" id="login-error">{{ error }}</p>{% endif %}
<form id="login-form" method="post" action="/login">
<input type="hidden" name="{{ fields.csrf }}" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<label>Username <input type="text" name="{{ fields.username }}" autocomplete="username"></label>
<label>Password <input type="password" name="{{ fields.password }}"></label>
<button type="submit">Sign in</button></form>{% endblock %}""",
    "classic/payments.html": """{% extends "classic/base.html" %}{% block main %}<h1>Payments</h1>
<p class="summary">{{ total }} payments</p>
<div class="table-wrap"><table id="payments" class="table payments">
<thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr class="payment-row">{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% else %}<tr class="empty"><td colspan="{{ headers|length }}">No payments yet.</td></tr>
{% endfor %}</tbody></table></div>
<div class="pager">{% if prev_url %}<a rel="prev" class="prev" href="{{ prev_url }}">Previous</a>{% endif %}
<span class="page">Page {{ page }} of {{ pages }}</span>
{% if next_url %}<a rel="next" class="next" href="{{ next_url }}">Next</a>{% endif %}</div>
{% endblock %}""",
    "ledger/base.html": """<!doctype html>
<html><head><title>Ledger | {{ title }}</title></head><body id="ledger">
<nav id="account-bar">{% if user %}{{ user }} &middot; <a class="signout" href="/logout">Sign out</a>
{% endif %}</nav><section id="content">{% block main %}{% endblock %}</section></body></html>""",
    "ledger/login.html": """{% extends "ledger/base.html" %}{% block main %}<h2>Merchant login</h2>
{% if error %}<p class="flash">{{ error }}</p>{% endif %}
<form class="signin" name="signin" method="post" action="/login">
<input type="hidden" name="{{ fields.csrf }}" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<p><label for="login">Email or phone</label><input id="login" name="{{ fields.username }}"></p>
<p><label for="pin">PIN</label><input id="pin" type="password" name="{{ fields.password }}"></p>
<p><input type="submit" value="Log in"></p></form>{% endblock %}""",
    "ledger/payments.html": """{% extends "ledger/base.html" %}{% block main %}<h2>Transactions</h2>
<table id="txn-list" class="grid">
<tr class="head">{% for h in headers %}<th scope="col">{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr class="txn">{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table><ul class="pagination">
{% if prev_url %}<li><a class="page-link" aria-label="Previous" href="{{ prev_url }}">&lsaquo;</a></li>{% endif %}
<li class="current">{{ page }}</li>
{% if next_url %}<li><a class="page-link" aria-label="Next" href="{{ next_url }}">&rsaquo;</a></li>{% endif %}
</ul>{% endblock %}""",
}


class BadInput(ValueError):
    """A control request the portal cannot accept; answered with 400 and the message."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise BadInput(message)


@dataclass
class Payment:
    """One row of the portal's payments table (amount in major units, created as epoch s)."""

    id: str
    created: float
    customer: str
    phone: str
    agent: str
    amount: Decimal
    currency: str
    status: str
    reference: str
    seq: int = field(default=0, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain data: amount as a decimal string, created as ISO 8601 UTC."""
        data = {k: v for k, v in asdict(self).items() if k != "seq"}
        data["amount"] = f"{self.amount:.2f}"
        data["created"] = datetime.fromtimestamp(self.created, timezone.utc).isoformat()
        return data


def _text(value: Any, name: str = "value") -> str:
    _require(isinstance(value, str), f"{name}: expected a string, got {value!r}")
    return value


def _amount(value: Any, name: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadInput(f"{name}: not a number: {value!r}") from None
    _require(amount.is_finite() and amount > 0 and not isinstance(value, bool),
             f"{name}: must be a positive number, got {value!r}")
    return amount.quantize(Decimal("0.01"))


def _when(value: Any, name: str = "created") -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        moment = datetime.fromisoformat(_text(value, name))
    except ValueError:
        raise BadInput(f"{name}: not an ISO 8601 time: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _status(value: Any, name: str = "status") -> str:
    _require(value in STATUSES, f"{name}: one of {', '.join(STATUSES)}, got {value!r}")
    return value


def _currency(value: Any, name: str = "currency") -> str:
    _require(isinstance(value, str) and len(value) == 3 and value.isalpha(),
             f"{name}: a 3-letter code, got {value!r}")
    return value.upper()


def _number(low: float, high: float, cast: type = float) -> Callable[[Any, str], Any]:
    """A checker for a number in [low, high]; `cast=int` also refuses fractions."""
    def check(value: Any, name: str) -> Any:
        ok = isinstance(value, int if cast is int else (int, float)) and not isinstance(value, bool)
        _require(ok and low <= value <= high, f"{name}: a number from {low} to {high}, got {value!r}")
        return cast(value)
    return check


def _shaped(test: Callable[[Any], bool], message: str, convert: Callable = lambda v: v):
    """A checker that refuses a value failing `test` with `message`, else returns convert(value)."""
    def check(value: Any, name: str) -> Any:
        _require(bool(test(value)), f"{name}: {message}, got {value!r}")
        return convert(value)
    return check


def _zone(value: Any, name: str) -> str:
    try:
        ZoneInfo(_text(value, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"{name}: unknown time zone {value!r}") from None
    return value


def _strings(kind: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, kind) and all(isinstance(x, str) and x for x in (
        v.values() if isinstance(v, dict) else v))


_flag = _shaped(lambda v: isinstance(v, bool), "must be true or false")
_labels = _shaped(lambda v: _strings(dict)(v) and set(v) <= set(COLUMN_KEYS),
                  "an object of column key -> header text", dict)
PAYMENT_FIELDS: dict[str, Callable[..., Any]] = {
    "id": _text, "created": _when, "customer": _text, "phone": _text, "agent": _text,
    "amount": _amount, "currency": _currency, "status": _status, "reference": _text}
CONFIG_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "page_size": _number(1, 1000, int), "idle_timeout_s": _number(0.001, 10**6),
    "timezone": _zone, "date_format": _text, "currency": _currency,
    "columns": _shaped(lambda v: _strings(list)(v) and v and set(v) <= set(COLUMN_KEYS)
                       and len(set(v)) == len(v), f"distinct keys from {COLUMN_KEYS}", list)}
FAULT_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "rename_column": _shaped(_strings(dict), "an object of header text -> new text", dict),
    "remove_column": _shaped(lambda v: isinstance(v, str) or _strings(list)(v),
                             "a header text or a list of them",
                             lambda v: [v] if isinstance(v, str) else list(v)),
    "error_5xx": _number(0, 10**6, int), "error_5xx_code": _number(500, 599, int),
    "status_429": _number(0, 10**6, int), "slow_seconds": _number(0, 120), "refuse_logins": _flag}


def _checked(fields: dict[str, Callable[..., Any]], data: Any, what: str) -> dict[str, Any]:
    """`data` (a JSON object) with every value checked by `fields`; raises BadInput."""
    _require(isinstance(data, dict), f"{what}: expected a JSON object")
    unknown = sorted(set(data) - set(fields))
    _require(not unknown, f"{what}: unknown fields {', '.join(unknown)}")
    return {key: fields[key](value, key) for key, value in data.items()}


def _money(amount: Decimal, currency: str, separate: bool) -> str:
    """'5,000.00' when a Currency column exists, else 'UGX 5,000' (cents only when present)."""
    if separate:
        return f"{amount:,.2f}"
    whole = amount == amount.to_integral_value()
    return f"{currency} {amount:,.0f}" if whole else f"{currency} {amount:,.2f}"


class Portal:
    """All state of one portal (payments, sessions, config, faults, counters) behind one lock."""

    def __init__(self, *, username: str, password: str, page_size: int, idle_timeout_s: float,
                 skin: str, now: Callable[[], float], seed_rows: int):
        self.username, self.password, self.now = username, password, now
        self.lock = threading.RLock()
        self._start = {"skin": skin, "page_size": page_size, "idle_timeout_s": idle_timeout_s}
        self._seed_rows = seed_rows
        self.config: dict[str, Any] = {}  # replaced whole, never edited: readable without the lock
        self.reset()

    def reset(self, seed_rows: int | None = None) -> None:
        """Back to the start state: seeded payments, start config, no sessions, faults or counts."""
        with self.lock:
            self.payments: list[Payment] = []
            self.sessions: dict[str, dict[str, Any]] = {}
            self.faults: dict[str, Any] = copy.deepcopy(NO_FAULTS)
            self.configure(self._start)
            self._seq = 0
            self.reset_stats()
            self._seed(self._seed_rows if seed_rows is None else seed_rows)

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self.lock:
            self.counts: Counter[str] = Counter()

    def configure(self, data: Any) -> dict[str, Any]:
        """Apply config keys (skin first: it resets the markup settings) all or nothing."""
        _require(isinstance(data, dict), "config: expected a JSON object")
        with self.lock:
            new = copy.deepcopy(self.config)
            if "skin" in data:
                _require(data["skin"] in SKINS, f"skin: one of {', '.join(SKINS)}")
                new.update(copy.deepcopy(SKINS[data["skin"]]), skin=data["skin"])
            rest = {k: v for k, v in data.items() if k not in ("skin", "labels", "currency_column")}
            new.update(_checked(CONFIG_FIELDS, rest, "config"))
            if "labels" in data:
                new["labels"].update(_labels(data["labels"], "labels"))
            if "currency_column" in data:
                cols = [c for c in new["columns"] if c != "currency"]
                if _flag(data["currency_column"], "currency_column"):
                    cols.insert(cols.index("amount") + 1 if "amount" in cols else len(cols), "currency")
                new["columns"] = cols
            self.config = new
            return copy.deepcopy(new)

    def set_faults(self, data: Any) -> dict[str, Any]:
        """Set the named faults (the others stay) all or nothing; returns every fault."""
        with self.lock:
            self.faults = {**self.faults, **_checked(FAULT_FIELDS, data, "faults")}
            return copy.deepcopy(self.faults)

    def clear_faults(self) -> dict[str, Any]:
        """Remove every fault."""
        with self.lock:
            self.faults = copy.deepcopy(NO_FAULTS)
            return copy.deepcopy(self.faults)

    def gate(self, path: str, url: str) -> tuple[int | None, float]:
        """Count one page fetch and draw its faults: (error status to answer or None, stall s)."""
        with self.lock:
            self.counts["path " + path] += 1
            self.counts["url " + url] += 1
            stall, code = float(self.faults["slow_seconds"]), None
            if self.faults["status_429"] > 0:
                self.faults["status_429"] -= 1
                self.counts["throttled"] += 1
                code = 429
            elif self.faults["error_5xx"] > 0:
                self.faults["error_5xx"] -= 1
                self.counts["errors_served"] += 1
                code = self.faults["error_5xx_code"]
            return code, stall

    def note(self, counter: str) -> None:
        """Add one to a named counter."""
        with self.lock:
            self.counts[counter] += 1

    def stats(self) -> dict[str, Any]:
        """Page fetches by path and by URL, logins, failed logins and the other counters."""
        with self.lock:
            by = {kind: {k.split(" ", 1)[1]: n for k, n in self.counts.items() if k.startswith(kind)}
                  for kind in ("path ", "url ")}
            return {"fetches": by["path "], "fetches_by_url": by["url "],
                    "pages_fetched": sum(by["path "].values()),
                    "sessions_live": sum(1 for s in self.sessions.values() if s["user"]),
                    **{name: self.counts[name] for name in COUNTERS}}

    def open_session(self, user: str | None = None) -> dict[str, Any]:
        """Start a session (anonymous before login) with its own CSRF token."""
        with self.lock:
            sid = secrets.token_urlsafe(24)
            self.sessions[sid] = {"user": user, "csrf": secrets.token_urlsafe(32), "seen": self.now()}
            return {**self.sessions[sid], "sid": sid}

    def session(self, sid: str | None) -> dict[str, Any] | None:
        """The live session for `sid`, its idle timer refreshed; None if missing or idle too long."""
        with self.lock:
            found = self.sessions.get(sid or "")
            if found and self.now() - found["seen"] > self.config["idle_timeout_s"]:
                del self.sessions[sid]
                found = None
            if found is None:
                return None
            found["seen"] = self.now()
            return {**found, "sid": sid}

    def end_sessions(self, sid: str | None = None) -> int:
        """End session `sid` (log out), or every session when None; returns how many ended."""
        with self.lock:
            ended = [sid] if sid else list(self.sessions)
            return sum(self.sessions.pop(s, None) is not None for s in ended)

    def log_in(self, sid: str | None, token: str, username: str, password: str) -> tuple[str, str | None]:
        """Check a login post: ("ok", new sid) or ("csrf" | "refused" | "denied", None)."""
        with self.lock:
            found = self.sessions.get(sid or "")
            if not (found and token and secrets.compare_digest(token.encode(), found["csrf"].encode())):
                self.counts["csrf_rejections"] += 1
                return "csrf", None
            good = secrets.compare_digest(username.encode(), self.username.encode())
            good &= secrets.compare_digest(password.encode(), self.password.encode())
            if self.faults["refuse_logins"] or not good:
                self.counts["failed_logins"] += 1
                return ("refused" if self.faults["refuse_logins"] else "denied"), None
            del self.sessions[sid]
            self.counts["logins"] += 1
            return "ok", self.open_session(username)["sid"]

    def add(self, items: list[Any]) -> list[dict[str, Any]]:
        """Add payments (all or none); the server picks id 'TX000123' and created unless given."""
        with self.lock:
            parsed = [_checked(PAYMENT_FIELDS, item, "payment") for item in items]
            _require(all("amount" in p for p in parsed), "payment: amount is required")
            given = [p["id"] for p in parsed if p.get("id")]
            taken = {p.id for p in self.payments}
            _require(len(set(given)) == len(given) and not taken & set(given), "payment id exists")
            return [self._insert(fields).to_json() for fields in parsed]

    def _insert(self, fields: dict[str, Any]) -> Payment:
        taken = {p.id for p in self.payments}
        self._seq += 1
        while not fields.get("id") and f"TX{self._seq:06d}" in taken:
            self._seq += 1
        row = {"customer": "", "phone": "", "agent": "", "reference": "", "status": "Pending",
               "currency": self.config["currency"], "created": float(math.floor(self.now())),
               **fields, "id": fields.get("id") or f"TX{self._seq:06d}"}
        self.payments.append(Payment(**row, seq=self._seq))
        return self.payments[-1]

    def change(self, pid: str, data: Any) -> dict[str, Any]:
        """Change fields of payment `pid`; raises LookupError if unknown, BadInput if invalid."""
        fields = _checked(PAYMENT_FIELDS, data, "payment")
        _require("id" not in fields, "payment: id cannot change")
        with self.lock:
            payment = next((p for p in self.payments if p.id == pid), None)
            if payment is None:
                raise LookupError(pid)
            for key, value in fields.items():
                setattr(payment, key, value)
            return payment.to_json()

    def listing(self) -> list[dict[str, Any]]:
        """Every payment, newest first, as plain data."""
        with self.lock:
            return [p.to_json() for p in self._newest_first()]

    def _newest_first(self) -> list[Payment]:
        return sorted(self.payments, key=lambda p: (p.created, p.seq), reverse=True)

    def page(self, number: int) -> dict[str, Any]:
        """Page `number` (1-based) as text: headers, rows of cells, page, pages, total."""
        with self.lock:
            size, ordered = self.config["page_size"], self._newest_first()
            shown = [(key, self.config["labels"][key]) for key in self.config["columns"]]
            shown = [(key, self.faults["rename_column"].get(label, label))
                     for key, label in shown if label not in self.faults["remove_column"]]
            chunk = ordered[(number - 1) * size:number * size]
            return {"headers": [label for _, label in shown], "page": number,
                    "rows": [[self._cell(p, key) for key, _ in shown] for p in chunk],
                    "pages": max(1, math.ceil(len(ordered) / size)), "total": len(ordered)}

    def _cell(self, payment: Payment, key: str) -> str:
        cfg = self.config
        if key == "created":
            local = datetime.fromtimestamp(payment.created, ZoneInfo(cfg["timezone"]))
            return local.strftime(cfg["date_format"])
        if key == "amount":
            return _money(payment.amount, payment.currency, "currency" in cfg["columns"])
        if key == "status":
            return cfg["status_text"].get(payment.status, payment.status)
        return str(getattr(payment, key))

    def _seed(self, count: int) -> None:
        """Add `count` deterministic, realistic payments, 7 minutes apart, the last one now."""
        rng = random.Random(20261122)
        first = ["Aisha", "Brian", "Grace", "John", "Mary", "Peter", "Sarah", "David", "Esther"]
        last = ["Nakato", "Okello", "Namubiru", "Mugisha", "Achieng", "Ssempala", "Atim", "Kato"]
        start = math.floor(self.now()) - count * 420
        for i in range(count):
            self._insert({
                "created": start + (i + 1) * 420,
                "customer": f"{rng.choice(first)} {rng.choice(last)}",
                "phone": f"07{rng.choice([70, 71, 72, 74, 75, 77, 78])}{rng.randrange(10**6):06d}",
                "agent": f"AG{rng.randrange(1, 13):02d}",
                "amount": Decimal(rng.choice([5000, 10000, 20000, 25000, 50000, 75000, 150000])),
                "status": rng.choices(STATUSES, weights=[3, 10, 1, 1, 1])[0],
                "reference": f"INV-{10000 + i}"})


# -- pages -----------------------------------------------------------------------------
def _portal() -> Portal:
    return current_app.extensions["sandbox"]


def _here() -> str:
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/payments"


def _page(name: str, **context: Any) -> str:
    cfg = _portal().config
    return render_template(f"{cfg['skin']}/{name}.html", fields=cfg["fields"], **context)


def _error(code: int, title: str, message: str, headers: dict[str, str] | None = None):
    return render_template("error.html", code=code, title=title, message=message), code, headers or {}


def _gate():
    """Before every page: count it, apply faults, load the session into `g.session`."""
    if request.path.startswith(CONTROL + "/"):
        return None
    status, stall = _portal().gate(request.path, _here())
    if stall:
        time.sleep(stall)  # the slow-page fault: a real stall a client's timeout can hit
    if status == 429:
        return _error(429, "Too Many Requests", "Slow down and retry later.", {"Retry-After": "1"})
    if status:
        return _error(status, "Server Error", "Something went wrong on our side.")
    g.session = _portal().session(request.cookies.get(COOKIE))
    return None


def _with_cookie(response, sid: str):
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Lax")
    return response


def login_form():
    """The login page; a logged-in visitor goes straight on to `next` or /payments."""
    if g.session and g.session["user"]:
        return redirect(_safe_next(request.args.get("next")))
    session = g.session or _portal().open_session()
    html = _page("login", title="Sign in", csrf=session["csrf"], next=request.args.get("next", ""))
    return _with_cookie(current_app.make_response(html), session["sid"])


def login_post():
    """Check CSRF (400 if missing/wrong) then credentials; success redirects with a new session."""
    portal, form = _portal(), request.form
    fields = portal.config["fields"]
    outcome, sid = portal.log_in(g.session and g.session["sid"], form.get(fields["csrf"], ""),
                                 form.get(fields["username"], ""), form.get(fields["password"], ""))
    if outcome == "csrf":
        return _error(400, "Bad Request", "The CSRF token is missing or invalid.")
    if sid is None:
        error = ("Sign-in is temporarily unavailable. Try again later." if outcome == "refused"
                 else "Invalid username or password.")
        return _page("login", title="Sign in", csrf=g.session["csrf"], next=form.get("next", ""),
                     error=error)
    return _with_cookie(redirect(_safe_next(form.get("next"))), sid)


def logout():
    """End the session and go to the login page."""
    if g.session:
        _portal().end_sessions(g.session["sid"])
    response = redirect("/login")
    response.delete_cookie(COOKIE)
    return response


def payments():
    """The payments table, newest first; without a live session, 302 to /login?next=…."""
    if not (g.session and g.session["user"]):
        _portal().note("login_redirects")
        return redirect("/login?next=" + quote(_here(), safe=""))
    arg = request.args.get("page", "1")
    number = max(1, int(arg)) if arg.isdigit() else 1
    data = _portal().page(number)
    return _page("payments", title="Payments", user=g.session["user"],
                 prev_url=f"/payments?page={number - 1}" if number > 1 else None,
                 next_url=f"/payments?page={number + 1}" if number < data["pages"] else None, **data)


# -- control endpoints (JSON, no auth) ---------------------------------------------------
control = Blueprint("sandbox_control", __name__, url_prefix=CONTROL)


@control.errorhandler(BadInput)
def _bad_input(error: BadInput):
    return jsonify(error=str(error)), 400


def _body() -> Any:
    data = request.get_json(silent=True)
    _require(data is not None, "expected a JSON body")
    return data


@control.route("/payments", methods=["GET", "POST"])
def control_payments():
    """GET: every payment. POST: one object, a list, or {"payments": [...]} → 201 with the rows."""
    if request.method == "GET":
        return jsonify(payments=_portal().listing())
    data = _body()
    items = data["payments"] if isinstance(data, dict) and "payments" in data else data
    return jsonify(payments=_portal().add(items if isinstance(items, list) else [items])), 201


@control.route("/payments/<pid>", methods=["POST", "PATCH"])
def control_change_payment(pid: str):
    """Change fields of one payment (status, amount, …); 404 if unknown."""
    try:
        return jsonify(payment=_portal().change(pid, _body()))
    except LookupError:
        return jsonify(error=f"no payment {pid}"), 404


@control.route("/faults", methods=["GET", "POST", "DELETE"])
def control_faults():
    """GET: the faults. POST: set some. DELETE: clear all."""
    portal = _portal()
    if request.method == "DELETE":
        return jsonify(faults=portal.clear_faults())
    return jsonify(faults=portal.set_faults(_body() if request.method == "POST" else {}))


@control.route("/config", methods=["GET", "POST"])
def control_config():
    """GET: the config. POST: change page_size, columns, labels, skin, idle_timeout_s, …."""
    return jsonify(config=_portal().configure(_body() if request.method == "POST" else {}))


@control.post("/sessions/expire")
def control_expire_sessions():
    return jsonify(expired=_portal().end_sessions())


@control.route("/stats", methods=["GET"])
@control.route("/stats/reset", methods=["POST"])
def control_stats():
    if request.method == "POST":
        _portal().reset_stats()
    return jsonify(_portal().stats())


@control.post("/reset")
def control_reset():
    """Back to the start state; optional body {"seed_rows": n}."""
    data = request.get_json(silent=True)
    seed = data.get("seed_rows") if isinstance(data, dict) else None
    _portal().reset(None if seed is None else _number(0, 100_000, int)(seed, "seed_rows"))
    return jsonify(ok=True)


def make_app(*, username: str = "demo", password: str = "demo-pass", page_size: int = 20,
             idle_timeout_s: float = 300, skin: str = "classic",
             now: Callable[[], float] = time.time, seed_rows: int = 0) -> Flask:
    """Build one portal; its state is `app.extensions["sandbox"]` (a `Portal`).

    `now` is the clock for created times and idle expiry. Raises BadInput on a bad setting.
    """
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.jinja_loader = DictLoader(TEMPLATES)
    app.extensions["sandbox"] = Portal(username=username, password=password, page_size=page_size,
                                       idle_timeout_s=idle_timeout_s, skin=skin, now=now,
                                       seed_rows=seed_rows)
    app.before_request(_gate)
    app.add_url_rule("/", "home", lambda: redirect("/payments"))
    app.add_url_rule("/login", "login_form", login_form, methods=["GET"])
    app.add_url_rule("/login", "login_post", login_post, methods=["POST"])
    app.add_url_rule("/logout", "logout", logout)
    app.add_url_rule("/payments", "payments", payments)
    app.register_blueprint(control)
    return app


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox.portal [--port 8101] …`: serve one portal until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.portal", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-pass")
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--idle-timeout", type=float, default=300, help="seconds")
    parser.add_argument("--skin", choices=sorted(SKINS), default="classic")
    parser.add_argument("--seed-rows", type=int, default=45)
    args = parser.parse_args(argv)
    app = make_app(username=args.username, password=args.password, page_size=args.page_size,
                   idle_timeout_s=args.idle_timeout, skin=args.skin, seed_rows=args.seed_rows)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"portal sandbox: http://{args.host}:{server.server_port}/login (user {args.username!r}, "
          f"password {args.password!r}; control under {CONTROL}/)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
