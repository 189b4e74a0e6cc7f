"""Portal scraping: a 100-page sandbox portal read into a fresh SQLite ledger.

    python bench/scrape.py [--pages 100] [--page-size 20]

Prints the wall time of the first full scrape, and the page fetches (sandbox stats) of
an unchanged re-scrape (goal: ≤ 2), of one after a new row, and of one after an old
pending row turned completed. Rows are added through the sandbox's control endpoint:
old rows settled, the newest few pending, as on a real portal. Figures only, no asserts.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.portal import make_app  # noqa: E402
from sandbox.server import ServerThread  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-scrape-"))
    os.environ.update(PAYWATCH_ENV="test", DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
                      SECRET_KEY="bench-" + "x" * 32, PAYWATCH_INSTANCE_PATH=str(tmp / "instance"),
                      PAYWATCH_PHONE_REGION="UG", PAYWATCH_CURRENCY="UGX", PAYWATCH_TIMEZONE="Africa/Kampala",
                      BENCH_PORTAL_USER="demo", BENCH_PORTAL_PASSWORD="demo-pass")
    from jobs import portal as scraper
    from webapp import create_app
    from webapp.domain import sources
    from webapp.storage import db

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per page fetch otherwise
    server = ServerThread(make_app(page_size=args.page_size)).start()
    control = f"{server.url}/_sandbox"
    total = args.pages * args.page_size
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [{"id": f"TX{i:06d}", "created": (now - timedelta(minutes=3 * (total - i))).isoformat(),
             "customer": "Jane Doe", "phone": f"0772{i:06d}", "agent": f"AG{i % 12 + 1:02d}",
             "amount": str(5000 + 500 * (i % 40)),
             "status": "Pending" if i >= total - 5 else ("Completed" if i % 7 else "Failed"),
             "reference": f"INV-{i}"} for i in range(total)]
    requests.post(f"{control}/payments", json=rows, timeout=60).raise_for_status()
    config = {
        "base_url": server.url,
        "login": {"url": "/login", "form": "form#login-form",
                  "fields": {"username": "username", "password_input": "password"},
                  "username_env": "BENCH_PORTAL_USER", "password_env": "BENCH_PORTAL_PASSWORD",
                  "logged_in_selector": "a#logout"},
        "list": {"url": "/payments", "rows": "table#payments tr.payment-row", "next": "div.pager a.next",
                 "max_pages": args.pages + 10},
        "columns": {"external_id": "ID", "created_at": "Created", "amount": "Amount", "status": "Status",
                    "customer_name": "Customer", "customer_phone": "Phone", "agent_code": "Agent",
                    "reference": "Reference"},
        "status_map": {"Pending": "pending", "Completed": "paid", "Failed": "failed", "Expired": "expired",
                       "Cancelled": "cancelled"},
        "date_format": "%Y-%m-%d %H:%M:%S", "timezone": "Africa/Kampala", "currency": "UGX",
    }
    app = create_app()
    with app.app_context(), db.database.connection_context():
        db.upgrade()
        source, _ = sources.save({"kind": "portal", "name": "bench", "config": config}, actor="bench")

        def scrape(label: str) -> None:
            requests.post(f"{control}/stats/reset", timeout=5)
            started = time.perf_counter()
            summary = scraper.scrape(source.id)
            took = time.perf_counter() - started
            fetched = requests.get(f"{control}/stats", timeout=5).json()["pages_fetched"]
            print(f"{label:<42} {took:7.2f} s  {fetched:4d} page fetches  "
                  f"rows {summary['rows']}, created {summary['created']}, paid {summary['paid']}, "
                  f"ended {summary['ended']}{', ERROR ' + summary['error'] if 'error' in summary else ''}")

        print(f"portal: {args.pages} pages x {args.page_size} rows = {total} rows")
        scrape("first full scrape (login + every page)")
        scrape("unchanged re-scrape (goal <= 2)")
        requests.post(f"{control}/payments", json=[{"amount": "9000", "agent": "AG01", "phone": "0772999999",
                                                    "customer": "New Row", "status": "Pending"}], timeout=5)
        scrape("re-scrape after one new row")
        requests.post(f"{control}/payments/TX{total - 5:06d}", json={"status": "Completed"}, timeout=5)
        scrape("re-scrape after a pending row completed")
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
