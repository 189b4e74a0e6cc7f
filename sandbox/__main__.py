"""`python -m sandbox`: every stand-in for the outside world, on fixed loopback ports,
with a little traffic so the demo has something to show.

    WhatsApp (wppconnect)  http://127.0.0.1:21465   secret key THISISMYSECURETOKEN
                           /_sandbox/log: every message it received (a page; make demo links it)
    provider portal        http://127.0.0.1:8101    user demo / demo-pass
    ioTec gateway          http://127.0.0.1:8102    client sandbox-client / sandbox-secret
    IMAP mailbox           127.0.0.1:1143           user payments / payments-pass
    webhook receiver       http://127.0.0.1:8103    GET /_sandbox/received shows what arrived

Traffic (turn it off with --no-traffic; sandbox/demo_traffic.py): customers in the
demo's currency (`--currency`, default UGX), dated now, appear on the portal every
~20 s; most pay, on the portal or by mobile money (a provider SMS forwarded to the
mailbox), and a few never do; now and then a stranger pays. The demo's source files
(sandbox/demo/*.json) point at these.

Paying a request of one's own while it runs (README, "The demo"):

    python -m sandbox pay-mail 5000 --reference PW-7KQ2M9 [--name "Jane Doe"] [--phone 0772123456]
    python -m sandbox portal-add 25000 --name "Jane Doe" --phone 0772123456   # prints its portal id
    python -m sandbox portal-paid TX000031
"""
from __future__ import annotations

import argparse
import logging
import threading
from types import SimpleNamespace

import requests

from sandbox import demo_traffic
from sandbox.gateway import make_app as make_gateway
from sandbox.gateway import start_ticker
from sandbox.imap import append, start_imap
from sandbox.portal import make_app as make_portal
from sandbox.server import ServerThread
from sandbox.webhook_receiver import make_app as make_webhook_receiver
from sandbox.whatsapp import make_app as make_whatsapp

PORTS = {"whatsapp": 21465, "portal": 8101, "gateway": 8102, "imap": 1143, "webhooks": 8103}
IMAP_USER, IMAP_PASSWORD = "payments", "payments-pass"


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--no-traffic", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--currency", default="UGX", help="the demo's currency (PAYWATCH_CURRENCY; make demo: UGX)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # 25 rows of history in the demo's currency, 7 minutes apart, the last one now.
    portal = make_portal(seed_rows=25, currency=args.currency.upper())
    servers = [
        ServerThread(make_whatsapp(step_seconds=2.0), port=PORTS["whatsapp"]).start(),
        ServerThread(portal, port=PORTS["portal"]).start(),
    ]
    gateway = make_gateway()
    servers.append(ServerThread(gateway, port=PORTS["gateway"]).start())
    servers.append(ServerThread(make_webhook_receiver(), port=PORTS["webhooks"]).start())
    stops = [start_ticker(gateway)]
    imap = start_imap(port=PORTS["imap"], users={IMAP_USER: IMAP_PASSWORD})
    for server in servers:
        print(f"sandbox: {server.url}", flush=True)
    print(f"sandbox: imap://{IMAP_USER}:{IMAP_PASSWORD}@127.0.0.1:{imap.port}", flush=True)
    if not args.no_traffic:
        stops.append(demo_traffic.start(servers[1].url, imap, IMAP_USER, IMAP_PASSWORD, currency=args.currency,
                                        seed=args.seed))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for stop in stops:
            stop.set()
        for server in servers:
            server.stop()
        imap.stop()
    return 0


# ---------------------------------------------------------------- paying one's own request


_RUNNING_IMAP = SimpleNamespace(host="127.0.0.1", port=PORTS["imap"])  # what sandbox.imap.connect needs


def _pay_mail(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox pay-mail",
                                description="Mail the running sandbox's mailbox an MTN payment SMS (UGX), dated now.")
    p.add_argument("amount", type=int, help="whole shillings, e.g. 5000")
    p.add_argument("--reference", default="", help="quoted as the payment's reason, e.g. PW-7KQ2M9 (decisive)")
    p.add_argument("--name", default="Jane Doe", help="the sender's name")
    p.add_argument("--phone", default="+256772123456", help="the sender's phone")
    args = p.parse_args(argv)
    sample = demo_traffic.pay_by_mail(
        lambda raw: append(_RUNNING_IMAP, IMAP_USER, IMAP_PASSWORD, "INBOX", raw),
        args.amount, name=args.name, phone=args.phone, reference=args.reference)
    print(f"mailed: UGX {args.amount:,} from {args.name} ({args.phone}), "
          f"transaction {sample.expected['transaction_id']}" + (f", quoting {args.reference}" if args.reference else ""))
    return 0


def _portal_add(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox portal-add",
                                description="Add a pending payment on the running sandbox portal (a request in the demo).")
    p.add_argument("amount", type=int)
    p.add_argument("--name", default="Jane Doe")
    p.add_argument("--phone", default="+256772123456")
    p.add_argument("--agent", default="AG1")
    args = p.parse_args(argv)
    row = {"customer": args.name, "phone": args.phone, "agent": args.agent, "amount": args.amount, "status": "Pending"}
    added = requests.post(f"http://127.0.0.1:{PORTS['portal']}/_sandbox/payments", json=row, timeout=10)
    added.raise_for_status()
    payment = added.json()["payments"][0]
    print(f"portal: {payment['id']} pending, {payment['currency']} {args.amount:,} for {args.name}; "
          f"mark it paid with: python -m sandbox portal-paid {payment['id']}")
    return 0


def _portal_paid(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox portal-paid",
                                description="Mark a payment of the running sandbox portal Completed.")
    p.add_argument("portal_id", help="e.g. TX000031 (portal-add prints it)")
    args = p.parse_args(argv)
    changed = requests.post(f"http://127.0.0.1:{PORTS['portal']}/_sandbox/payments/{args.portal_id}",
                            json={"status": "Completed"}, timeout=10)
    if changed.status_code == 404:
        print(f"portal: no payment {args.portal_id}")
        return 1
    changed.raise_for_status()
    print(f"portal: {args.portal_id} Completed (Paywatch reads it at its next pass, within 20 s)")
    return 0


COMMANDS = {"pay-mail": _pay_mail, "portal-add": _portal_add, "portal-paid": _portal_paid}


if __name__ == "__main__":
    raise SystemExit(main())
