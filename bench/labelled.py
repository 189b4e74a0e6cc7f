"""Precision and recall of matching on bench/labelled_payments.toml (payments labelled by a bookkeeper).

    .venv/bin/python bench/labelled.py             # totals, per region, every miss and wrong one
    .venv/bin/python bench/labelled.py --quiet     # totals and per region only

Each payment goes through matching.match() (hybrid mode, default settings, the
built-in names table) against its book of open requests. A payment is *right* when
matching confirms the request the bookkeeper named, *wrong* when it confirms
anything else (or anything at all where the bookkeeper would not), a *miss* when it
confirms nothing where the bookkeeper would. precision = right / (right + wrong),
recall = right / payments with an answer. Goal: 0 wrong, recall >= 95 %.

Runs on older code too (no names table, no learned facts: those are left out), so the
same file measures before and after.
"""
from __future__ import annotations

import argparse
import inspect
import random
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webapp.domain import matching  # noqa: E402
from webapp.domain.money import exponent  # noqa: E402
from webapp.domain.references import ALPHABET  # noqa: E402

DATA = Path(__file__).with_name("labelled_payments.toml")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LIFETIME = timedelta(days=7)


@dataclass
class Outcome:
    region: str
    payment: dict
    action: str
    chosen: str | None
    reason: str

    @property
    def answer(self) -> str:
        return self.payment["answer"]

    @property
    def right(self) -> bool:
        return self.action == "confirm" and self.chosen == self.answer

    @property
    def wrong(self) -> bool:
        return self.action == "confirm" and self.chosen != self.answer


def reference(request_id: str) -> str:
    rng = random.Random(request_id)
    return "PW-" + "".join(rng.choice(ALPHABET) for _ in range(6))


def typo(request_id: str) -> str:
    ref = reference(request_id)
    rng = random.Random("typo " + request_id)
    i = 3 + rng.randrange(6)
    return ref[:i] + rng.choice([c for c in ALPHABET if c != ref[i]]) + ref[i + 1:]


def note(text: str) -> str:
    for kind, make in (("ref", reference), ("typo", typo)):
        while "{" + kind + ":" in text:
            start = text.index("{" + kind + ":")
            end = text.index("}", start)
            text = text[:start] + make(text[start + len(kind) + 2:end]) + text[end + 1:]
    return text


def _settings():
    fields = {f for f in inspect.signature(matching.MatchSettings).parameters}
    if "names" in fields:
        from webapp.domain.matching import variants

        return matching.MatchSettings(names=variants.load())
    return matching.MatchSettings()


def _learned(payment: dict, requests: dict, settings) -> tuple:
    from webapp.domain.matching import names

    found = []
    for kind, alias, request_id, confirmed, rejected in payment.get("learned", []):
        customer = requests[request_id]
        key = names.key(alias, settings.names) if kind == "name" else alias
        phone = customer.customer_phone or None
        found.append(matching.Learned(kind=kind, alias=key, customer_phone=phone,
                                      customer_name=None if phone else names.key(customer.customer_name,
                                                                                 settings.names),
                                      confirmed=confirmed, rejected=rejected, shown=alias))
    return tuple(found)


def evaluate(path: Path = DATA) -> list[Outcome]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    settings = _settings()
    learns = "learned" in inspect.signature(matching.match).parameters
    books = {}
    for region, book in data["books"].items():
        scale = 10 ** exponent(book["currency"])
        books[region] = {
            rid: matching.RequestFacts(
                id=rid, reference=reference(rid), amount_minor=amount * scale, currency=book["currency"],
                status="pending", created_at=T0, expires_at=T0 + LIFETIME, customer_name=name,
                customer_phone=phone or None)
            for rid, name, phone, amount in book["requests"]
        }
    outcomes = []
    for payment in data["payments"]:
        region = payment["book"]
        book = books[region]
        currency = data["books"][region]["currency"]
        at = T0 + (LIFETIME + timedelta(days=1) if payment.get("late") else timedelta(hours=2))
        facts = matching.PaymentFacts(
            amount_minor=payment["amount"] * 10 ** exponent(currency), currency=currency, received_at=at,
            note=note(payment.get("note", "")) or None, sender_name=payment.get("name") or None,
            sender_phone=payment.get("phone") or None)
        extra = {"learned": _learned(payment, book, settings)} if learns else {}
        decision = matching.match(facts, list(book.values()), settings=settings, now=at, **extra)
        chosen = decision.candidate.request_id if decision.candidate is not None else None
        outcomes.append(Outcome(region, payment, decision.action, chosen, decision.reason))
    return outcomes


def figures(outcomes: list[Outcome]) -> dict[str, float | int]:
    right = sum(o.right for o in outcomes)
    wrong = sum(o.wrong for o in outcomes)
    answered = sum(bool(o.answer) for o in outcomes)
    return {"payments": len(outcomes), "answered": answered, "right": right, "wrong": wrong,
            "precision": right / (right + wrong) if right + wrong else 1.0,
            "recall": right / answered if answered else 1.0}


def _line(label: str, f: dict) -> str:
    return (f"{label:<10} {f['payments']:>4} payments  {f['answered']:>4} with an answer  "
            f"{f['right']:>4} right  {f['wrong']:>3} wrong  precision {f['precision']:.1%}  recall {f['recall']:.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="totals and regions only")
    args = parser.parse_args()
    outcomes = evaluate()
    by_region = defaultdict(list)
    for o in outcomes:
        by_region[o.region].append(o)
    print(_line("all", figures(outcomes)))
    for region, items in by_region.items():
        print(_line(region, figures(items)))
    if not args.quiet:
        for o in outcomes:
            if o.wrong:
                print(f"WRONG {o.region}: {o.payment} -> confirmed {o.chosen} ({o.reason})")
            elif o.answer and not o.right:
                print(f"miss  {o.region}: {o.payment.get('name') or o.payment.get('phone') or o.payment.get('note')!r}"
                      f" -> {o.action} ({o.reason}); bookkeeper: {o.answer}, {o.payment['why']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
