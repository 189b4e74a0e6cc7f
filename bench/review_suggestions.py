"""What suggestions cost: suggest() per payment, and the review queue page with 100 unmatched payments.

    .venv/bin/python bench/review_suggestions.py                       # SQLite, 100k requests
    .venv/bin/python bench/review_suggestions.py --requests 20000 --database-url postgresql://postgres@127.0.0.1/test

A fresh database gets N requests (created over the last 60 days, amounts spread so about
`--per-amount` share each, a name and a phone each), then `--payments` unmatched payments
(near amounts, some with a known phone or surname). Prints the median and worst time (and
the CPU time) of webapp.domain.suggestions.suggest() per payment, and of GET /review/ with
the suggestions of the first SUGGEST_INLINE unmatched payments and with none (the page
shows up to 100 payments).
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.match import build_app  # noqa: E402
from webapp.domain import accounts, suggestions  # noqa: E402
from webapp.plumbing.devstack import start_redis  # noqa: E402
from webapp.storage import db  # noqa: E402
from webapp.storage.models import Payment, PaymentRequest, utcnow  # noqa: E402
from webapp.web import review  # noqa: E402

SURNAMES = ["Nambi", "Okello", "Akello", "Mukasa", "Auma", "Opio", "Nakato", "Okot", "Kato", "Achieng"]


def seed(n: int, per_amount: int, payments: int, rng: random.Random) -> None:
    now = utcnow()
    distinct = max(1, n // per_amount)
    rows = []
    with db.transaction():
        for i in range(n):
            created = now - timedelta(seconds=rng.randint(0, 60 * 86400))
            rows.append({
                "reference": f"PW-S{i:08d}", "amount_minor": 1000 + rng.randrange(distinct) * 100,
                "requested_minor": 0, "currency": "UGX", "customer_name": f"Customer {rng.choice(SURNAMES)} {i}",
                "customer_phone": f"+2567{i:08d}", "status": rng.choice(["pending", "expired", "paid"]),
                "source": "bench", "created_at": created, "expires_at": created + timedelta(hours=1), "meta": {},
            })
            if len(rows) == 2000:
                PaymentRequest.insert_many(rows).execute()
                rows.clear()
        if rows:
            PaymentRequest.insert_many(rows).execute()
        Payment.insert_many([{
            "source": "bench", "source_ref": f"row-{i}", "amount_minor": 1000 + rng.randrange(distinct) * 100 + 50,
            "currency": "UGX", "sender_name": f"{rng.choice(SURNAMES)} Someone", "status": "unmatched",
            "sender_phone": f"+2567{rng.randrange(n):08d}" if i % 2 else None, "evidence": [],
            "received_at": now - timedelta(seconds=rng.randint(0, 30 * 86400)), "raw": "", "note": "",
        } for i in range(payments)]).execute()


def _figures(times: list[float], cpu: float) -> str:
    return (f"median {statistics.median(times) * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms, "
            f"CPU {cpu / len(times) * 1000:.1f} ms each ({len(times)} runs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--per-amount", type=int, default=20)
    parser.add_argument("--payments", type=int, default=100)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        redis = start_redis(Path(tmp) / "redis", persist=False)
        try:
            app = build_app(args.database_url or f"sqlite:///{tmp}/bench.db", Path(tmp), redis.url)
            with app.app_context(), db.database.connection_context():
                seed(args.requests, args.per_amount, args.payments, random.Random(18))
                accounts.create_user("bench@example.com", "bench-password-1234", "staff", "", actor="bench")
                timed, cpu, found = [], time.process_time(), 0
                for payment in Payment.select().limit(args.payments):
                    start = time.perf_counter()
                    found += len(suggestions.suggest(payment))
                    timed.append(time.perf_counter() - start)
                print(f"suggest() with {args.requests} requests: {_figures(timed, time.process_time() - cpu)}; "
                      f"{found / len(timed):.1f} suggestions a payment")
            client = app.test_client()
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login").get_data(as_text=True))
            client.post("/login", data={"email": "bench@example.com", "password": "bench-password-1234",
                                        "csrf_token": token.group(1)})
            for inline in (review.SUGGEST_INLINE, 0):  # 0: the page without suggestions, for comparison
                review.SUGGEST_INLINE, pages, cpu = inline, [], time.process_time()
                for _ in range(args.pages):
                    start = time.perf_counter()
                    response = client.get("/review/")
                    pages.append(time.perf_counter() - start)
                    assert response.status_code == 200, response.status_code
                shown = len(re.findall(r'<li class="suggestion[ "]', response.get_data(as_text=True)))
                print(f"GET /review/ with {args.payments} unmatched payments, suggestions inline for {inline} "
                      f"({shown} shown): {_figures(pages, time.process_time() - cpu)}")
        finally:
            redis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
