"""Billing-database sources: a hotspot billing system's own tables, watched as requests.

The source file (DESIGN.md "Source files", kind `database`) names the URL's environment
variable, the gateway source that polls the rows, where vouchers come from (one of our
pools, or the billing database's own `vouchers` table) and each watched table's columns.
parse_config() checks its shape; check_schema() checks it against the live database and
names the missing table or column. register() turns a new pending row into a request
registered to the gateway (idempotent on source + table + row id); observe_change() hands
a status the billing system wrote to the ledger like a portal row. The pass and the
write-back (SQL in the billing database) are jobs/billing.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webapp.config import ConfigError, secret, settings
from webapp.domain import ledger, money, options, phones
from webapp.plumbing import billing_db, jobqueue
from webapp.storage import db
from webapp.storage.models import BillingRow, PaymentRequest, RequestStatus, Source, SourceKind, utcnow

META_KEY = "billing"
TABLE_COLUMNS = ("id", "status", "amount", "phone", "external_id", "created_at")  # required column names
OPTIONAL_COLUMNS = ("currency", "voucher", "customer_name")
VOUCHER_COLUMNS = ("id", "code", "used", "request_id")


class BillingConfigError(ValueError):
    """A database source's config that cannot be used; the message names the key, table or column."""


@dataclass(frozen=True)
class TableMap:
    """How one watched table's columns and status values read."""

    table: str
    columns: dict[str, str]  # our field → the column's name (id, status, amount, …)
    pending: Any
    paid: Any
    failed: Any
    cancelled: Any
    expired: Any
    currency_value: str | None
    timezone: str

    def column(self, field: str) -> str | None:
        return self.columns.get(field)

    def meaning(self, value: Any) -> str | None:
        """Our status for a status value read from the row; None for a value the config does not name."""
        for ours in ("pending", "paid", "failed", "cancelled", "expired"):
            if str(value) == str(getattr(self, ours)):
                return ours
        return None

    def value_for(self, outcome: str) -> Any:
        """The status value to write for a request that ended as `outcome`."""
        return getattr(self, outcome)


@dataclass(frozen=True)
class VoucherTable:
    table: str
    columns: dict[str, str]  # id, code, used, request_id
    used_value: Any


@dataclass(frozen=True)
class BillingConfig:
    url_env: str
    gateway: str
    voucher_pool: str | None
    vouchers: VoucherTable | None
    tables: tuple[TableMap, ...]

    def table(self, name: str) -> TableMap:
        for t in self.tables:
            if t.table == name:
                return t
        raise BillingConfigError(f"table {name!r} is no longer watched by this source")

    def url(self) -> str:
        return secret(self.url_env)


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not billing_db.IDENT.match(value):
        raise BillingConfigError(f"{where} must be a plain table or column name (letters, digits, _), got {value!r}")
    return value


def _scalar(where: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise BillingConfigError(f"{where} must be a non-empty string or a whole number, got {value!r}")
    return value


def parse_config(config: dict) -> BillingConfig:
    """The database source's config, checked; BillingConfigError names the first problem."""
    for key in ("url_env", "gateway", "tables"):
        if key not in config:
            raise BillingConfigError(f"config is missing {key}")
    if not isinstance(config["url_env"], str) or not config["url_env"]:
        raise BillingConfigError("url_env must name the environment variable holding the database URL")
    if not isinstance(config["gateway"], str) or not config["gateway"]:
        raise BillingConfigError("gateway must name a gateway source")
    pool, own = config.get("voucher_pool"), config.get("vouchers")
    if pool is not None and own is not None:
        raise BillingConfigError("give either voucher_pool (one of ours) or vouchers (the billing database's), not both")
    if pool is not None and (not isinstance(pool, str) or not pool):
        raise BillingConfigError("voucher_pool must name one of Paywatch's voucher pools")
    vouchers = _voucher_table(own) if own is not None else None
    tables = config["tables"]
    if not isinstance(tables, list) or not tables:
        raise BillingConfigError("tables must be a non-empty list of watched tables")
    maps = tuple(_table_map(i, t) for i, t in enumerate(tables))
    if len({m.table for m in maps}) != len(maps):
        raise BillingConfigError("a table is listed twice in tables")
    return BillingConfig(config["url_env"], config["gateway"], pool, vouchers, maps)


def _voucher_table(spec: Any) -> VoucherTable:
    if not isinstance(spec, dict):
        raise BillingConfigError("vouchers must be an object: {table, id, code, used, used_value, request_id}")
    missing = [k for k in ("table", *VOUCHER_COLUMNS, "used_value") if k not in spec]
    if missing:
        raise BillingConfigError(f"vouchers is missing {', '.join(missing)}")
    return VoucherTable(_name("vouchers.table", spec["table"]),
                        {k: _name(f"vouchers.{k}", spec[k]) for k in VOUCHER_COLUMNS},
                        spec["used_value"] if isinstance(spec["used_value"], bool)  # a boolean column
                        else _scalar("vouchers.used_value", spec["used_value"]))


def _table_map(index: int, spec: Any) -> TableMap:
    where = f"tables[{index}]"
    if not isinstance(spec, dict):
        raise BillingConfigError(f"{where} must be an object")
    missing = [k for k in ("table", *TABLE_COLUMNS, "pending", "paid", "failed") if k not in spec]
    if "currency" not in spec and "currency_value" not in spec:
        missing.append("currency (a column) or currency_value")
    if missing:
        raise BillingConfigError(f"{where} ({spec.get('table', '?')}) is missing {', '.join(missing)}")
    columns = {k: _name(f"{where}.{k}", spec[k]) for k in (*TABLE_COLUMNS, *OPTIONAL_COLUMNS) if spec.get(k)}
    currency_value = spec.get("currency_value")
    if currency_value is not None and "currency" not in columns:
        try:
            currency_value = money.normalize_currency(currency_value)
        except money.MoneyError as exc:
            raise BillingConfigError(f"{where}.currency_value: {exc}") from None
    zone = spec.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BillingConfigError(f"{where}.timezone: unknown time zone {zone!r}") from None
    values = {k: _scalar(f"{where}.{k}", spec[k]) for k in ("pending", "paid", "failed")}
    for k in ("cancelled", "expired"):  # written for those endings; the failed value when left out
        values[k] = _scalar(f"{where}.{k}", spec[k]) if k in spec else values["failed"]
    return TableMap(_name(f"{where}.table", spec["table"]), columns, currency_value=currency_value,
                    timezone=zone, **values)


def check_schema(config: BillingConfig, conn: billing_db.Connection | None = None) -> None:
    """Every table and column the config names exists in the billing database; else
    BillingConfigError naming it (or saying the database cannot be reached)."""
    if Source.get_or_none(Source.name == config.gateway, Source.kind == SourceKind.GATEWAY) is None:
        raise BillingConfigError(f"gateway {config.gateway!r} is not a gateway source (add it first)")
    try:
        conn = conn or billing_db.connection(config.url())
        checks = [(t.table, t.columns, "tables") for t in config.tables]
        if config.vouchers:
            checks.append((config.vouchers.table, config.vouchers.columns, "vouchers"))
        for table, columns, key in checks:
            have = table_columns(conn, table)
            if not have:
                raise BillingConfigError(f"the billing database has no table {table!r} ({key})")
            for field, column in columns.items():
                if column.lower() not in have:
                    raise BillingConfigError(f"table {table!r} has no column {column!r} ({key}: {field})")
    except (billing_db.BillingDbError, ConfigError) as exc:
        raise BillingConfigError(f"cannot check the billing database: {exc}") from None


def table_columns(conn: billing_db.Connection, table: str) -> set[str]:
    """The lower-cased column names of `table` in the connection's database (empty when no such table)."""
    schema = "DATABASE()" if conn.dialect == "mysql" else "current_schema()"
    rows = conn.fetch(f"SELECT column_name FROM information_schema.columns WHERE table_schema = {schema} "
                      "AND table_name = %s", (table,))
    return {str(r[0]).lower() for r in rows}


# ---------------------------------------------------------------- reading rows


class RowError(ValueError):
    """A billing row that cannot become a request; the message names the row and the problem."""


def _aware(value: Any, zone: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()[:40])
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(timezone.utc)


def read_row(tmap: TableMap, row: dict[str, Any]) -> dict[str, Any]:
    """A fetched row as a request's fields; RowError names what is wrong."""
    where = f"{tmap.table} row {row.get('id')}"
    external_id = str(row.get("external_id") or "").strip()[:128]
    if not external_id:
        raise RowError(f"{where}: no external id (column {tmap.column('external_id')!r} is empty)")
    try:
        currency = money.normalize_currency(tmap.currency_value or str(row.get("currency") or ""))
        amount = row.get("amount")
        amount_minor = money.to_minor(Decimal(str(amount)) if isinstance(amount, (int, float, Decimal))
                                      else str(amount or "").strip(), currency)
    except (money.MoneyError, InvalidOperation) as exc:
        raise RowError(f"{where}: {exc}") from None
    phone = phones.try_e164(str(row.get("phone") or ""), settings().phone_region) \
        if row.get("phone") else None
    return {"external_id": external_id, "currency": currency, "amount_minor": amount_minor, "phone": phone,
            "name": str(row.get("customer_name") or "")[:200], "created_at": _aware(row.get("created_at"), tmap.timezone)}


def known_rows(source: Source, table: str, row_ids: list[str]) -> set[str]:
    found = set()
    for start in range(0, len(row_ids), 500):
        chunk = row_ids[start:start + 500]
        found |= {r.row_id for r in BillingRow.select(BillingRow.row_id).where(
            BillingRow.source == source.id, BillingRow.table_name == table, BillingRow.row_id.in_(chunk))}
    return found


def register(source: Source, config: BillingConfig, tmap: TableMap, row: dict[str, Any], *,
             now: datetime | None = None) -> tuple[PaymentRequest, bool]:
    """A new pending row becomes a request registered to the gateway source (polled on its
    schedule); returns (request, created). It expires the request TTL after the row was
    created (at least one minute from now). RowError for a row that cannot be read."""
    now = now or utcnow()
    fields = read_row(tmap, row)
    row_id = str(row["id"])
    ttl = timedelta(minutes=options.current()["request_ttl_minutes"])
    created = min(fields["created_at"] or now, now)
    expires_in = max(timedelta(minutes=1), created + ttl - now)
    meta = {META_KEY: {"source": source.name, "table": tmap.table, "row_id": row_id,
                       "row_created_at": created.isoformat()}}
    new = ledger.NewRequest(amount_minor=fields["amount_minor"], currency=fields["currency"],
                            customer_name=fields["name"], customer_phone=fields["phone"], expires_in=expires_in,
                            voucher_pool=config.voucher_pool, source=config.gateway,
                            external_id=fields["external_id"], meta=meta)
    link = BillingRow.get_or_none(BillingRow.source == source.id, BillingRow.table_name == tmap.table,
                                  BillingRow.row_id == row_id)
    if link is not None:
        return PaymentRequest.get_by_id(link.request_id), False
    try:
        with db.transaction():
            request = ledger.create_request(new, actor=f"source:{source.name}", now=now)
            BillingRow.create(source=source.id, table_name=tmap.table, row_id=row_id, request=request.id,
                              status_seen=str(row["status"]), created_at=now)
            _first_look(config.gateway, request)
        return request, True
    except ledger.LedgerError as exc:
        if exc.code != "external_id_taken":
            raise RowError(f"{tmap.table} row {row_id}: {exc.message}") from None
    # The gateway already knows this external id (an API call registered it, or another
    # pass won the race): link the row to that request unless another row holds it.
    request = PaymentRequest.get(PaymentRequest.source == config.gateway,
                                 PaymentRequest.external_id == fields["external_id"])
    BillingRow.insert(source=source.id, table_name=tmap.table, row_id=row_id, request=request.id,
                      status_seen=str(row["status"]), created_at=now).on_conflict_ignore().execute()
    return request, False


def _first_look(gateway: str, request: PaymentRequest) -> None:
    """Ask the gateway about a new row once now (after the commit) rather than at its next pass:
    the customer has often approved by the time the row is read. Its schedule then applies."""
    source = Source.get_or_none(Source.name == gateway, Source.kind == SourceKind.GATEWAY, Source.enabled == True)  # noqa: E712
    if source is not None:
        jobqueue.enqueue("gateway_reread", source.id, None, request.external_id, job_id=f"billing-first-look-{request.id}")


def open_links(source: Source, table: str) -> list[BillingRow]:
    """The source's rows of `table` whose requests are still open (their status is watched)."""
    return list(BillingRow.select().join(PaymentRequest).where(
        BillingRow.source == source.id, BillingRow.table_name == table,
        PaymentRequest.status.in_(RequestStatus.OPEN)).order_by(BillingRow.id))


def observe_change(source: Source, tmap: TableMap, link: BillingRow, value: Any, *,
                   now: datetime | None = None) -> str:
    """The billing system wrote status `value` into a watched row: note it (a write-back then
    compares with it) and hand its meaning to the ledger like a portal row."""
    now = now or utcnow()
    meaning = tmap.meaning(value)
    with db.transaction():
        BillingRow.update(status_seen=str(value)).where(BillingRow.id == link.id).execute()
        if meaning in (None, "pending"):
            return "noted"
        request = PaymentRequest.get_by_id(link.request_id)
        result = ledger.observe_request(ledger.RequestObservation(
            source=request.source, external_id=request.external_id, status=meaning,
            amount_minor=request.amount_minor, currency=request.currency,
            raw=f"{source.name}: {tmap.table} row {link.row_id} status {value!r}"[:2000],
            reporter=f"source:{source.name}"), now=now)
    return result.change


def save_cursor(source_id: int, table: str, last_id: int) -> None:
    """Remember the highest row id read from `table` (rows above it are new)."""
    with db.transaction():
        source = Source.get_by_id(source_id)
        cursor = dict(source.cursor or {})
        if last_id > int(cursor.get(table, 0)):
            cursor[table] = last_id
            Source.update(cursor=cursor).where(Source.id == source_id).execute()
