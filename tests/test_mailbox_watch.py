"""The IDLE watcher end to end: real pymap, `flask mailbox watch`, real rq workers, sandbox WhatsApp."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.imap import append, start_imap
from sandbox.mail import mtn_payment
from tests.conftest import wait_for
from tests.test_mailbox import PASSWORD, PHONE, USER, a_request, imap_env, in_db  # noqa: F401 (fixtures)
from webapp.config import ROOT
from webapp.storage.models import Notification, Payment, PaymentRequest, Source


@pytest.fixture
def imap():
    server = start_imap(users={USER: PASSWORD})
    yield server
    server.stop()


def readme_source(server, name: str = "shop-mail") -> dict:
    """The README's example source, pointed at the sandbox server (plain TCP)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Mailbox sources", 1)[1].split("\n## ", 1)[0]
    spec = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    spec["name"] = name
    spec["config"].update(host=server.host, port=server.port, ssl=False)
    return spec


def flask(environ, *args: str, **kwargs):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env={**os.environ, **environ}, capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture
def watcher(environ, app, imap_env, tmp_path):
    """`flask --app wsgi mailbox watch` as its own process, re-reading sources every 0.5 s."""
    log = open(tmp_path / "watch.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mailbox", "watch", "--rescan-seconds", "0.5",
         "--renew-seconds", "5"], cwd=ROOT, env={**os.environ, **environ}, stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        print("the watcher did not stop within 15 s of SIGTERM")
    log.seek(0)
    print(log.read())  # shown by pytest when the test failed
    log.close()


def add_source(environ, spec: dict, tmp_path: Path) -> None:
    path = tmp_path / f"{spec['name']}.json"
    path.write_text(json.dumps(spec))
    done = flask(environ, "sources", "add", "--file", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def watching(app, name: str, after: str = ""):
    def check():
        state = in_db(app, lambda: Source.get(Source.name == name).state) or {}
        watch = state.get("watch") or {}
        return watch.get("connected") and watch.get("mode") == "idle" and watch.get("at", "") > after
    return check


def test_new_mail_reaches_the_customer_on_whatsapp_through_idle(whatsapp, environ, app, imap, watcher, worker,
                                                                tmp_path):
    add_source(environ, readme_source(imap), tmp_path)  # configured only from the README's example
    wait_for(watching(app, "shop-mail"), timeout=20, message="the watcher to IDLE on the source")
    request = a_request(app, 15000)

    append(imap, USER, PASSWORD, "INBOX", mtn_payment(15000, sender_name="Grace Kato", sender_phone=PHONE).raw)

    wait_for(lambda: in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid", timeout=30,
             message="the request to be paid from the mail")
    payment = in_db(app, lambda: Payment.get(Payment.source == "shop-mail"))
    assert payment.status == "confirmed" and not payment.verified
    assert in_db(app, lambda: Notification.select().where(
        Notification.request == request.id, Notification.kind == "payment_confirmed_customer").exists())
    wait_for(lambda: whatsapp.messages(PHONE), timeout=30, message="the confirmation on the sandbox WhatsApp")
    state = in_db(app, lambda: Source.get(Source.name == "shop-mail").state)
    assert state["counts"] == {"received": 1} and state["last_mail_at"] and state["last_contact_at"]


def test_the_watcher_recovers_after_the_imap_server_restarts(environ, app, imap, watcher, worker, tmp_path):
    add_source(environ, readme_source(imap), tmp_path)
    wait_for(watching(app, "shop-mail"), timeout=20, message="the watcher to IDLE on the source")
    port = imap.port
    imap.stop()
    wait_for(lambda: not (in_db(app, lambda: Source.get(Source.name == "shop-mail").state).get("watch") or {})
             .get("connected"), timeout=20, message="the watcher to notice the server went away")
    restarted = start_imap(port=port, users={USER: PASSWORD})
    try:
        stamp = in_db(app, lambda: Source.get(Source.name == "shop-mail").state["watch"]["at"])
        wait_for(watching(app, "shop-mail", after=stamp), timeout=20, message="the watcher to reconnect")
        request = a_request(app, 25000)
        append(restarted, USER, PASSWORD, "INBOX",
               mtn_payment(25000, sender_name="Grace Kato", sender_phone=PHONE).raw)
        wait_for(lambda: in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid", timeout=30,
                 message="mail after the restart to be read")
    finally:
        restarted.stop()


def test_a_source_added_while_watching_is_picked_up_and_a_removed_one_dropped(environ, app, imap, watcher,
                                                                               tmp_path):
    add_source(environ, readme_source(imap, "first"), tmp_path)
    wait_for(watching(app, "first"), timeout=20, message="the first source to be watched")
    add_source(environ, readme_source(imap, "second"), tmp_path)
    wait_for(watching(app, "second"), timeout=20, message="the second source to be watched")
    disabled = {**readme_source(imap, "first"), "enabled": False}
    add_source(environ, disabled, tmp_path)
    wait_for(lambda: "stopping source first" in Path(tmp_path / "watch.log").read_text(), timeout=20,
             message="the watcher to drop the disabled source")


def test_mail_that_arrives_while_redis_is_down_is_read_once_it_is_back(environ, app, imap, watcher, worker,
                                                                       tmp_path, redis_control):
    add_source(environ, readme_source(imap), tmp_path)
    wait_for(watching(app, "shop-mail"), timeout=20, message="the watcher to IDLE on the source")
    request = a_request(app, 15000)
    redis_control.stop()

    append(imap, USER, PASSWORD, "INBOX", mtn_payment(15000, sender_name="Grace Kato", sender_phone=PHONE).raw)
    wait_for(lambda: "could not be queued" in (tmp_path / "watch.log").read_text(), timeout=20,
             message="the watcher to notice the mail")
    source = in_db(app, lambda: Source.get(Source.name == "shop-mail"))
    assert source.state["watch"]["connected"] and not source.last_error  # IMAP kept; Redis is not the mailbox's fault
    redis_control.start()  # empty: no fetch was ever queued

    wait_for(lambda: in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid", timeout=60,
             message="the request to be paid from the mail, once Redis is back")
    assert watcher.poll() is None and worker.poll() is None


def test_mail_arriving_during_idle_is_read_without_a_reconnect(environ, app, imap, watcher, worker, tmp_path):
    """Each mail makes the server talk during IDLE (EXISTS, RECENT, then the FETCH our own \\Seen
    causes, which pymap writes in two pieces): the watcher reads them all on one connection."""
    add_source(environ, readme_source(imap), tmp_path)
    wait_for(watching(app, "shop-mail"), timeout=20, message="the watcher to IDLE on the source")
    requests = [a_request(app, amount) for amount in (31000, 32000, 33000)]
    for request in requests:
        append(imap, USER, PASSWORD, "INBOX",
               mtn_payment(request.amount_minor, sender_name="Grace Kato", sender_phone=PHONE).raw)
        wait_for(lambda: in_db(app, lambda: PaymentRequest.get_by_id(request.id).status) == "paid", timeout=30,
                 message=f"the request for {request.amount_minor} to be paid from its mail")
    # The \Seen FETCH of the last mail reaches the IDLE connection after its pass: wait out a renewal.
    stamp = in_db(app, lambda: Source.get(Source.name == "shop-mail").state["watch"]["at"])
    wait_for(watching(app, "shop-mail", after=stamp), timeout=20, message="the IDLE to be renewed")
    watch = in_db(app, lambda: Source.get(Source.name == "shop-mail").state["watch"])
    log = Path(tmp_path / "watch.log").read_text()
    assert "unterminated line" not in log and "reconnecting" not in log, log
    assert watch["connects"] == 1 and watch["connected"], watch
