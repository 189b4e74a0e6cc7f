"""The sandbox WhatsApp server follows wppconnect-server's contract, quirks included.

Every test talks HTTP to a real server thread. Session steps run on a hand-driven
clock (`now=`), so most tests never wait; the few that watch background work
(auto-pairing, acks, webhooks) poll for a condition with a deadline.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import bcrypt
import pytest
import requests
from flask import Flask, request

from sandbox.server import ServerThread
from sandbox.whatsapp import make_app
from sandbox.whatsapp_state import contact_ids

SECRET = "THISISMYSECURETOKEN"
STEP = 1.0  # on the hand-driven clock: costs no real time
PHONE = "256772123456"
DISCONNECTED = {"response": None, "status": "Disconnected",
                "message": "A sessão do WhatsApp não está ativa."}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Gateway:
    """A thin client for one sandbox server: API calls, control calls, the clock."""

    def __init__(self, url: str, clock: Clock | None = None):
        self.url, self.clock, self._tokens = url, clock, {}

    def token(self, session: str = "paywatch") -> str:
        if session not in self._tokens:
            r = requests.post(f"{self.url}/api/{session}/{SECRET}/generate-token", timeout=5)
            self._tokens[session] = r.json()["token"]
        return self._tokens[session]

    def api(self, method: str, path: str, session: str = "paywatch", **kwargs):
        headers = kwargs.pop("headers", {"Authorization": f"Bearer {self.token(session)}"})
        return requests.request(method, f"{self.url}/api/{session}/{path}",
                                headers=headers, timeout=kwargs.pop("timeout", 5), **kwargs)

    def control(self, method: str, path: str, **kwargs):
        return requests.request(method, f"{self.url}/_sandbox/{path}", timeout=5, **kwargs)

    def status(self, session: str = "paywatch") -> str:
        return self.api("GET", "status-session", session).json()["status"]

    def connect(self, session: str = "paywatch", **body) -> None:
        self.api("POST", "start-session", session, json=body)
        self.clock.advance(2 * STEP)
        assert self.status(session) == "CONNECTED"

    def send(self, phone, message: str = "Payment received", **kwargs):
        return self.api("POST", "send-message", json={"phone": phone, "message": message},
                        **kwargs)

    def messages(self, **params) -> list[dict]:
        return self.control("GET", "messages", params=params).json()["messages"]

    def chat(self, phone: str = PHONE, *, timeout: float = 5, **params):
        """GET get-messages/<phone> with `params` in the query string."""
        return self.api("GET", f"get-messages/{phone}", params=params, timeout=timeout)


def wait_until(probe, timeout: float = 5.0):
    """Call `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def serve():
    """Start sandbox servers built with make_app(**options); stop them afterwards."""
    servers = []

    def start(app) -> str:
        servers.append(ServerThread(app).start())
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def shared(clock):
    # One server for the module: stopping a werkzeug server takes its 0.5 s poll.
    app = make_app(SECRET, step_seconds=STEP, now=clock, ack_delays=(0.02, 0.02),
                   logout_seconds=0)
    with ServerThread(app) as server:
        yield Gateway(server.url, clock)


@pytest.fixture
def wa(shared) -> Gateway:
    """The shared server, reset to nothing started, nothing sent, no faults."""
    assert shared.control("POST", "reset").status_code == 200
    return shared


@pytest.fixture
def connected(wa) -> Gateway:
    wa.connect()
    return wa


class Hooks:
    """A webhook receiver: collects JSON posts, wakes waiters on each one."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.arrived = threading.Condition()
        self.app = Flask("hooks")
        self.app.post("/hook")(self._receive)

    def _receive(self):
        with self.arrived:
            self.events.append(request.get_json())
            self.arrived.notify_all()
        return "", 204

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.events) >= count, timeout):
                pytest.fail(f"{count} webhook calls expected, got {self.events}")
            return list(self.events)


# -- tokens and authentication -----------------------------------------------------

def test_it_issues_a_bcrypt_token_bound_to_the_session(wa):
    r = requests.post(f"{wa.url}/api/paywatch/{SECRET}/generate-token", timeout=5)
    body = r.json()
    assert r.status_code == 201
    assert body["status"] == "success" and body["session"] == "paywatch"
    assert body["full"] == f"paywatch:{body['token']}"
    assert "/" not in body["token"] and "+" not in body["token"]
    raw = body["token"].replace("_", "/").replace("-", "+")
    assert bcrypt.checkpw(f"paywatch{SECRET}".encode(), raw.encode())


def test_it_refuses_a_token_when_the_secret_key_is_wrong(wa):
    r = requests.post(f"{wa.url}/api/paywatch/WRONG/generate-token", timeout=5)
    assert r.status_code == 400
    assert r.json() == {"response": False, "message": "The SECRET_KEY is incorrect"}


def test_it_refuses_a_token_for_another_session(wa):
    r = wa.api("GET", "status-session", "other",
               headers={"Authorization": f"Bearer {wa.token('paywatch')}"})
    assert r.status_code == 401
    assert r.json() == {"error": "Check that the Session and Token are correct"}


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer "])
def test_it_says_the_token_is_missing_without_a_second_word(wa, header):
    headers = {} if header is None else {"Authorization": header}
    r = wa.api("GET", "status-session", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "Token is not present. Check your header and try again"}


def test_it_reads_only_the_second_word_and_accepts_the_raw_bcrypt_form(wa):
    raw = wa.token().replace("_", "/").replace("-", "+")
    for header in (f"Anything {wa.token()}", f"Bearer {raw}"):
        r = wa.api("GET", "status-session", headers={"Authorization": header})
        assert r.status_code == 200, header


def test_it_accepts_the_full_session_and_token_in_the_path(wa):
    r = requests.get(f"{wa.url}/api/paywatch:{wa.token()}/status-session", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "CLOSED"


def test_it_adds_the_session_key_only_when_the_request_is_exactly_json(wa):
    assert "session" not in wa.api("GET", "status-session").json()
    assert wa.api("POST", "start-session", json={}).json()["session"] == "paywatch"
    refused = wa.api("POST", "start-session", json={}, headers={"Authorization": "x"})
    assert refused.json()["session"] == ""
    charset = wa.api("POST", "close-session", data="{}",
                     headers={"Authorization": f"Bearer {wa.token()}",
                              "Content-Type": "application/json; charset=utf-8"})
    assert "session" not in charset.json()


# -- session lifecycle ---------------------------------------------------------------

def test_start_session_answers_with_the_previous_state(wa):
    first = wa.api("POST", "start-session", json={})
    assert first.status_code == 200
    assert first.json() == {"status": "CLOSED", "qrcode": None, "session": "paywatch"}
    assert wa.api("POST", "start-session", json={}).json()["status"] == "INITIALIZING"
    wa.clock.advance(STEP)
    waiting = wa.api("GET", "status-session").json()
    assert waiting["status"] == "QRCODE" and waiting["version"] == "2.10.4"
    assert waiting["qrcode"].startswith("data:image/png;base64,") and waiting["urlcode"]
    wa.clock.advance(STEP)
    assert wa.api("POST", "start-session", json={}).json()["status"] == "CONNECTED"


def test_it_pairs_by_itself_after_step_seconds(serve):
    wa = Gateway(serve(make_app(SECRET, step_seconds=0.02)))
    wa.api("POST", "start-session", json={})
    wait_until(lambda: wa.status() == "CONNECTED")


def test_it_waits_for_a_scan_when_auto_pair_is_off(serve, clock):
    wa = Gateway(serve(make_app(SECRET, auto_pair=False, step_seconds=STEP, now=clock)),
                 clock)
    assert wa.control("POST", "sessions/paywatch/scan").status_code == 409
    wa.api("POST", "start-session", json={})
    clock.advance(10 * STEP)
    assert wa.status() == "QRCODE"
    scanned = wa.control("POST", "sessions/paywatch/scan")
    assert scanned.status_code == 200 and scanned.json()["status"] == "CONNECTED"
    assert wa.status() == "CONNECTED"


def test_an_unscanned_qr_code_closes_the_session_after_qr_timeout(serve, clock):
    app = make_app(SECRET, auto_pair=False, step_seconds=STEP, now=clock, qr_timeout=60)
    wa = Gateway(serve(app), clock)
    wa.api("POST", "start-session", json={})
    clock.advance(STEP + 60)
    assert wa.status() == "CLOSED"
    assert wa.api("POST", "close-session").status_code == 500  # the entry was dropped


def test_check_connection_is_true_only_once_connected(wa):
    wa.api("POST", "start-session", json={})
    assert wa.api("GET", "check-connection-session").json() == {
        "status": False, "message": "Disconnected"}
    wa.clock.advance(2 * STEP)
    r = wa.api("GET", "check-connection-session")
    assert r.status_code == 200 and r.json() == {"status": True, "message": "Connected"}


def test_qrcode_session_serves_png_bytes_only_while_waiting_for_a_scan(wa):
    assert wa.api("GET", "qrcode-session").json()["status"] is None
    wa.api("POST", "start-session", json={})
    wa.clock.advance(STEP)
    png = wa.api("GET", "qrcode-session")
    assert png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    wa.clock.advance(STEP)
    assert wa.api("GET", "qrcode-session").json() == {
        "status": "CONNECTED", "message": "QRCode is not available..."}


def test_close_session_fails_for_a_session_never_started(wa):
    r = wa.api("POST", "close-session")
    assert r.status_code == 500
    assert r.json()["status"] is False and r.json()["message"] == "Error closing session"


def test_close_session_keeps_the_pairing_for_the_next_start(connected):
    assert connected.api("POST", "close-session").json() == {
        "status": True, "message": "Session successfully closed"}
    assert connected.status() == "CLOSED"
    assert connected.api("POST", "close-session").status_code == 200  # already reset
    connected.api("POST", "start-session", json={})
    connected.clock.advance(STEP)
    assert connected.status() == "CONNECTED"  # no QR code needed


def test_close_session_answers_500_while_still_waiting_for_a_scan(wa):
    wa.api("POST", "start-session", json={})
    assert wa.api("POST", "close-session").status_code == 500
    assert wa.status() == "CLOSED"


def test_logout_needs_a_connected_session_and_unlinks_the_phone(wa):
    refused = wa.api("POST", "logout-session")
    assert refused.status_code == 404 and refused.json() == DISCONNECTED
    wa.connect()
    r = wa.api("POST", "logout-session")
    assert r.status_code == 200 and r.json()["status"] is True
    assert wa.status() == "CLOSED"
    wa.api("POST", "start-session", json={})
    wa.clock.advance(STEP)
    assert wa.status() == "QRCODE"  # a new scan is needed


# -- the statusConnection gate and phone rules ---------------------------------------

def test_it_refuses_to_send_when_the_session_is_not_connected(wa):
    wa.api("POST", "start-session", json={})
    r = wa.send(PHONE)
    assert r.status_code == 404
    assert r.json() == {**DISCONNECTED, "session": "paywatch"}
    assert wa.messages() == []


def test_it_sends_a_message_and_answers_201_with_the_message(connected):
    r = connected.send(PHONE, "Hello *Amina*")
    body = r.json()
    assert r.status_code == 201
    assert body["status"] == "success" and body["mapper"] == "return"
    assert body["session"] == "paywatch"
    [msg] = body["response"]
    assert re.fullmatch(rf"true_{PHONE}@c\.us_[0-9A-F]+", msg["id"])
    assert msg["ack"] == 1 and msg["type"] == "chat" and msg["fromMe"] is True
    assert msg["to"] == f"{PHONE}@c.us" and msg["from"].endswith("@c.us")
    assert msg["body"] == "Hello *Amina*" and isinstance(msg["t"], int)
    [record] = connected.messages(phone=PHONE)
    assert record["id"] == msg["id"] and record["body"] == "Hello *Amina*"
    assert record["session"] == "paywatch" and record["failed"] is False


def test_it_splits_a_phone_string_on_commas_and_semicolons(connected):
    r = connected.send("256772000001, 256772000002;256772000003")
    assert [m["to"] for m in r.json()["response"]] == [
        "256772000001@c.us", "256772000002@c.us", "256772000003@c.us"]


def test_it_strips_punctuation_and_the_suffix_from_a_phone(connected):
    r = connected.send(["+256-772-(123)456", f"{PHONE}@c.us"])
    assert [m["to"] for m in r.json()["response"]] == [f"{PHONE}@c.us"] * 2


def test_it_keeps_spaces_so_a_spaced_number_does_not_exist(connected):
    r = connected.send("+256 772 123456")
    assert r.status_code == 400
    assert r.json()["message"] == "O número 256 772 123456 não existe."
    assert r.json()["status"] == "Connected" and r.json()["response"] is None


def test_it_rejects_a_number_marked_not_on_whatsapp(connected):
    connected.control("POST", "not-on-whatsapp", json={"phones": ["+256 700 999999"]})
    r = connected.send("256700999999")
    assert r.status_code == 400 and r.json()["message"] == "O número 256700999999 não existe."
    assert connected.send("0772123456").status_code == 400  # the local form is not found


def test_it_answers_a_numeric_phone_with_the_misleading_404(connected):
    for phone in (256772123456, [256772123456]):
        r = connected.send(phone)
        assert r.status_code == 404 and r.json()["status"] == "Disconnected"
    assert connected.messages() == []


def test_an_empty_phone_gets_201_and_no_messages_when_the_request_is_json(connected):
    r = connected.send(" ; ")
    assert r.status_code == 201 and r.json()["response"] == []
    form = connected.api("POST", "send-message", data={"phone": "", "message": "x"})
    assert form.status_code == 400 and form.json() == "Error sending message"
    assert connected.messages() == []


def test_recipients_before_an_unknown_number_are_sent_despite_the_400(connected):
    connected.control("POST", "not-on-whatsapp", json={"phones": ["256700999999"]})
    r = connected.send(["256772000001", "256700999999", "256772000003"])
    assert r.status_code == 400
    assert [m["phone"] for m in connected.messages()] == ["256772000001"]


def test_it_picks_the_lid_group_and_newsletter_suffixes():
    assert contact_ids("123456789012345") == ["123456789012345@lid"]
    assert contact_ids(PHONE, is_lid=True) == [f"{PHONE}@lid"]
    assert contact_ids("1203-63@g.us", is_group=True) == ["1203-63@g.us"]
    assert contact_ids("1203", is_newsletter=True) == ["1203@newsletter"]
    with pytest.raises(TypeError):
        contact_ids(256772123456)


# -- check-number-status and message-by-id -------------------------------------------

def test_check_number_status_returns_an_id_object_for_a_known_number(connected):
    r = connected.api("GET", f"check-number-status/+{PHONE}")
    assert r.status_code == 200
    assert r.json()["response"] == {
        "id": {"server": "c.us", "user": PHONE, "_serialized": f"{PHONE}@c.us"},
        "isBusiness": False, "canReceiveMessage": True, "numberExists": True, "status": 200}


def test_check_number_status_returns_a_plain_string_id_for_an_unknown_number(connected):
    r = connected.api("GET", "check-number-status/0772123456")
    assert r.status_code == 200
    assert r.json()["response"] == {
        "id": "0772123456@c.us", "isBusiness": False, "canReceiveMessage": False,
        "numberExists": False, "status": 404}


def test_check_number_status_is_gated_on_the_connection(wa):
    r = wa.api("GET", f"check-number-status/{PHONE}")
    assert r.status_code == 404 and r.json() == DISCONNECTED


def test_message_by_id_answers_201_with_a_capital_success(connected):
    sent = connected.send(PHONE).json()["response"][0]
    r = connected.api("GET", f"message-by-id/{sent['id']}")
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "Success" and body["response"]["contact"] == PHONE
    assert body["response"]["data"]["id"] == sent["id"]
    unknown = connected.api("GET", "message-by-id/true_1@c.us_NOPE")
    assert unknown.status_code == 400 and unknown.json()["status"] == "Error"


def test_acks_rise_to_delivered_then_read(connected):
    sent = connected.send(PHONE).json()["response"][0]
    wait_until(lambda: connected.api("GET", f"message-by-id/{sent['id']}")
               .json()["response"]["data"]["ack"] == 3)
    assert connected.messages()[0]["ack"] == 3


def test_it_posts_onack_webhooks_for_delivered_then_read(connected, serve):
    hooks = Hooks()
    connected.connect("shop", webhook=f"{serve(hooks.app)}/hook")
    sent = connected.send(PHONE, session="shop").json()["response"][0]
    first, second = hooks.wait_for(2)
    assert [first["ack"], second["ack"]] == [2, 3]
    assert first["event"] == "onack" and first["session"] == "shop"
    assert first["id"]["_serialized"] == sent["id"] and first["id"]["fromMe"] is True
    assert first["to"] == f"{PHONE}@c.us" and first["body"] == "Payment received"


def test_a_failing_webhook_is_only_logged(connected):
    connected.connect("shop", webhook="http://127.0.0.1:9/unreachable")
    assert connected.send(PHONE, session="shop").status_code == 201
    wait_until(lambda: connected.messages()[0]["ack"] == 3)


# -- reading a chat (get-messages) ----------------------------------------------------

def test_get_messages_answers_the_chat_oldest_first_as_serialised_messages(connected):
    for text in ("one", "two", "three"):
        connected.send(PHONE, text)
    r = connected.chat(f"{PHONE}@c.us")
    assert r.status_code == 200 and r.json()["status"] == "success" and "session" not in r.json()
    listed = r.json()["response"]
    assert [m["body"] for m in listed] == ["one", "two", "three"]
    sent = connected.messages()
    first = listed[0]
    assert first["id"] == sent[0]["id"] and first["fromMe"] is True and first["to"] == f"{PHONE}@c.us"
    assert first["timestamp"] == first["t"] == int(sent[0]["time"])
    # Digits alone name the chat too.
    assert [m["id"] for m in connected.chat(PHONE).json()["response"]] == [m["id"] for m in listed]


def test_get_messages_pages_with_count_direction_and_id(connected):
    for n in range(5):
        connected.send(PHONE, f"m{n}")
    bodies = lambda r: [m["body"] for m in r.json()["response"]]  # noqa: E731
    assert bodies(connected.chat(count=2)) == ["m3", "m4"]
    assert bodies(connected.chat(count="nonsense")) == ["m0", "m1", "m2", "m3", "m4"]  # 20
    third = connected.messages()[2]["id"]
    assert bodies(connected.chat(count=2, id=third)) == ["m0", "m1"]
    assert bodies(connected.chat(count=5, direction="after", id=third)) == ["m3", "m4"]
    assert bodies(connected.chat(count=-1)) == ["m0", "m1", "m2", "m3", "m4"]


def test_get_messages_shows_what_the_customer_wrote_and_what_was_typed_on_the_phone(connected):
    connected.send(PHONE, "Payment received")
    connected.control("POST", "chat-message", json={"phone": PHONE, "body": "thanks!"})
    connected.control("POST", "chat-message", json={"phone": PHONE, "body": "typed", "from_me": True,
                                                    "age": 3600})
    listed = connected.chat().json()["response"]
    assert [(m["body"], m["fromMe"]) for m in listed] == [
        ("typed", True), ("Payment received", True), ("thanks!", False)]
    assert listed[2]["from"] == f"{PHONE}@c.us" and listed[0]["t"] <= time.time() - 3599
    assert [m["body"] for m in connected.messages()] == ["Payment received"]  # sends only


def test_get_messages_for_a_chat_that_does_not_exist_is_the_controllers_401(connected):
    r = connected.chat("256772999999")
    assert r.status_code == 401
    assert r.json() == {"status": "error", "response": "Error on open list",
                        "error": {"code": "chat_not_found", "id": "256772999999@c.us"}}


def test_get_messages_is_behind_the_token_and_the_session_gate(wa):
    assert wa.api("GET", f"get-messages/{PHONE}", headers={}).status_code == 401
    assert wa.chat().status_code == 404 and wa.chat().json() == DISCONNECTED


def test_a_history_error_fault_fails_get_messages_like_a_throwing_page(connected):
    connected.send(PHONE)
    connected.control("POST", "faults", json={"kind": "history_error", "count": 1})
    assert connected.send(PHONE).status_code == 201  # sends do not take it
    r = connected.chat()
    assert r.status_code == 401 and r.json() == {"status": "error", "response": "Error on open list", "error": {}}
    assert connected.chat().status_code == 200


def test_a_history_timeout_fault_holds_the_get_messages_answer(connected):
    connected.send(PHONE)
    connected.control("POST", "faults", json={"kind": "history_timeout", "seconds": 0.5, "count": 1})
    with pytest.raises(requests.ReadTimeout):
        connected.chat(timeout=0.1)
    assert connected.chat().status_code == 200


def test_a_reset_fault_sends_then_closes_the_connection_unanswered(connected):
    connected.control("POST", "faults", json={"kind": "reset", "count": 1})
    with pytest.raises(requests.ConnectionError):
        connected.send(PHONE)
    assert [m["phone"] for m in connected.messages()] == [PHONE]
    assert connected.send(PHONE).status_code == 201


def test_a_hang_fault_holds_the_answer_and_sends_nothing(connected):
    connected.control("POST", "faults", json={"kind": "hang", "seconds": 0.3, "count": 1})
    started = time.monotonic()
    r = connected.send(PHONE)  # a client that waits long enough gets the 500 at last
    assert r.status_code == 500 and time.monotonic() - started >= 0.3
    assert connected.messages() == []


# -- injected faults -----------------------------------------------------------------

def test_an_error_fault_answers_500_for_the_next_n_sends(connected):
    connected.control("POST", "faults", json={"kind": "error", "count": 1})
    r = connected.send(PHONE)
    assert r.status_code == 500
    assert r.json()["status"] == "Error" and r.json()["message"] == "Erro ao enviar a mensagem."
    assert connected.messages() == []
    assert connected.send(PHONE).status_code == 201


def test_a_timeout_fault_holds_the_answer_but_the_message_goes_out(connected):
    connected.control("POST", "faults", json={"kind": "timeout", "seconds": 0.5})
    with pytest.raises(requests.ReadTimeout):
        connected.send(PHONE, timeout=0.1)
    assert [m["phone"] for m in connected.messages()] == [PHONE]


def test_a_disconnect_fault_drops_the_session(connected):
    connected.control("POST", "faults", json={"kind": "disconnect", "count": 1})
    assert connected.send(PHONE).status_code == 404
    assert connected.status() == "CLOSED"
    assert connected.control("GET", "faults").json() == {"faults": []}


def test_an_ack_failed_fault_answers_201_with_ack_minus_one(connected):
    connected.control("POST", "faults", json={"kind": "ack_failed", "count": 1})
    r = connected.send(PHONE)
    assert r.status_code == 201 and r.json()["response"][0]["ack"] == -1
    [record] = connected.messages()
    assert record["failed"] is True and record["ack"] == -1


def test_a_slow_fault_delays_the_send(connected):
    connected.control("POST", "faults", json={"kind": "slow", "seconds": 0.3, "count": 1})
    started = time.monotonic()
    assert connected.send(PHONE).status_code == 201
    assert time.monotonic() - started >= 0.3


def test_a_stale_session_says_connected_but_cannot_send(connected):
    connected.control("POST", "faults", json={"kind": "stale"})
    assert connected.status() == "CONNECTED"
    assert connected.api("GET", "check-connection-session").json()["status"] is True
    assert connected.send(PHONE).status_code == 500
    connected.control("DELETE", "faults")
    assert connected.send(PHONE).status_code == 201


def test_it_rejects_an_unknown_fault_kind(wa):
    r = wa.control("POST", "faults", json={"kind": "explode"})
    assert r.status_code == 400 and "kind must be one of" in r.json()["error"]


# -- control endpoints, health, CLI --------------------------------------------------

def test_a_forced_state_holds_until_changed(wa):
    wa.control("POST", "sessions/paywatch/state", json={"state": "QRCODE"})
    wa.clock.advance(10 * STEP)
    assert wa.status() == "QRCODE"
    wa.control("POST", "sessions/paywatch/state", json={"state": None})
    assert wa.status() == "CLOSED"
    assert wa.control("POST", "sessions/x/state", json={"state": "BOGUS"}).status_code == 400


def test_reset_forgets_messages_and_sessions(connected):
    connected.send(PHONE)
    assert connected.control("POST", "reset").status_code == 200
    assert connected.messages() == [] and connected.status() == "CLOSED"


def test_show_all_sessions_lists_paired_sessions_for_the_secret_key(connected):
    r = requests.get(f"{connected.url}/api/{SECRET}/show-all-sessions", timeout=5)
    assert r.status_code == 200 and r.json() == {"response": ["paywatch"]}
    wrong = requests.get(f"{connected.url}/api/WRONG/show-all-sessions", timeout=5)
    assert wrong.status_code == 400 and wrong.json()["response"] is False


def test_healthz_answers_without_auth(wa):
    body = requests.get(f"{wa.url}/healthz", timeout=5).json()
    assert body["message"] == "OK" and body["uptime"] >= 0 and body["timestamp"] > 0


def test_it_runs_alone_from_the_command_line():
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.whatsapp", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://\S+", proc.stdout.readline()).group(0)
        assert requests.get(f"{url}/healthz", timeout=5).json()["message"] == "OK"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()
