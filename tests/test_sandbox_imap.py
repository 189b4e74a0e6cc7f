"""The sandbox IMAP server (pymap, in memory) speaks real IMAP to imapclient."""
from __future__ import annotations

import random
import time

import pytest
from imapclient.exceptions import LoginError

from sandbox.imap import append, connect, start_imap
from sandbox.mail import mpesa_received, nayapay_received

USER, PASSWORD = "shop", "secret"


@pytest.fixture
def server():
    imap = start_imap(users={USER: PASSWORD, "other": "pw"})
    yield imap
    imap.stop()


def test_it_logs_in_and_rejects_a_wrong_password(server):
    client = connect(server, USER, PASSWORD)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()
    with pytest.raises(LoginError):
        connect(server, USER, "wrong")


def test_it_appends_searches_unseen_and_fetches_the_same_bytes(server):
    raw = nayapay_received(random.Random(7)).raw
    append(server, USER, PASSWORD, "INBOX", raw)
    client = connect(server, USER, PASSWORD)
    client.select_folder("INBOX")
    unseen = client.search(["UNSEEN"])
    assert len(unseen) == 1
    fetched = client.fetch(unseen, ["BODY.PEEK[]", "FLAGS"])[unseen[0]]
    assert fetched[b"BODY[]"].replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    client.add_flags(unseen, [b"\\Seen"])
    assert client.search(["UNSEEN"]) == []
    client.logout()


def test_each_user_has_their_own_mailbox(server):
    append(server, "other", "pw", "INBOX", mpesa_received(random.Random(1)).raw)
    client = connect(server, USER, PASSWORD)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()


def test_an_idle_client_is_told_about_an_append(server):
    watcher = connect(server, USER, PASSWORD)
    watcher.select_folder("INBOX")
    watcher.idle()
    append(server, USER, PASSWORD, "INBOX", mpesa_received(random.Random(3)).raw)
    deadline = time.monotonic() + 10
    seen: list = []
    while time.monotonic() < deadline and not any(b"EXISTS" in r for r in seen):
        seen.extend(watcher.idle_check(timeout=1))  # blocks on the socket, no sleep
    watcher.idle_done()
    watcher.logout()
    assert (1, b"EXISTS") in seen


def test_it_appends_into_a_new_folder(server):
    append(server, USER, PASSWORD, "Payments", b"From: a@b.example\r\nSubject: x\r\n\r\nhi\r\n")
    client = connect(server, USER, PASSWORD)
    assert client.select_folder("Payments")[b"EXISTS"] == 1
    client.logout()
