"""The demo's traffic (`python -m sandbox`): customers who owe and customers who pay, today,
in the demo's currency.

Every ~20 s a customer appears on the provider portal with a pending payment (the demo's
portal source turns it into a request). Its fate is drawn then:

- `portal`: the portal marks it Completed 30–150 s later (Paywatch reads it there);
- `mail`: 30–150 s later the customer pays by mobile money: the provider's SMS, forwarded
  to the shop's mailbox, names the customer and their phone and has the exact amount,
  dated now (the portal row stays Pending: the mail is the evidence);
- `never`: nobody pays; the request expires.

Now and then (1 mail in 6) someone with no request pays too: the unmatched payment is
what the review queue is for. Mail is MTN Mobile Money (Uganda) and so speaks UGX; in
another currency only the portal pays.

`pay_by_mail` is also what `python -m sandbox pay-mail` uses to pay a request of one's own.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import requests

from sandbox import mail
from sandbox.imap import ImapServer, append

NAMES = ("Jane Nakato", "Peter Okello", "Grace Achieng", "Moses Kato", "Amina Namusoke", "David Ouma",
         "Sarah Atim", "Brian Mugisha", "Esther Namubiru", "John Ssempala")
AGENTS = ("AG1", "AG2", "AG3")
FATES = (("portal", 0.4), ("mail", 0.45), ("never", 0.15))
MAIL_CURRENCY = "UGX"  # the mail the sandbox writes is MTN Uganda's


@dataclass
class Customer:
    name: str
    phone: str
    amount: int  # whole units of the currency (the demo's currencies have no minor unit: UGX)
    portal_id: str
    fate: str
    due: float  # the clock second the fate comes


def pay_by_mail(deliver: Callable[[bytes], None], amount: int, *, name: str, phone: str, reference: str = "",
                when: datetime | None = None, rng: random.Random | None = None) -> mail.Sample:
    """An MTN "You have received" SMS forwarded to the mailbox, dated `when` (now); the reason quotes
    `reference` when given (decisive for matching)."""
    sample = mail.mtn_payment(amount, sender_name=name, sender_phone=phone, when=when,
                              reason=reference or "payment", rng=rng)
    deliver(sample.raw)
    return sample


class DemoTraffic:
    """One step per clock second; `deliver` appends a mail to the mailbox, `portal` is the portal's URL."""

    def __init__(self, portal: str, deliver: Callable[[bytes], None], *, currency: str = "UGX",
                 rng: random.Random | None = None, every_s: float = 20.0):
        self.portal, self.deliver, self.currency = portal, deliver, currency.upper()
        self.rng, self.every_s = rng or random.Random(), every_s
        self.clock = 0.0
        self.waiting: list[Customer] = []
        self.counts = {"customers": 0, "portal": 0, "mail": 0, "never": 0, "strangers": 0}

    def _fate(self) -> str:
        fate = self.rng.choices([f for f, _ in FATES], weights=[w for _, w in FATES])[0]
        return "portal" if fate == "mail" and self.currency != MAIL_CURRENCY else fate

    def new_customer(self) -> Customer | None:
        name = self.rng.choice(NAMES)
        row = {"customer": name, "phone": f"+25677{self.rng.randrange(10**7):07d}", "agent": self.rng.choice(AGENTS),
               "amount": self.rng.randrange(2, 60) * 1000, "status": "Pending", "currency": self.currency,
               "reference": f"INV-{self.rng.randrange(10**5):05d}"}
        try:
            added = requests.post(f"{self.portal}/_sandbox/payments", json=row, timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        portal_id = (added.get("payments") or [{}])[0].get("id")
        if not portal_id:
            return None
        customer = Customer(name, row["phone"], row["amount"], portal_id, self._fate(),
                            self.clock + self.rng.uniform(30, 150))
        self.counts["customers"] += 1
        if customer.fate != "never":
            self.waiting.append(customer)
        else:
            self.counts["never"] += 1
        return customer

    def settle(self, customer: Customer) -> None:
        if customer.fate == "portal":
            requests.post(f"{self.portal}/_sandbox/payments/{customer.portal_id}", json={"status": "Completed"},
                          timeout=5)
        else:
            pay_by_mail(self.deliver, customer.amount, name=customer.name, phone=customer.phone, rng=self.rng)
        self.counts[customer.fate] += 1

    def stranger(self) -> None:
        """Money from someone who has no request: it waits in review."""
        pay_by_mail(self.deliver, self.rng.randrange(1, 100) * 500, name=self.rng.choice(NAMES).split()[0] + " Wasswa",
                    phone=f"+25670{self.rng.randrange(10**7):07d}", rng=self.rng)
        self.counts["strangers"] += 1

    def step(self, seconds: float = 1.0) -> None:
        self.clock += seconds
        if self.rng.random() < seconds / self.every_s:
            self.new_customer()
        for customer in [c for c in self.waiting if c.due <= self.clock]:
            self.waiting.remove(customer)
            try:
                self.settle(customer)
            except Exception:  # noqa: BLE001 - a server restarting: this customer is lost, the demo goes on
                continue
        # One mail in six is a stranger's: about one per 5 customers paying by mail.
        if self.currency == MAIL_CURRENCY and self.rng.random() < seconds / (self.every_s * 10):
            try:
                self.stranger()
            except Exception:  # noqa: BLE001
                pass


def start(portal: str, imap: ImapServer, user: str, password: str, *, currency: str = "UGX",
          seed: int | None = None, every_s: float = 20.0) -> threading.Event:
    """Run DemoTraffic in a daemon thread, one step a second; set the returned Event to stop it."""
    stop = threading.Event()
    traffic = DemoTraffic(portal, lambda raw: append(imap, user, password, "INBOX", raw), currency=currency,
                          rng=random.Random(seed), every_s=every_s)

    def run() -> None:
        while not stop.wait(1.0):
            traffic.step()

    threading.Thread(target=run, name="sandbox-demo-traffic", daemon=True).start()
    print(f"sandbox: demo traffic in {currency} since {datetime.now(timezone.utc):%H:%M:%S} UTC", flush=True)
    return stop
