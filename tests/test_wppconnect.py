"""The wppconnect client against the sandbox server: which failures leave a send's outcome
unknown, and reading a chat back (get-messages) whatever envelope the server uses."""
from __future__ import annotations

import socket
import time

import pytest
import requests
from flask import Flask

from jobs.wppconnect import ChatMessage, Client, WhatsAppError, _chat_message, _message_list
from sandbox.server import ServerThread
from sandbox.whatsapp import connect_session, make_app

SECRET, SESSION = "client-test-secret", "paywatch"
PHONE = "+256772123456"


@pytest.fixture(scope="module")
def server():
    with ServerThread(make_app(SECRET, step_seconds=0.01, ack_delays=None)) as running:
        yield running


@pytest.fixture
def wpp(server) -> Client:
    requests.post(f"{server.url}/_sandbox/reset", timeout=5)
    connect_session(server.url, SESSION, SECRET)
    return Client(server.url, SESSION, secret_key=SECRET, read_timeout=0.5)


def fault(server, **spec) -> None:
    requests.post(f"{server.url}/_sandbox/faults", json=spec, timeout=5).raise_for_status()


def sent(server) -> list[dict]:
    return requests.get(f"{server.url}/_sandbox/messages", timeout=5).json()["messages"]


def failure(call) -> WhatsAppError:
    with pytest.raises(WhatsAppError) as raised:
        call()
    return raised.value


# -- known and unknown outcomes ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["timeout", "reset", "hang"])
def test_no_answer_after_the_request_went_out_leaves_the_outcome_unknown(server, wpp, kind):
    fault(server, kind=kind, seconds=1.5, count=1)
    error = failure(lambda: wpp.send_text(PHONE, "Paid, thank you"))
    assert error.kind == "server" and error.unknown and not error.permanent
    assert len(sent(server)) == (0 if kind == "hang" else 1)


def test_wppconnects_own_500_says_nothing_went_out(server, wpp):
    fault(server, kind="error", count=1)
    error = failure(lambda: wpp.send_text(PHONE, "Paid, thank you"))
    assert (error.kind, error.status, error.unknown) == ("server", 500, False)


def test_a_refused_connection_says_nothing_went_out():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    error = failure(lambda: Client(f"http://127.0.0.1:{port}", SESSION, token="t").send_text(PHONE, "hi"))
    assert error.kind == "server" and not error.unknown


def test_a_5xx_that_is_not_wppconnects_leaves_the_outcome_unknown():
    proxy = Flask("proxy")
    proxy.post("/api/<session>/send-message")(lambda session: ("<h1>504 Gateway Time-out</h1>", 504))
    with ServerThread(proxy) as behind_proxy:
        error = failure(lambda: Client(behind_proxy.url, SESSION, token="t").send_text(PHONE, "hi"))
    assert error.status == 504 and error.unknown


# -- reading the chat back ----------------------------------------------------------------

def test_recent_messages_reads_the_chat_oldest_first(server, wpp):
    first = wpp.send_text(PHONE, "one")
    wpp.send_text(PHONE, "two")
    requests.post(f"{server.url}/_sandbox/chat-message", json={"phone": PHONE, "body": "ok"}, timeout=5)
    messages = wpp.recent_messages(PHONE, 100)
    assert [(m.body, m.from_me) for m in messages] == [("one", True), ("two", True), ("ok", False)]
    assert messages[0].id == first.provider_id and messages[0].ack == 1
    assert abs(messages[0].t - time.time()) < 5
    assert [m.body for m in wpp.recent_messages(PHONE, 2)] == ["two", "ok"]


def test_a_chat_that_does_not_exist_has_no_messages(wpp):
    assert wpp.recent_messages("+256772999999", 100) == []


def test_a_failing_read_is_transient_and_does_not_pause_sending(server, wpp):
    wpp.send_text(PHONE, "one")
    fault(server, kind="history_error", count=1)
    error = failure(lambda: wpp.recent_messages(PHONE, 100))
    assert error.kind == "server" and not error.permanent  # a 401 here is not a refused token
    fault(server, kind="history_timeout", seconds=1.5, count=1)
    assert failure(lambda: wpp.recent_messages(PHONE, 100)).kind == "server"


def test_reading_a_chat_needs_a_connected_session(server, wpp):
    requests.post(f"{server.url}/_sandbox/sessions/{SESSION}/state", json={"state": "CLOSED"}, timeout=5)
    assert failure(lambda: wpp.recent_messages(PHONE, 100)).kind == "disconnected"


def test_a_server_without_get_messages_cannot_be_asked():
    bare = Flask("old-wppconnect")
    with ServerThread(bare) as old:
        error = failure(lambda: Client(old.url, SESSION, token="t").recent_messages(PHONE, 100))
    assert error.kind == "unsupported" and error.permanent


@pytest.mark.parametrize("body", [
    {"status": "success", "response": [{"id": "true_1@c.us_A", "body": "hi", "fromMe": True, "t": 1700000000}]},
    {"value": [{"id": "true_1@c.us_A", "body": "hi", "fromMe": True, "t": 1700000000}]},  # a bare list
    {"status": "Success", "response": {"data": [{"id": {"fromMe": True, "_serialized": "true_1@c.us_A"},
                                                 "content": "hi", "timestamp": 1700000000000}]}},
])
def test_messages_are_read_from_any_envelope_and_shape(body):
    [message] = [m for m in map(_chat_message, _message_list(body)) if m]
    assert message == ChatMessage("true_1@c.us_A", "hi", True, 1700000000, None)


def test_unreadable_messages_are_skipped_and_a_missing_list_is_none():
    assert _chat_message("text") is None and _chat_message({"body": "no id"}) is None
    guessed = _chat_message({"id": "false_1@c.us_B", "body": "hey", "t": "soon", "ack": True})
    assert guessed == ChatMessage("false_1@c.us_B", "hey", False, None, None)
    assert _message_list({"status": "success", "response": "Error"}) is None
