"""A wppconnect-server compatible WhatsApp gateway, in memory (contract:
shared/contracts/wppconnect.md). Used by the tests, the demo and the benchmarks.

    python -m sandbox.whatsapp --port 21465 --secret-key THISISMYSECURETOKEN

The wppconnect API it speaks, quirks included: `POST /api/<s>/<key>/generate-token`,
Bearer tokens (or `<s>:<token>` in the path), `start-session` (answers with the
*previous* state), `status-session`, `check-connection-session`, `qrcode-session`,
`close-session`, `logout-session`, `send-message`, `check-number-status/<phone>`,
`message-by-id/<id>`, `get-messages/<phone>`, `GET /api/<key>/show-all-sessions`,
`GET /healthz`; the
`session` key added to JSON answers to `Content-Type: application/json` requests,
and `onack` webhooks (ack 2 then 3) to the `webhook` given to start-session.
get-messages answers a chat oldest first (`count`, `direction`, `id` as WA-JS reads
them) and fails with 401, as the real controller does; for a chat that does not exist
its `error` carries WA-JS's `{"code": "chat_not_found"}` (inferred: wppconnect copies the
thrown error's own fields, and WA-JS's InvalidChat has `code` and `id`).

Sessions pair by themselves (INITIALIZING -> QRCODE -> CONNECTED, `step_seconds`
each) with `auto_pair=True`; otherwise they wait in QRCODE for a scan, and drop
after `qr_timeout` seconds as the real library's autoClose does. A number is "on
WhatsApp" when it is 8-15 digits without a leading 0 and was not marked unknown.

Control endpoints (no auth, JSON in and out):

    GET  /_sandbox/log[?phone=<digits>&session=<name>]
         -> the same as a page people read, newest first (the demo links it)
    GET  /_sandbox/messages[?phone=<digits>&session=<name>]
         -> {"messages": [{session, phone, to, body, id, ack, failed, time}]}
         every message accepted for sending, oldest first (acks update in place)
    POST /_sandbox/chat-message       {"phone": P, "body": B, "from_me": false, "age": S,
                                       "session": name}
         a message written outside the API into the chat with P, S seconds ago: by
         the customer, or (from_me) typed on our phone; get-messages shows it,
         /_sandbox/messages does not
    POST /_sandbox/reset              forget sessions, messages, numbers, faults
    POST /_sandbox/not-on-whatsapp    {"phones": ["256772000000", ...]}
    POST /_sandbox/faults             {"kind": K, "count": N?, "seconds": S?, "session": name?}
         applies to the next N sends that pass the gate (all of them without N):
           error       500 "Erro ao enviar a mensagem.", nothing sent
           stale       the same 500 while status-session still says CONNECTED
           timeout     message sent, but the answer is held for S seconds
           reset       message sent, then the connection is closed without an answer
           hang        nothing sent; the answer (that 500) comes after S seconds
           slow        S seconds' delay, then a normal send
           disconnect  the session drops (phone disconnected) -> 404 Disconnected
           ack_failed  201 with ack -1; the message is recorded as failed
         or to the next N get-messages calls that pass the gate:
           history_error    401 "Error on open list" (the page threw)
           history_timeout  the answer is held for S seconds
    GET|DELETE /_sandbox/faults       list or clear the faults
    POST /_sandbox/sessions/<name>/state  {"state": "CONNECTED"|"QRCODE"|...|null}
         force a state (null: no entry) and hold it there until scan/close/start
    POST /_sandbox/sessions/<name>/scan   pair a session showing its QR code
         (200 {"status": "CONNECTED"}, or 409 when there is no QR to scan)
"""
from __future__ import annotations

import argparse
import base64
import functools
import json
import socket
import time
from typing import Callable

from flask import Flask, Response, current_app, g, jsonify, render_template_string, request

from sandbox.whatsapp_state import (
    CLOSED,
    CONNECTED,
    DISCONNECTED,
    FAULT_KINDS,
    HISTORY_FAULTS,
    PNG_B64,
    QRCODE,
    SEND_ERROR,
    SEND_FAULTS,
    STATES,
    Fault,
    Refusal,
    SandboxState,
    contact_ids,
)

NOT_PRESENT = {"message": "Token is not present. Check your header and try again"}
BAD_TOKEN = {"error": "Check that the Session and Token are correct"}
CLOSED_OK = {"status": True, "message": "Session successfully closed"}


def make_app(secret_key: str = "THISISMYSECURETOKEN", *, auto_pair: bool = True,
             step_seconds: float = 0.2, now: Callable[[], float] = time.monotonic,
             qr_timeout: float | None = 60.0, ack_delays: tuple[float, float] | None = (0.5, 1.0),
             own_number: str = "256700000001", logout_seconds: float = 0.5) -> Flask:
    """A sandbox wppconnect server; its state is `app.extensions["sandbox"]`.

    `now` drives session steps; `ack_delays` (None: acks stay at 1) are real seconds
    before ack 2 and then ack 3; `logout_seconds` is how long logout-session takes.
    """
    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions["sandbox"] = SandboxState(
        secret_key, auto_pair=auto_pair, step_seconds=step_seconds, now=now,
        qr_timeout=qr_timeout, ack_delays=ack_delays, own_number=own_number,
        logout_seconds=logout_seconds)
    app.config["SANDBOX_STARTED"] = time.monotonic()
    app.after_request(_inject_session)
    app.register_error_handler(Refusal, lambda r: (jsonify(r.body), r.status))
    _session_routes(app)
    _message_routes(app)
    _control_routes(app)
    return app


def _state() -> SandboxState:
    return current_app.extensions["sandbox"]


def _inject_session(resp: Response) -> Response:
    # The real server's res.send wrapper keys off the *request's* exact Content-Type.
    # Control endpoints are ours, not wppconnect's: they stay clean.
    if request.headers.get("Content-Type") != "application/json" or not resp.is_json \
            or not request.path.startswith("/api/"):
        return resp
    data = resp.get_json(silent=True)
    if isinstance(data, dict) and "session" not in data:
        data["session"] = g.get("session_name", "")
        resp.set_data(json.dumps(data))
    return resp


def protected(view: Callable) -> Callable:
    """verifyToken: the view gets the session name, or the client gets a 401."""
    @functools.wraps(view)
    def wrapper(session: str, **kwargs):
        name, _, token = session.partition(":")
        if not token:
            words = request.headers.get("Authorization", "").split(" ")
            token = words[1] if len(words) > 1 else ""  # the first word is not checked
            if not token:
                return jsonify(NOT_PRESENT), 401
        if not _state().token_ok(name, token):
            return jsonify(BAD_TOKEN), 401
        g.session_name = name
        return view(name, **kwargs)
    return wrapper


def _body() -> dict:
    """The request body as Express parses it: JSON, or urlencoded form fields."""
    if request.is_json:
        if not request.content_length:
            return {}
        data = request.get_json()  # malformed JSON: werkzeug's 400 page, like Express
        return data if isinstance(data, dict) else {}
    return request.form.to_dict()


def _session_routes(app: Flask) -> None:
    @app.post("/api/<session>/<secretkey>/generate-token")
    def generate_token(session: str, secretkey: str):
        if secretkey != _state().secret_key:
            return jsonify(response=False, message="The SECRET_KEY is incorrect"), 400
        token = _state().new_token(session)
        return jsonify(status="success", session=session, token=token,
                       full=f"{session}:{token}"), 201

    @app.get("/api/<secretkey>/show-all-sessions")
    def show_all_sessions(secretkey: str):
        if secretkey != _state().secret_key:
            return jsonify(response=False, message="The token is incorrect"), 400
        with _state().lock:
            return jsonify(response=[s.name for s in _state().sessions.values() if s.linked])

    @app.post("/api/<session>/start-session")
    @protected
    def start_session(name: str):
        return jsonify(_state().start(name, _body().get("webhook")))

    @app.get("/api/<session>/status-session")
    @protected
    def status_session(name: str):
        return jsonify(_state().snapshot(name))

    @app.get("/api/<session>/check-connection-session")
    @protected
    def check_connection_session(name: str):
        # True whenever a live client exists, even a stale one: the real handler
        # only checks that asking the page does not throw.
        if _state().session(name).status == CONNECTED:
            return jsonify(status=True, message="Connected")
        return jsonify(status=False, message="Disconnected")

    @app.get("/api/<session>/qrcode-session")
    @protected
    def qrcode_session(name: str):
        status = _state().session(name).status
        if status in (None, CLOSED):
            return jsonify(status=None, message="Session not started. Please, use the "
                           "/start-session route, for initialization your session")
        if status != QRCODE:
            return jsonify(status=status, message="QRCode is not available...")
        return Response(base64.b64decode(PNG_B64), mimetype="image/png")

    @app.post("/api/<session>/close-session")
    @protected
    def close_session(name: str):
        if _state().close(name):
            return jsonify(CLOSED_OK)
        return jsonify(status=False, message="Error closing session", error={}), 500

    @app.post("/api/<session>/logout-session")
    @protected
    def logout_session(name: str):
        _state().require_connected(name)
        time.sleep(_state().logout_seconds)  # the real server answers ~0.5 s later
        _state().drop(name, unlink=True)
        return jsonify(CLOSED_OK)


def _recipients(name: str, body: dict) -> tuple[list[str], str | None]:
    """The statusConnection gate: (WhatsApp ids, first unknown number or None).

    Raises Refusal(404) when not connected, and for a phone that is not a string or
    a list of strings (the real server's misleading answer to a type error).
    """
    _state().require_connected(name)
    try:
        ids = contact_ids(body.get("phone") or [], is_group=bool(body.get("isGroup")),
                          is_newsletter=bool(body.get("isNewsletter")),
                          is_lid=bool(body.get("isLid")))
    except TypeError:
        raise Refusal(404, DISCONNECTED) from None
    skip_lookup = body.get("isGroup") or body.get("isNewsletter")
    for wid in ids:
        if not (skip_lookup or wid.endswith("@lid") or _state().exists(wid)):
            return ids, wid
    return ids, None


def _send(name: str, ids: list[str], text: str, *, failed: bool = False) -> list[dict]:
    return [_state().send(name, wid, text, failed=failed).wire() for wid in ids]


def _sent(messages: list[dict]) -> tuple[Response, int]:
    return jsonify(status="success", response=messages, mapper="return"), 201


def _message_routes(app: Flask) -> None:
    @app.post("/api/<session>/send-message")
    @protected
    def send_message(name: str):
        body = _body()
        ids, unknown = _recipients(name, body)
        text = str(body.get("message", ""))
        if unknown is not None:
            # The gate answers 400 but still lets the controller run: recipients
            # before the unknown one are sent, the unknown one throws and ends it.
            _send(name, ids[:ids.index(unknown)], text)
            raise Refusal(400, {"response": None, "status": "Connected",
                                "message": f"O número {unknown.split('@')[0]} não existe."})
        if not ids:
            if request.headers.get("Content-Type") == "application/json":
                return _sent([])  # the wrapper chokes on the 400 string; 201 wins
            return jsonify("Error sending message"), 400
        return _send_with_fault(name, ids, text)

    @app.get("/api/<session>/check-number-status/<phone>")
    @protected
    def check_number_status(name: str, phone: str):
        _recipients(name, _body())
        try:
            ids = contact_ids(phone)
        except TypeError:
            ids = []
        result = None
        for wid in ids:  # only the last result is returned
            result = _number_status(wid)
        return jsonify(status="success", response=result)

    @app.get("/api/<session>/get-messages/<phone>")
    @protected
    def get_messages(name: str, phone: str):
        _recipients(name, _body())
        fault = _state().take_fault(name, HISTORY_FAULTS)
        if fault and fault.kind == "history_error":
            raise Refusal(401, {**OPEN_LIST_ERROR, "error": {}})
        if fault and fault.kind == "history_timeout":
            time.sleep(fault.seconds)
        try:
            wid = contact_ids(phone)[0]  # the real route passes it on as a chat id
        except IndexError:
            wid = phone
        chat = _state().chat(name, wid)
        if chat is None:
            # WA-JS throws InvalidChat; its own `code` and `id` survive into `error`.
            raise Refusal(401, {**OPEN_LIST_ERROR, "error": {"code": "chat_not_found", "id": wid}})
        try:
            count = int(request.args.get("count", ""))
        except ValueError:
            count = 0
        page = _chat_page(chat, count or 20, request.args.get("direction", "before"), request.args.get("id"))
        return jsonify(status="success", response=[m.wire() for m in page])

    @app.get("/api/<session>/message-by-id/<message_id>")
    @protected
    def message_by_id(name: str, message_id: str):
        _state().require_connected(name)
        msg = _state().message(name, message_id)
        if msg is None:
            return jsonify(status="Error", response={
                "message": "Error retrieving information", "session": name, "log": {}}), 400
        return jsonify(status="Success", response={
            "message": "Information retrieved successfully.",
            "contact": msg.to.split("@")[0], "session": name, "data": msg.wire()}), 201


def _send_with_fault(name: str, ids: list[str], text: str):
    """Send to every id, through the next injected fault if there is one."""
    fault = _state().take_fault(name, SEND_FAULTS)
    kind = fault.kind if fault else None
    if kind == "disconnect":
        _state().drop(name, unlink=True)
        raise Refusal(404, DISCONNECTED)
    if kind in ("error", "stale"):
        raise Refusal(500, SEND_ERROR)
    if kind == "hang":
        time.sleep(fault.seconds)
        raise Refusal(500, SEND_ERROR)
    if kind == "slow":
        time.sleep(fault.seconds)
    messages = _send(name, ids, text, failed=kind == "ack_failed")
    if kind == "timeout":
        time.sleep(fault.seconds)  # sent already: a client that gives up cannot know
    if kind == "reset":
        _drop_connection()
    return _sent(messages)


def _drop_connection() -> None:
    """Close this request's connection unanswered (werkzeug then drops the response quietly)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        sock.shutdown(socket.SHUT_RDWR)


# get-messages' answer when the page throws: 401, not 5xx (DeviceController.getMessages).
OPEN_LIST_ERROR = {"status": "error", "response": "Error on open list"}


def _chat_page(chat: list, count: int, direction: str, anchor: str | None) -> list:
    """WA-JS getMessages over one chat (oldest first): the last `count` messages, or `count`
    before/after the message `anchor`; count < 0 means all of them."""
    if anchor is None:
        # The anchor is the chat's last message, itself included; "after" it there is nothing.
        return chat[-1:] if direction == "after" else chat[-count:] if count > 0 else list(chat)
    at = next((i for i, m in enumerate(chat) if m.id == anchor), None)
    if at is None:
        raise Refusal(401, {**OPEN_LIST_ERROR, "error": {"message": f"message {anchor} not found"}})
    if direction == "after":
        return chat[at + 1:at + 1 + count] if count > 0 else chat[at + 1:]
    return chat[max(0, at - count):at] if count > 0 else chat[:at]


def _number_status(wid: str) -> dict:
    user, _, server = wid.partition("@")
    if _state().exists(wid):
        return {"id": {"server": server, "user": user, "_serialized": wid},
                "isBusiness": False, "canReceiveMessage": True, "numberExists": True,
                "status": 200}
    # The real answer's id is a plain string when the number does not exist.
    return {"id": wid, "isBusiness": False, "canReceiveMessage": False,
            "numberExists": False, "status": 404}


ACK_WORDS = {-1: "failed", 0: "clock (queued)", 1: "sent", 2: "delivered", 3: "read", 4: "played"}
LOG_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox WhatsApp: messages received</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:1rem;max-width:60rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}td.body{white-space:pre-wrap}
.failed{color:#b91c1c}</style></head><body>
<h1>Sandbox WhatsApp: what it received</h1>
<p>{{ rows|length }} message(s), newest first; this page reloads every 5 s.
Filter: <code>?phone=256772123456</code>. As JSON: <a href="/_sandbox/messages">/_sandbox/messages</a>.</p>
<table><thead><tr><th>Time (UTC)</th><th>To</th><th>Message</th><th>Ack</th></tr></thead><tbody>
{% for m in rows %}<tr class="{{ 'failed' if m.failed else '' }}"><td>{{ m.when }}</td><td>+{{ m.phone }}</td>
<td class="body">{{ m.body }}</td><td>{{ 'failed' if m.failed else acks.get(m.ack, m.ack) }}</td></tr>
{% else %}<tr><td colspan="4">Nothing yet.</td></tr>{% endfor %}
</tbody></table></body></html>"""


def _control_routes(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify(uptime=time.monotonic() - app.config["SANDBOX_STARTED"],
                       message="OK", timestamp=int(time.time() * 1000))

    @app.get("/_sandbox/messages")
    def messages():
        args = request.args
        return jsonify(messages=_state().records(args.get("phone"), args.get("session")))

    @app.get("/_sandbox/log")
    def log_page():
        """Every message received for sending, newest first, as a page people read (the demo links
        it from Paywatch's WhatsApp session page); it reloads itself every 5 s."""
        rows = [{**m, "when": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m["time"]))}
                for m in reversed(_state().records(request.args.get("phone"), request.args.get("session")))]
        return render_template_string(LOG_PAGE, rows=rows, acks=ACK_WORDS)

    @app.post("/_sandbox/chat-message")
    def chat_message():
        spec = request.get_json(silent=True) or {}
        phone, body, age = spec.get("phone"), spec.get("body"), spec.get("age", 0)
        if not isinstance(phone, str) or not isinstance(body, str):
            return jsonify(error='expected {"phone": "<digits>", "body": "<text>"}'), 400
        if not isinstance(age, (int, float)) or age < 0:
            return jsonify(error="age must be a number of seconds >= 0"), 400
        ids = contact_ids(phone)
        if not ids:
            return jsonify(error="phone has no digits"), 400
        msg = _state().add_to_chat(spec.get("session") or "paywatch", ids[0], body,
                                   from_me=spec.get("from_me") is True, age=float(age))
        return jsonify(msg.wire()), 201

    @app.post("/_sandbox/reset")
    def reset():
        _state().reset()
        return jsonify(status="reset")

    @app.post("/_sandbox/not-on-whatsapp")
    def not_on_whatsapp():
        phones = (request.get_json(silent=True) or {}).get("phones")
        if not isinstance(phones, list):
            return jsonify(error='expected {"phones": [...]}'), 400
        return jsonify(phones=_state().mark_unknown(phones))

    @app.route("/_sandbox/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        state = _state()
        if request.method == "POST":
            return _add_fault(state, request.get_json(silent=True) or {})
        with state.lock:
            if request.method == "DELETE":
                state.faults.clear()
            return jsonify(faults=[f.as_dict() for f in state.faults])

    @app.post("/_sandbox/sessions/<name>/state")
    def force_state(name: str):
        status = (request.get_json(silent=True) or {}).get("state")
        if status is not None and status not in STATES:
            return jsonify(error=f"state must be null or one of {', '.join(STATES)}"), 400
        _state().force(name, status)
        return jsonify(_state().snapshot(name))

    @app.post("/_sandbox/sessions/<name>/scan")
    def scan(name: str):
        if not _state().scan(name):
            return jsonify(error="no QR code to scan", **_state().snapshot(name)), 409
        return jsonify(_state().snapshot(name))


def _add_fault(state: SandboxState, spec: dict):
    """Validate a fault spec strictly: a typo must not silently inject nothing."""
    kind, count = spec.get("kind"), spec.get("count")
    seconds, session = spec.get("seconds", 0), spec.get("session")
    if kind not in FAULT_KINDS:
        return jsonify(error=f"kind must be one of {', '.join(FAULT_KINDS)}"), 400
    if count is not None and (not isinstance(count, int) or count < 1):
        return jsonify(error="count must be a positive integer or absent"), 400
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return jsonify(error="seconds must be a number >= 0"), 400
    fault = Fault(kind, count, float(seconds), session)
    return jsonify(faults=state.add_fault(fault)), 201


def connect_session(url: str, session: str, secret_key: str, timeout: float = 10.0) -> str:
    """Client side, for tests, the demo and benchmarks: pair `session` on the server at `url`
    (token, start-session, wait for CONNECTED); returns the token."""
    import requests

    token = requests.post(f"{url}/api/{session}/{secret_key}/generate-token", timeout=5).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    requests.post(f"{url}/api/{session}/start-session", json={}, headers=auth, timeout=5)
    deadline = time.monotonic() + timeout
    while requests.get(f"{url}/api/{session}/status-session", headers=auth, timeout=5).json()["status"] != "CONNECTED":
        if time.monotonic() > deadline:
            raise RuntimeError(f"sandbox WhatsApp session {session!r} did not connect within {timeout} s")
        time.sleep(0.05)
    return token


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox WhatsApp server alone until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.whatsapp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=21465)
    parser.add_argument("--secret-key", default="THISISMYSECURETOKEN")
    parser.add_argument("--step-seconds", type=float, default=2.0)
    parser.add_argument("--no-auto-pair", action="store_true",
                        help="wait for POST /_sandbox/sessions/<name>/scan")
    args = parser.parse_args(argv)
    app = make_app(args.secret_key, auto_pair=not args.no_auto_pair,
                   step_seconds=args.step_seconds)
    from werkzeug.serving import make_server
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"sandbox WhatsApp (wppconnect) on http://{args.host}:{server.server_port}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
