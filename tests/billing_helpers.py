"""Throw-away billing databases with the seed's schema (tests/fixtures/billing/), on real servers.

MariaDB: a fresh database `pw_billing_<random>` (TEST_MYSQL_URL, default
mysql://root@127.0.0.1:3306/test), dropped afterwards. PostgreSQL: a fresh schema
`pw_billing_<random>` in TEST_DATABASE_URL's database (default the local `test`).
When TEST_MYSQL_URL / TEST_DATABASE_URL is set (`.ci/run` sets them when the servers
answer) its server must work; otherwise the local default is tried and a server that
does not answer skips its leg, saying so.
"""
from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from webapp.plumbing import billing_db

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "billing"
MYSQL_URL = os.environ.get("TEST_MYSQL_URL") or "mysql://root@127.0.0.1:3306/test"
PG_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
REQUIRED = {"mariadb": bool(os.environ.get("TEST_MYSQL_URL")), "postgres": bool(os.environ.get("TEST_DATABASE_URL"))}


def seed_source(url_env: str = "BILLING_DATABASE_URL", gateway: str = "iotec", **changes) -> dict:
    spec = json.loads((FIXTURES / "seed_source.json").read_text())
    spec["config"].update(url_env=url_env, gateway=gateway, **changes)
    return spec


def _statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


class BillingDb:
    """One throw-away billing database; `url` is what Paywatch is given, `sql` the billing system's hand."""

    def __init__(self, kind: str):
        self.kind = kind
        self.name = "pw_billing_" + secrets.token_hex(5)
        base = billing_db.parse_url(MYSQL_URL if kind == "mariadb" else PG_URL)
        self.admin = billing_db.Connection(base).open()  # BillingDbError when the server does not answer
        if kind == "mariadb":
            self.admin.execute(f"CREATE DATABASE {self.name}")
            auth = base.user + (f":{quote(base.password)}" if base.password else "")
            self.url = f"mysql://{auth}@{base.host}:{base.port}/{self.name}"
        else:
            self.admin.execute(f"CREATE SCHEMA {self.name}")
            sep = "&" if "?" in PG_URL else "?"
            self.url = f"{PG_URL}{sep}options={quote(f'-csearch_path={self.name}')}"
        self.sql = billing_db.Connection(billing_db.parse_url(self.url)).open()
        for statement in _statements(FIXTURES / ("seed_mysql.sql" if kind == "mariadb" else "seed_postgres.sql")):
            self.execute(statement)

    def execute(self, sql: str, params=()) -> int:
        with self.sql.transaction() as tx:
            return tx.execute(sql, params)

    def fetch(self, sql: str, params=()):
        return self.sql.fetch(sql, params)

    def drop(self) -> None:
        self.sql.close()
        if self.kind == "mariadb":
            self.admin.execute(f"DROP DATABASE IF EXISTS {self.name}")
        else:
            self.admin.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        self.admin.close()

    # ---- what the PHP portal does

    def new_request(self, reference: str, amount: str = "5000.00", phone: str = "0772123456") -> int:
        now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
        self.execute("INSERT INTO payment_requests (reference, phone_number, customer_name, amount, currency, status, "
                     "created_at) VALUES (%s, %s, %s, %s, 'UGX', 'pending', %s)",
                     (reference, phone, "Jane Doe", amount, now))
        return int(self.fetch("SELECT id FROM payment_requests WHERE reference = %s", (reference,))[0][0])

    def new_transaction(self, reference: str, amount: int = 5000, phone: str = "0772123456") -> int:
        from zoneinfo import ZoneInfo

        local = datetime.now(ZoneInfo("Africa/Kampala")).replace(tzinfo=None, microsecond=0)
        self.execute("INSERT INTO transactions (msisdn, amt, txn_ref, txn_status, date_added) "
                     "VALUES (%s, %s, %s, 'PENDING', %s)", (phone, amount, reference, local))
        return int(self.fetch("SELECT txn_id FROM transactions WHERE txn_ref = %s", (reference,))[0][0])

    def add_vouchers(self, *codes: str) -> None:
        for code in codes:
            self.execute("INSERT INTO vouchers (code) VALUES (%s)", (code,))

    def request_row(self, row_id: int) -> dict:
        cols = ("status", "voucher_code")
        row = self.fetch(f"SELECT {', '.join(cols)} FROM payment_requests WHERE id = %s", (row_id,))[0]
        return dict(zip(cols, row))

    def transaction_row(self, row_id: int) -> dict:
        row = self.fetch("SELECT txn_status, voucher FROM transactions WHERE txn_id = %s", (row_id,))[0]
        return {"status": row[0], "voucher_code": row[1]}

    def vouchers(self) -> list[tuple]:
        return [tuple(r) for r in self.fetch("SELECT code, is_used, used_by FROM vouchers ORDER BY id")]
