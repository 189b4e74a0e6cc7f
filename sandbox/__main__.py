"""`python -m sandbox`: every stand-in for the outside world, on fixed loopback ports,
with a little traffic so the demo has something to show.

    WhatsApp (wppconnect)  http://127.0.0.1:21465   secret key THISISMYSECURETOKEN
    provider portal        http://127.0.0.1:8101    user demo / demo-pass
    ioTec gateway          http://127.0.0.1:8102    client sandbox-client / sandbox-secret
    IMAP mailbox           127.0.0.1:1143           user payments / payments-pass
    webhook receiver       http://127.0.0.1:8103    GET /_sandbox/received shows what arrived

Traffic (turn it off with --no-traffic): a new pending portal payment every
~20 s, most completed 30–150 s later (some never: they expire); a provider mail
every ~25 s. The demo's source files (sandbox/demo/*.json) point at these.
"""
from __future__ import annotations

import argparse
import logging
import random
import threading
from datetime import datetime, timezone

import requests

from sandbox.gateway import make_app as make_gateway
from sandbox.gateway import start_ticker
from sandbox.imap import start_imap, start_mail_traffic
from sandbox.portal import make_app as make_portal
from sandbox.server import ServerThread
from sandbox.webhook_receiver import make_app as make_webhook_receiver
from sandbox.whatsapp import make_app as make_whatsapp

PORTS = {"whatsapp": 21465, "portal": 8101, "gateway": 8102, "imap": 1143, "webhooks": 8103}
IMAP_USER, IMAP_PASSWORD = "payments", "payments-pass"
AGENTS = ("AG1", "AG2", "AG3")
NAMES = ("Jane Nakato", "Peter Okello", "Grace Achieng", "Moses Kato", "Amina Namusoke", "David Ouma")


def portal_traffic(url: str, stop: threading.Event, rng: random.Random, every_s: float = 20.0) -> None:
    """Add a pending payment now and then; complete most of them a little later."""
    pending: list[tuple[float, str]] = []
    clock = 0.0
    while not stop.wait(1.0):
        clock += 1.0
        if rng.random() < 1.0 / every_s:
            name = rng.choice(NAMES)
            row = {"customer": name, "phone": f"+25677{rng.randrange(10**7):07d}", "agent": rng.choice(AGENTS),
                   "amount": rng.randrange(2, 60) * 1000, "status": "Pending",
                   "reference": f"INV-{rng.randrange(10**5):05d}"}
            try:
                added = requests.post(f"{url}/_sandbox/payments", json=row, timeout=5).json()
            except requests.RequestException:
                continue
            payment_id = (added.get("payments") or [{}])[0].get("id")
            if payment_id and rng.random() < 0.8:
                pending.append((clock + rng.uniform(30, 150), payment_id))
        for due, payment_id in [p for p in pending if p[0] <= clock]:
            pending.remove((due, payment_id))
            try:
                requests.post(f"{url}/_sandbox/payments/{payment_id}", json={"status": "Completed"}, timeout=5)
            except requests.RequestException:
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n")[0])
    parser.add_argument("--no-traffic", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(args.seed)
    servers = [
        ServerThread(make_whatsapp(step_seconds=2.0), port=PORTS["whatsapp"]).start(),
        ServerThread(make_portal(seed_rows=25), port=PORTS["portal"]).start(),
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
        stop = threading.Event()
        threading.Thread(target=portal_traffic, args=(servers[1].url, stop, rng), daemon=True).start()
        stops += [stop, start_mail_traffic(imap, IMAP_USER, IMAP_PASSWORD, every_s=25.0, seed=args.seed)]
        print(f"sandbox: traffic on since {datetime.now(timezone.utc):%H:%M:%S} UTC", flush=True)
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


if __name__ == "__main__":
    raise SystemExit(main())
