"""An ioTec-Pay-compatible collections gateway (contract: shared/contracts/iotec.md).

One server plays both hosts: the identity host (`POST /connect/token`) and the Pay
API (`/api/collections/...`). Control endpoints under `/_sandbox/` (no auth) let
tests and the demo steer it. Run alone with `python -m sandbox.gateway --port 8102`.

Progression rule: a collection is `Pending` when created, becomes `SentToVendor`
`advance_after_s` seconds after creation and reaches its outcome `advance_after_s`
later. The clock (`now=`) is read on every request, on `POST /_sandbox/advance` and
by the ticker that `main()` starts; a stopped clock means a frozen gateway.
"""
from __future__ import annotations

import argparse
import base64
import functools
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import requests
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from sandbox.server import ServerThread

log = logging.getLogger(__name__)

STATUSES = ("Pending", "SentToVendor", "Success", "Failed", "AwaitingApproval",
            "RolledBack", "Scheduled", "Cancelled", "Rejected")
FINAL = frozenset({"Success", "Failed", "RolledBack", "Cancelled", "Rejected"})
CALLBACK_STATUSES = frozenset({"SentToVendor", "Success", "Failed"})
OUTCOMES = ("Success", "Failed", "Pending", "SentToVendor", "Cancelled", "Rejected")
TEST_PAYERS = {"011177777": "Success", "011177799": "Failed",
               "011177778": "Pending", "011177779": "SentToVendor"}
AIRTEL_PREFIXES = ("070", "074", "075", "020")
CURRENCIES = ("UGX", "ITX", "USD")
MIN_AMOUNT = 500
DEFAULT_WALLET_ID = "7d4c1f0e-2b8a-4e63-9c15-5a0f3e9b6d21"
STATUS_MESSAGES = {
    "Pending": "Request is being processed",
    "SentToVendor": "Request sent to vendor, awaiting payer approval",
    "Success": "Transaction completed successfully",
    "Failed": "Transaction failed: payer declined or did not approve in time",
    "RolledBack": "Transaction was rolled back",
    "Cancelled": "Transaction was cancelled",
    "Rejected": "Transaction was rejected",
}
FAULT_MODES = ("error", "drop", "delay")
CALLBACK_KEYS = ("url", "header_name", "header_value")
STATS = ("token_requests", "tokens_issued", "collects", "status_reads",
         "callbacks_sent", "callbacks_failed", "faults_injected")


def local_number(payer: str) -> str | None:
    """`07…`/`011…` (10 digits) or `256…` (12 digits, `+` allowed) → `0XXXXXXXXX`; else None."""
    digits = re.sub(r"[\s+-]", "", payer)
    if re.fullmatch(r"256\d{9}", digits):
        return "0" + digits[3:]
    return digits if re.fullmatch(r"0\d{9}", digits) else None


def vendor_for(local: str) -> str:
    """`Mock` for the sandbox test numbers, `Airtel` by prefix, otherwise `Mtn`."""
    if local.startswith("0111"):
        return "Mock"
    return "Airtel" if local.startswith(AIRTEL_PREFIXES) else "Mtn"


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO-8601 UTC with milliseconds and `Z`, as .NET writes it."""
    if ts is None:
        return None
    stamp = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


@dataclass
class Collection:
    """One collection; `view()` is the contract's CollectionViewModel."""

    id: str
    created: float
    fields: dict
    outcome: str
    status: str = "Pending"
    last_updated: float | None = None
    processed_at: float | None = None
    vendor_txn: str | None = None
    held: bool = False  # a forced status stops the automatic progression

    def set_status(self, status: str, at: float) -> None:
        self.status, self.last_updated = status, at
        if status in FINAL and self.processed_at is None:
            self.processed_at = at
        if status == "Success" and self.vendor_txn is None:
            self.vendor_txn = str(secrets.randbelow(10**11)).zfill(11)

    def view(self) -> dict:
        amount = self.fields["amount"]
        charge, vendor_charge = (0, 0) if amount is None else (round(amount * 0.02, 2), round(amount * 0.015, 2))
        return {
            "id": self.id, "createdAt": iso(self.created), "category": "MobileMoney",
            "status": self.status, "paymentChannel": "Api",
            "statusCode": self.status.lower(), "statusMessage": STATUS_MESSAGES.get(self.status, ""),
            **{k: self.fields[k] for k in ("externalId", "currency", "payer", "payerName",
                                           "payerNote", "payeeNote", "wallet", "vendor")},
            "amount": None if amount is None else _number(amount), "vendorTransactionId": self.vendor_txn,
            "transactionCharge": _number(charge), "vendorCharge": _number(vendor_charge),
            "totalTransactionCharge": _number(round(charge + vendor_charge, 2)),
            "chargeModel": None, "createdBy": self.fields["createdBy"],
            "lastUpdated": iso(self.last_updated), "processedAt": iso(self.processed_at),
            "transactions": [], "cardRedirectUrl": None, "redirectUrl": self.fields["redirectUrl"],
        }


@dataclass(eq=False)
class Gateway:
    """All sandbox state; every method takes `lock`, so the threaded server is safe."""

    client_id: str
    client_secret: str
    wallet_id: str
    token_ttl_s: float
    advance_after_s: float
    default_outcome: str
    callback: dict  # the wallet's collection callback: url, header_name, header_value
    now: Callable[[], float]
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._initial = (self.default_outcome, dict(self.callback))
        self.released = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Forget collections, tokens, outcomes, faults and stats; release delayed answers."""
        with self.lock:
            self.collections: dict[str, Collection] = {}
            self.tokens: dict[str, float] = {}
            self.outcomes: dict[str, str] = {}
            self.faults: list[dict] = []
            self.stats = dict.fromkeys(STATS, 0)
            self.default_outcome = self._initial[0]
            self.callback = dict(self._initial[1])
            self.released.set()
            self.released = threading.Event()

    def count(self, name: str) -> None:
        with self.lock:
            self.stats[name] += 1

    def issue_token(self) -> dict:
        """A JWT-looking opaque bearer token valid for `token_ttl_s` seconds."""
        with self.lock:
            issued = self.now()
            claims = {"client_id": self.client_id, "jti": secrets.token_hex(8),
                      "iat": int(issued), "exp": int(issued + self.token_ttl_s)}
            parts = [{"alg": "RS256", "typ": "at+jwt"}, claims]
            token = ".".join([*(_b64(json.dumps(p).encode()) for p in parts),
                              _b64(secrets.token_bytes(32))])
            self.tokens[token] = issued + self.token_ttl_s
            self.stats["tokens_issued"] += 1
        return {"access_token": token, "expires_in": _number(self.token_ttl_s),
                "token_type": "Bearer", "scope": "profile email"}

    def token_valid(self, token: str) -> bool:
        with self.lock:
            return self.now() < self.tokens.get(token, float("-inf"))

    def expire_tokens(self) -> int:
        with self.lock:
            expired, self.tokens = len(self.tokens), {}
        return expired

    def outcome_for(self, local: str) -> str:
        """Control override, else the contract's test-number table, else the default outcome."""
        if local in self.outcomes:
            return self.outcomes[local]
        return TEST_PAYERS.get(local[:9], self.default_outcome) if len(local) == 10 else self.default_outcome

    def create(self, fields: dict, local: str) -> dict:
        """Record a new Pending collection; returns its view."""
        with self.lock:
            fields = {**fields, "vendor": vendor_for(local),
                      "wallet": {"id": self.wallet_id, "name": "Sandbox wallet"},
                      "createdBy": str(uuid.uuid5(uuid.NAMESPACE_URL, self.client_id))}
            c = Collection(str(uuid.uuid4()), self.now(), fields, self.outcome_for(local))
            self.collections[c.id] = c
            self.stats["collects"] += 1
            return c.view()

    def find(self, *, id: str | None = None, external_id: str | None = None) -> dict | None:
        """The view by ioTec id, or of the newest collection with that externalId (ioTec
        leaves reuse undefined); None when unknown. Counts as a status read."""
        with self.lock:
            self.stats["status_reads"] += 1
            if id is not None:
                c = self.collections.get(id)
            else:
                c = next((c for c in reversed(self.collections.values())
                          if c.fields["externalId"] == external_id), None)
            return c.view() if c else None

    def advance_due(self) -> int:
        """Apply the progression rule at the current clock; callbacks go out in the background."""
        with self.lock:
            now, bodies = self.now(), []
            for c in self.collections.values():
                bodies += self._step(c, now)
            self._send(bodies)
        return len(bodies)

    def _step(self, c: Collection, now: float) -> list[dict]:
        bodies, due = [], c.created + self.advance_after_s
        if c.held:
            return bodies
        if c.status == "Pending" and c.outcome != "Pending" and now >= due:
            c.set_status("SentToVendor", due)
            bodies.append(c.view())
        due += self.advance_after_s
        if c.status == "SentToVendor" and c.outcome != "SentToVendor" and now >= due:
            c.set_status(c.outcome, due)
            bodies += [c.view()] if c.outcome in CALLBACK_STATUSES else []
        return bodies

    def force(self, id: str, status: str, *, at: float | None = None, amount=...) -> dict | None:
        """Set a status now (or as of unix time `at`) and stop the progression; callbacks as for
        a natural change. `amount` (a number, or None to leave the field out as a broken
        gateway might) replaces the amount reported. Returns the new view, or None for an unknown id."""
        with self.lock:
            c = self.collections.get(id)
            if c is None:
                return None
            c.held = True
            if amount is not ...:
                c.fields["amount"] = amount
            c.set_status(status, self.now() if at is None else at)
            self._send([c.view()] if status in CALLBACK_STATUSES else [])
            return c.view()

    def take_fault(self, path: str) -> dict | None:
        """Consume one use of the first armed fault whose `path` prefix matches."""
        with self.lock:
            for fault in self.faults:
                if path.startswith(fault["path"]):
                    fault["count"] -= 1
                    self.faults = [f for f in self.faults if f["count"] > 0]
                    self.stats["faults_injected"] += 1
                    return fault
        return None

    def _send(self, bodies: list[dict]) -> None:
        url, name, value = (self.callback[k] for k in CALLBACK_KEYS)
        if bodies and url:
            headers = {name: value or ""} if name else {}
            threading.Thread(target=self._deliver, args=(url, headers, bodies),
                             name="sandbox-gateway-callback", daemon=True).start()

    def _deliver(self, url: str, headers: dict, bodies: list[dict]) -> None:
        for body in bodies:
            try:
                requests.post(url, json=body, headers=headers, timeout=5).raise_for_status()
                self.count("callbacks_sent")
            except requests.RequestException as exc:
                log.warning("callback for collection %s to %s failed: %s", body["id"], url, exc)
                self.count("callbacks_failed")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def gateway() -> Gateway:
    return current_app.extensions["sandbox"]


def api_error(message: str, code: str = "BadRequest", status: int = 400) -> tuple[Response, int]:
    """The contract's ApiErrorResponse."""
    return jsonify(message=message, code=code), status


def problem(errors: dict[str, list[str]]) -> Response:
    """An ASP.NET ValidationProblemDetails answer (400, application/problem+json)."""
    resp = jsonify(type="https://tools.ietf.org/html/rfc9110#section-15.5.1",
                   title="One or more validation errors occurred.", status=400, errors=errors,
                   traceId=f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00")
    resp.status_code, resp.mimetype = 400, "application/problem+json"
    return resp


api = Blueprint("iotec", __name__)
control = Blueprint("control", __name__, url_prefix="/_sandbox")


@api.before_app_request
def _advance_and_maybe_fail() -> Response | tuple | None:
    gw = gateway()
    gw.advance_due()
    if request.path.startswith("/_sandbox"):
        return None
    g.fault = gw.take_fault(request.path)
    if g.fault and g.fault["mode"] == "error":
        return api_error("Sandbox injected failure", "ServiceUnavailable", g.fault["status"])
    return None


@api.after_app_request
def _drop_or_delay(resp: Response) -> Response:
    fault = g.get("fault")
    if fault and fault["mode"] == "delay":
        gateway().released.wait(fault["delay_s"])
    elif fault and fault["mode"] == "drop":
        sock = request.environ.get("werkzeug.socket")
        if sock is None:  # not under werkzeug: the closest thing is a gateway error
            return Response(status=502)
        sock.shutdown(socket.SHUT_RDWR)  # the work is done; the answer is lost
    return resp


@api.post("/connect/token")
def token() -> tuple[Response, int] | Response:
    """Client credentials (form or HTTP Basic) → token; RFC 6749 errors as 400."""
    gw = gateway()
    gw.count("token_requests")
    auth = request.authorization
    client_id = auth.username if auth and auth.type == "basic" else request.form.get("client_id")
    secret = auth.password if auth and auth.type == "basic" else request.form.get("client_secret")
    if (client_id, secret) != (gw.client_id, gw.client_secret):
        return jsonify(error="invalid_client"), 400
    if request.form.get("grant_type") != "client_credentials":
        return jsonify(error="unsupported_grant_type"), 400
    return jsonify(gw.issue_token())


def bearer_required(view: Callable) -> Callable:
    """401 with an empty body unless the request carries a live bearer token."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not gateway().token_valid(token.strip()):
            return Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        return view(*args, **kwargs)
    return wrapped


def _validate_amount(body: dict) -> Response | None:
    amount = body.get("amount")
    if amount is None:
        return problem({"Amount": ["The Amount field is required."]})
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        return problem({"$.amount": ["The JSON value could not be converted to System.Double. "
                                     "Path: $.amount"]})
    return None


@api.post("/api/collections/collect")
@bearer_required
def collect() -> tuple[Response, int] | Response:
    """Validate per contract §2.2/§2.7, then 200 with a Pending CollectionViewModel."""
    body, gw = request.get_json(silent=True), gateway()
    if not isinstance(body, dict):
        return problem({"$": ["The JSON value could not be converted to CollectionRequest."]})
    if (bad := _validate_amount(body)) is not None:
        return bad
    payer = body.get("payer")
    if not isinstance(payer, str) or not payer.strip():
        return api_error("Payer is required")
    if (local := local_number(payer)) is None:
        return api_error("Invalid payer phone number")
    if body["amount"] < MIN_AMOUNT:
        return api_error(f"Amount must be at least {MIN_AMOUNT}")
    if body.get("walletId") not in (None, gw.wallet_id):
        return api_error("Invalid ioTec wallet")
    if body.get("currency", "UGX") not in CURRENCIES:
        return api_error("Invalid currency")
    ext = body.get("externalId")
    fields = {"externalId": None if ext is None else str(ext), "amount": body["amount"],
              "currency": body.get("currency", "UGX"), "payer": payer,
              **{k: body.get(k) for k in ("payerName", "payerNote", "payeeNote", "redirectUrl")}}
    return jsonify(gw.create(fields, local))


def _found(view: dict | None) -> tuple[Response, int] | Response:
    return jsonify(view) if view else api_error("Transaction not found", "NotFound", 404)


@api.get("/api/collections/status/<id>")
@bearer_required
def status(id: str):
    """200 CollectionViewModel by ioTec id; 404 when unknown."""
    return _found(gateway().find(id=id))


@api.get("/api/collections/external-id/<path:external_id>")
@bearer_required
def by_external_id(external_id: str):
    """200 CollectionViewModel by externalId (newest when reused); 404 when unknown."""
    return _found(gateway().find(external_id=external_id))


@control.get("/transactions")
def transactions():
    """All collections, oldest first, each with the outcome it is heading for."""
    with gateway().lock:
        return jsonify(transactions=[{**c.view(), "sandboxOutcome": c.outcome}
                                     for c in gateway().collections.values()])


@control.post("/transactions/<id>/status")
def force_status(id: str):
    """`{"status": <RequestStatus>, "at"?: unix seconds, "amount"?: number or null}` → the collection
    has that status (processed at `at`, default now, reporting `amount`) and stops progressing."""
    body = request.get_json(silent=True) or {}
    new = body.get("status")
    if new not in STATUSES:
        return api_error(f"status must be one of {', '.join(STATUSES)}")
    at = body.get("at")
    if at is not None and not isinstance(at, (int, float)):
        return api_error("at must be unix seconds")
    amount = body["amount"] if "amount" in body else ...
    if amount is not ... and amount is not None and not isinstance(amount, (int, float)):
        return api_error("amount must be a number or null")
    return _found(gateway().force(id, new, at=at, amount=amount))


@control.route("/outcomes", methods=["GET", "POST"])
def outcomes():
    """POST `{"payer"?, "outcome"}`: outcome for that payer's future collects, or the default."""
    gw = gateway()
    if request.method == "POST":
        body = request.get_json(silent=True) or {}
        if body.get("outcome") not in OUTCOMES:
            return api_error(f"outcome must be one of {', '.join(OUTCOMES)}")
        local = local_number(str(body["payer"])) if body.get("payer") else None
        if body.get("payer") and local is None:
            return api_error("Invalid payer phone number")
        with gw.lock:
            if local:
                gw.outcomes[local] = body["outcome"]
            else:
                gw.default_outcome = body["outcome"]
    with gw.lock:
        return jsonify(default=gw.default_outcome, payers=dict(gw.outcomes))


@control.post("/tokens/expire")
def expire_tokens():
    return jsonify(expired=gateway().expire_tokens())


@control.route("/callback", methods=["GET", "PUT"])
def callback():
    """PUT `{"url", "header_name", "header_value"}` (url null disables callbacks)."""
    gw = gateway()
    if request.method == "PUT":
        body = request.get_json(silent=True) or {}
        with gw.lock:
            gw.callback = {k: body.get(k) for k in CALLBACK_KEYS}
    return jsonify(gw.callback)


@control.route("/faults", methods=["GET", "POST"])
def faults():
    """POST `{"mode": error|drop|delay, "count"=1, "path"="/", "status"=503, "delay_s"=30}`.

    `error` answers `status` without doing the work; `drop` does the work, then closes
    the connection unanswered; `delay` does the work, then holds the answer `delay_s`.
    """
    gw = gateway()
    if request.method == "POST":
        body = request.get_json(silent=True) or {}
        if body.get("mode") not in FAULT_MODES:
            return api_error(f"mode must be one of {', '.join(FAULT_MODES)}")
        fault = {"mode": body["mode"], "count": int(body.get("count", 1)),
                 "path": body.get("path", "/"), "status": int(body.get("status", 503)),
                 "delay_s": float(body.get("delay_s", 30))}
        with gw.lock:
            gw.faults.append(fault)
    with gw.lock:
        return jsonify(faults=list(gw.faults))


@control.post("/advance")
def advance():
    """Apply the progression at the current clock (every request does this too)."""
    return jsonify(callbacks=gateway().advance_due())


@control.post("/reset")
def reset():
    gateway().reset()
    return jsonify(ok=True)


@control.get("/stats")
def stats():
    with gateway().lock:
        return jsonify(gateway().stats)


def make_app(*, client_id: str = "sandbox-client", client_secret: str = "sandbox-secret",
             wallet_id: str = DEFAULT_WALLET_ID, token_ttl_s: float = 300,
             advance_after_s: float = 3.0, default_outcome: str = "Success",
             callback_url: str | None = None, callback_header_name: str | None = None,
             callback_header_value: str | None = None,
             now: Callable[[], float] = time.time) -> Flask:
    """Build the gateway app; state lives in `app.extensions["sandbox"]` (a `Gateway`).

    Raises ValueError for an unknown `default_outcome` or a negative duration.
    """
    if default_outcome not in OUTCOMES:
        raise ValueError(f"default_outcome must be one of {', '.join(OUTCOMES)}")
    if token_ttl_s <= 0 or advance_after_s < 0:
        raise ValueError("token_ttl_s must be > 0 and advance_after_s >= 0")
    app = Flask(__name__)
    app.extensions["sandbox"] = Gateway(
        client_id, client_secret, wallet_id, token_ttl_s, advance_after_s, default_outcome,
        dict(zip(CALLBACK_KEYS, (callback_url, callback_header_name, callback_header_value))), now)
    app.register_blueprint(api)
    app.register_blueprint(control)
    return app


def start_ticker(app: Flask, interval_s: float = 0.25) -> threading.Event:
    """Advance the gateway's clock-driven states in the background; set the event to stop."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval_s):
            app.extensions["sandbox"].advance_due()

    threading.Thread(target=tick, name="sandbox-gateway-ticker", daemon=True).start()
    return stop


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox.gateway [--port 8102] …`: serve until interrupted."""
    p = argparse.ArgumentParser(prog="python -m sandbox.gateway", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8102)
    p.add_argument("--advance-after", type=float, default=3.0, metavar="SECONDS")
    p.add_argument("--default-outcome", choices=OUTCOMES, default="Success")
    for name in ("client-id", "client-secret", "wallet-id", *(f"callback-{k}" for k in CALLBACK_KEYS)):
        p.add_argument(f"--{name.replace('_', '-')}")
    args = vars(p.parse_args(argv))
    logging.basicConfig(level=logging.INFO)
    host, port = args.pop("host"), args.pop("port")
    app = make_app(advance_after_s=args.pop("advance_after"),
                   **{k: v for k, v in args.items() if v is not None})
    server, stop = ServerThread(app, host, port).start(), start_ticker(app)
    print(f"ioTec sandbox gateway on {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stop.set()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
