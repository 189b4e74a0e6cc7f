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
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, g, jsonify, redirect, render_template, request
from jinja2 import DictLoader
from werkzeug.serving import make_server

from sandbox.portal_input import (
    CONFIG_FIELDS,
    FAULT_FIELDS,
    PAYMENT_FIELDS,
    STATUSES,
    BadInput,
    Payment,
    _checked,
    _flag,
    _labels,
    _number,
    _require,
)
from sandbox.portal_markup import SKINS, TEMPLATES

COOKIE = "portal_session"
CONTROL = "/_sandbox"
COUNTERS = ("logins", "failed_logins", "csrf_rejections", "login_redirects", "throttled",
            "errors_served")

NO_FAULTS: dict[str, Any] = {"rename_column": {}, "remove_column": [], "error_5xx": 0,
                             "error_5xx_code": 500, "status_429": 0, "slow_seconds": 0.0,
                             "refuse_logins": False}


def _money(amount: Decimal, currency: str, separate: bool) -> str:
    """'5,000.00' when a Currency column exists, else 'UGX 5,000' (cents only when present)."""
    if separate:
        return f"{amount:,.2f}"
    whole = amount == amount.to_integral_value()
    return f"{currency} {amount:,.0f}" if whole else f"{currency} {amount:,.2f}"


class Portal:
    """All state of one portal (payments, sessions, config, faults, counters) behind one lock."""

    def __init__(self, *, username: str, password: str, page_size: int, idle_timeout_s: float,
                 skin: str, now: Callable[[], float], seed_rows: int, currency: str | None = None):
        self.username, self.password, self.now = username, password, now
        self.lock = threading.RLock()
        self._start = {"skin": skin, "page_size": page_size, "idle_timeout_s": idle_timeout_s,
                       **({"currency": currency} if currency else {})}
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
             now: Callable[[], float] = time.time, seed_rows: int = 0, currency: str | None = None) -> Flask:
    """Build one portal; its state is `app.extensions["sandbox"]` (a `Portal`).

    `now` is the clock for created times and idle expiry. Raises BadInput on a bad setting.
    """
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.jinja_loader = DictLoader(TEMPLATES)
    app.extensions["sandbox"] = Portal(username=username, password=password, page_size=page_size,
                                       idle_timeout_s=idle_timeout_s, skin=skin, now=now,
                                       seed_rows=seed_rows, currency=currency)
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
