"""Reading a portal's payments table: the source config, header matching, one row → observation.

Pure (no HTTP, no database): `PortalConfig.from_source(config)` checks a portal source's
config (README "Portal sources"); `find_columns(page, cfg)` maps our fields to cell
positions by header text; `parse_row(cells, columns, cfg)` turns one row into a
`ledger.RequestObservation` or raises `Unparseable` saying why. Nothing is guessed:
an amount, status or time that cannot be read exactly makes the row unparseable.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bs4 import BeautifulSoup, Tag

from webapp.domain import input_bounds, money, phones
from webapp.domain.ledger import RequestObservation

FIELDS = ("external_id", "created_at", "amount", "currency", "status", "customer_name",
          "customer_phone", "agent_code", "reference", "transaction_id", "paid_at")
REQUIRED_FIELDS = ("external_id", "created_at", "amount", "status")  # created_at: where a row sits
STATUSES = ("pending", "paid", "failed", "expired", "cancelled")


class ConfigProblem(ValueError):
    """A portal source config that cannot work; the message names the key."""


class Unparseable(ValueError):
    """A row that cannot be read exactly; the message says which cell and why."""


def norm(text: str | None) -> str:
    """Header / status text as compared: whitespace collapsed, case folded."""
    return " ".join((text or "").split()).casefold()


def _get(config: dict, key: str, kind: type | tuple, default: Any = ..., where: str = "") -> Any:
    """config[key] checked to be a `kind` (never a bool for numbers); ConfigProblem names the key."""
    value = config.get(key)
    if value is None:
        if default is ...:
            raise ConfigProblem(f"{where}{key} is required")
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind not in (bool,)):
        raise ConfigProblem(f"{where}{key} has the wrong type: {value!r}")
    return value


@dataclass(frozen=True)
class PortalConfig:
    base_url: str
    login_url: str
    login_form: str
    username_field: str
    password_field: str
    username_env: str
    password_env: str
    logged_in_selector: str
    list_url: str
    rows: str
    next: str | None
    max_pages: int
    header_selector: str | None
    columns: dict[str, tuple[str, ...]]  # our field -> accepted header texts (as configured)
    status_map: dict[str, str]  # normalised portal text -> our status
    date_formats: tuple[str, ...]
    zone: ZoneInfo
    currency: str | None
    decimal_separator: str
    currency_aliases: dict[str, str] = field(default_factory=dict)  # normalised text -> ISO code
    follow_pending_hours: float = 24.0
    backoff_s: int = 30
    timeout_s: float = 20.0

    @classmethod
    def from_source(cls, config: dict[str, Any]) -> "PortalConfig":
        """Check a portal source's config; ConfigProblem names the first bad key."""
        login = _get(config, "login", dict)
        listing = _get(config, "list", dict)
        columns = _get(config, "columns", dict)
        fields = _get(login, "fields", dict, where="login.")
        unknown = sorted(set(columns) - set(FIELDS))
        if unknown:
            raise ConfigProblem(f"columns: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        missing = [f for f in REQUIRED_FIELDS if f not in columns]
        if missing:
            raise ConfigProblem(f"columns must name the header of {', '.join(missing)}")
        headers: dict[str, tuple[str, ...]] = {}
        for key, value in columns.items():
            texts = [value] if isinstance(value, str) else value
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise ConfigProblem(f"columns.{key} must be a header text or a list of them")
            headers[key] = tuple(t.strip() for t in texts)
        status_map: dict[str, str] = {}
        for text, status in _get(config, "status_map", dict).items():
            if status not in STATUSES:
                raise ConfigProblem(f"status_map[{text!r}] must be one of {', '.join(STATUSES)}, got {status!r}")
            status_map[norm(text)] = status
        formats = config.get("date_format") or []
        formats = tuple([formats] if isinstance(formats, str) else formats)
        try:
            zone = ZoneInfo(config.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigProblem(f"timezone: unknown zone {config.get('timezone')!r}") from None
        currency = config.get("currency")
        if currency is not None:
            try:
                currency = money.normalize_currency(currency)
            except money.MoneyError as exc:
                raise ConfigProblem(f"currency: {exc}") from None
        separator = config.get("decimal_separator", ".")
        if separator not in (".", ","):
            raise ConfigProblem("decimal_separator must be \".\" or \",\"")
        max_pages = _get(listing, "max_pages", int, 20, "list.")
        if max_pages < 1:
            raise ConfigProblem("list.max_pages must be at least 1")
        base = _get(config, "base_url", str)
        return cls(
            base_url=base,
            login_url=_get(login, "url", str, "/login", "login."),
            login_form=_get(login, "form", str, "form", "login."),
            username_field=_get(fields, "username", str, where="login.fields."),
            # "password_input" spells the same thing for validators that refuse any key named "password".
            password_field=_get(fields, "password_input", str, None, "login.fields.")
            or _get(fields, "password", str, where="login.fields."),
            username_env=_get(login, "username_env", str, where="login."),
            password_env=_get(login, "password_env", str, where="login."),
            logged_in_selector=_get(login, "logged_in_selector", str, where="login."),
            list_url=_get(listing, "url", str, where="list."),
            rows=_get(listing, "rows", str, where="list."),
            next=_get(listing, "next", str, None, "list."),
            max_pages=max_pages,
            header_selector=_get(listing, "header_selector", str, None, "list."),
            columns=headers, status_map=status_map, date_formats=formats, zone=zone,
            currency=currency, decimal_separator=separator,
            currency_aliases=_aliases(_get(config, "currency_aliases", dict, {})),
            follow_pending_hours=float(_get(listing, "follow_pending_hours", (int, float), 24, "list.")),
            backoff_s=_get(config, "backoff_s", int, 30),
            timeout_s=float(_get(config, "timeout_s", (int, float), 20)),
        )


def _aliases(aliases: dict[str, Any]) -> dict[str, str]:
    try:
        return {norm(text): money.normalize_currency(code) for text, code in aliases.items()}
    except (money.MoneyError, AttributeError):
        raise ConfigProblem("currency_aliases maps currency texts to ISO codes, e.g. {\"USh\": \"UGX\"}") from None


def cells(row: Tag) -> list[str]:
    """The text of a row's own cells (td and th, not those of nested tables)."""
    return [" ".join(c.get_text(" ").split()) for c in row.find_all(["td", "th"], recursive=False)]


def header_cells(page: BeautifulSoup, rows: list[Tag], cfg: PortalConfig) -> list[str] | None:
    """The header texts of the payments table, or None when the page shows no table to read."""
    if cfg.header_selector:
        found = page.select(cfg.header_selector)
        if len(found) == 1 and found[0].name == "tr":
            found = found[0].find_all(["th", "td"], recursive=False)
        return [" ".join(c.get_text(" ").split()) for c in found] if found else None
    table = rows[0].find_parent("table") if rows else None
    if table is None:
        return None
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is table and tr.find("th", recursive=False):
            return cells(tr)
    return None


def find_columns(headers: list[str], cfg: PortalConfig) -> tuple[dict[str, int], list[str]]:
    """(our field -> cell position, configured fields whose header is missing). Extra columns are fine."""
    seen = {norm(h): i for i, h in reversed(list(enumerate(headers)))}
    positions, missing = {}, []
    for key, texts in cfg.columns.items():
        where = next((seen[norm(t)] for t in texts if norm(t) in seen), None)
        if where is None:
            missing.append(key)
        else:
            positions[key] = where
    return positions, missing


# Cell lengths our columns hold; a longer id is not an id (the row is unparseable).
_MAX_CELL = {"external_id": 128, "transaction_id": 128, "reference": 64, "agent_code": 64, "customer_name": 200,
             "customer_phone": 40, "currency": 16, "status": 64, "amount": 255, "created_at": 64,
             "paid_at": 64}
_MAX_AMOUNT_TEXT = 64  # a cell longer than this is not an amount (and is never parsed)
_CODE = re.compile(r"[^\d\s.,'’\u00a0\u202f-]+")


def parse_amount(text: str, cfg: PortalConfig, column_currency: str | None) -> tuple[int, str]:
    """(minor units, currency) from "UGX 50,000", "5,000.00", "50 000 UGX"; Unparseable when unsure."""
    raw = text[:_MAX_AMOUNT_TEXT + 1].strip()
    if len(raw) > _MAX_AMOUNT_TEXT:
        raise Unparseable(f"amount {raw[:24]!r}… is over {_MAX_AMOUNT_TEXT} characters: not an amount")
    codes = [c.strip() for c in _CODE.findall(raw) if c.strip()]
    if len(codes) > 1:
        raise Unparseable(f"amount {text!r}: more than one currency text")
    found = None
    if codes:
        code = codes[0]
        found = cfg.currency_aliases.get(norm(code)) or (code if code in money.currencies() else None)
        if found is None:
            raise Unparseable(f"amount {text!r}: {code!r} is not a currency code (add it to currency_aliases)")
    currency = _pick_currency(found, column_currency, cfg, text)
    number = _CODE.sub("", raw).strip().replace("\u00a0", " ").replace("\u202f", " ")
    value = _number(number, cfg.decimal_separator, money.exponent(currency))
    if value is None:
        raise Unparseable(f"amount {text!r} is not a number written one way ({cfg.decimal_separator!r} decimals)")
    try:
        minor = money.to_minor(value, currency)
    except money.MoneyError as exc:
        raise Unparseable(f"amount {text!r}: {exc}") from None
    if minor <= 0:
        raise Unparseable(f"amount {text!r} is not positive")
    return minor, currency


def _pick_currency(found: str | None, column: str | None, cfg: PortalConfig, text: str) -> str:
    if found and column and found != column:
        raise Unparseable(f"amount {text!r} says {found} but the currency column says {column}")
    code = found or column or cfg.currency
    if not code:
        raise Unparseable(f"amount {text!r}: no currency (set \"currency\" in the source config)")
    return code


def _number(text: str, decimal: str, exponent: int) -> str | None:
    """A plain decimal string from grouped digits; None when the grouping is not unambiguous."""
    group = "," if decimal == "." else r"[.\s]"
    dec = re.escape(decimal)
    grouped = re.fullmatch(rf"(\d{{1,3}}(?:(?:{group}|[\s'’])\d{{3}})+)(?:{dec}(\d+))?", text)
    plain = re.fullmatch(rf"(\d+)(?:{dec}(\d+))?", text)
    match = plain or grouped
    if not match:
        return None
    whole = re.sub(r"\D", "", match.group(1))
    if plain and match.group(2) and len(match.group(2)) == 3 and exponent != 3:
        return None  # "5.000" / "5,000" with one separator: a thousand or a fraction? refuse
    return whole + (f".{match.group(2)}" if match.group(2) else "")


def parse_time(text: str, cfg: PortalConfig) -> datetime:
    """A cell's time read with date_format in the source's zone (ISO 8601 when no format), as UTC."""
    value = text.strip()
    for fmt in cfg.date_formats or ():
        try:
            moment = datetime.strptime(value, fmt)
            break
        except ValueError:
            continue
    else:
        if cfg.date_formats:
            raise Unparseable(f"time {text!r} does not follow date_format {' or '.join(cfg.date_formats)!r}")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Unparseable(f"time {text!r} is not ISO 8601 (set date_format)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=cfg.zone)
    try:
        moment = moment.astimezone(timezone.utc)
        out_of_range = input_bounds.time_problem(moment)
    except OverflowError:  # year 1 or 9999 shifted by the zone
        out_of_range = input_bounds.TIME_RANGE
    if out_of_range:
        raise Unparseable(f"time {text[:40]!r} {out_of_range}")
    return moment


def parse_row(values: list[str], positions: dict[str, int], headers: list[str], cfg: PortalConfig,
              source: str, region: str | None) -> RequestObservation:
    """One row as an observation; Unparseable names the cell that cannot be read."""
    def cell(key: str) -> str:
        where = positions.get(key)
        text = values[where].strip() if where is not None and where < len(values) else ""
        problem = input_bounds.text_problem(text, max_length=_MAX_CELL.get(key, 255))
        if problem:
            raise Unparseable(f"{key} cell {text[:40]!r}: {problem}")
        return text

    if len(values) < len(headers):
        raise Unparseable(f"row has {len(values)} cells, the header has {len(headers)}")
    external_id = cell("external_id")
    if not external_id:
        raise Unparseable("the id cell is empty")
    status = cfg.status_map.get(norm(cell("status")))
    if status is None:
        raise Unparseable(f"{external_id}: status {cell('status')!r} is not in status_map")
    column_currency = None
    if cell("currency"):
        try:
            text = cell("currency")
            column_currency = money.normalize_currency(cfg.currency_aliases.get(norm(text), text))
        except money.MoneyError:
            raise Unparseable(f"{external_id}: currency {cell('currency')!r} is not an ISO code") from None
    try:
        amount, currency = parse_amount(cell("amount"), cfg, column_currency)
        created = parse_time(cell("created_at"), cfg) if "created_at" in positions else None
        # When the money moved, by the portal's clock (an optional column; empty while unpaid).
        paid_at = parse_time(cell("paid_at"), cfg) if status == "paid" and cell("paid_at") else None
    except Unparseable as exc:
        raise Unparseable(f"{external_id}: {exc}") from None
    raw = json.dumps(dict(zip(headers, values)), ensure_ascii=False)
    return RequestObservation(
        source=source, external_id=external_id, status=status, amount_minor=amount, currency=currency,
        customer_name=cell("customer_name"), customer_phone=phones.try_e164(cell("customer_phone"), region),
        agent_code=cell("agent_code") or None, reference=cell("reference") or None, created_at=created,
        transaction_id=cell("transaction_id") or None, raw=raw, paid_at=paid_at,
    )
