"""Checking what the sandbox portal's control endpoints are given: a bad value raises
BadInput naming the field, and nothing changes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STATUSES = ("Pending", "Completed", "Failed", "Expired", "Cancelled")
COLUMN_KEYS = ("id", "created", "customer", "phone", "agent", "amount", "currency", "status", "reference")


class BadInput(ValueError):
    """A control request the portal cannot accept; answered with 400 and the message."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise BadInput(message)


@dataclass
class Payment:
    """One row of the portal's payments table (amount in major units, created as epoch s)."""

    id: str
    created: float
    customer: str
    phone: str
    agent: str
    amount: Decimal
    currency: str
    status: str
    reference: str
    seq: int = field(default=0, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain data: amount as a decimal string, created as ISO 8601 UTC."""
        data = {k: v for k, v in asdict(self).items() if k != "seq"}
        data["amount"] = f"{self.amount:.2f}"
        data["created"] = datetime.fromtimestamp(self.created, timezone.utc).isoformat()
        return data


def _text(value: Any, name: str = "value") -> str:
    _require(isinstance(value, str), f"{name}: expected a string, got {value!r}")
    return value


def _amount(value: Any, name: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadInput(f"{name}: not a number: {value!r}") from None
    _require(amount.is_finite() and amount > 0 and not isinstance(value, bool),
             f"{name}: must be a positive number, got {value!r}")
    return amount.quantize(Decimal("0.01"))


def _when(value: Any, name: str = "created") -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        moment = datetime.fromisoformat(_text(value, name))
    except ValueError:
        raise BadInput(f"{name}: not an ISO 8601 time: {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _status(value: Any, name: str = "status") -> str:
    _require(value in STATUSES, f"{name}: one of {', '.join(STATUSES)}, got {value!r}")
    return value


def _currency(value: Any, name: str = "currency") -> str:
    _require(isinstance(value, str) and len(value) == 3 and value.isalpha(),
             f"{name}: a 3-letter code, got {value!r}")
    return value.upper()


def _number(low: float, high: float, cast: type = float) -> Callable[[Any, str], Any]:
    """A checker for a number in [low, high]; `cast=int` also refuses fractions."""
    def check(value: Any, name: str) -> Any:
        ok = isinstance(value, int if cast is int else (int, float)) and not isinstance(value, bool)
        _require(ok and low <= value <= high, f"{name}: a number from {low} to {high}, got {value!r}")
        return cast(value)
    return check


def _shaped(test: Callable[[Any], bool], message: str, convert: Callable = lambda v: v):
    """A checker that refuses a value failing `test` with `message`, else returns convert(value)."""
    def check(value: Any, name: str) -> Any:
        _require(bool(test(value)), f"{name}: {message}, got {value!r}")
        return convert(value)
    return check


def _zone(value: Any, name: str) -> str:
    try:
        ZoneInfo(_text(value, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"{name}: unknown time zone {value!r}") from None
    return value


def _strings(kind: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, kind) and all(isinstance(x, str) and x for x in (
        v.values() if isinstance(v, dict) else v))


_flag = _shaped(lambda v: isinstance(v, bool), "must be true or false")
_labels = _shaped(lambda v: _strings(dict)(v) and set(v) <= set(COLUMN_KEYS),
                  "an object of column key -> header text", dict)
PAYMENT_FIELDS: dict[str, Callable[..., Any]] = {
    "id": _text, "created": _when, "customer": _text, "phone": _text, "agent": _text,
    "amount": _amount, "currency": _currency, "status": _status, "reference": _text}
CONFIG_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "page_size": _number(1, 1000, int), "idle_timeout_s": _number(0.001, 10**6),
    "timezone": _zone, "date_format": _text, "currency": _currency,
    "columns": _shaped(lambda v: _strings(list)(v) and v and set(v) <= set(COLUMN_KEYS)
                       and len(set(v)) == len(v), f"distinct keys from {COLUMN_KEYS}", list)}
FAULT_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "rename_column": _shaped(_strings(dict), "an object of header text -> new text", dict),
    "remove_column": _shaped(lambda v: isinstance(v, str) or _strings(list)(v),
                             "a header text or a list of them",
                             lambda v: [v] if isinstance(v, str) else list(v)),
    "error_5xx": _number(0, 10**6, int), "error_5xx_code": _number(500, 599, int),
    "status_429": _number(0, 10**6, int), "slow_seconds": _number(0, 120), "refuse_logins": _flag}


def _checked(fields: dict[str, Callable[..., Any]], data: Any, what: str) -> dict[str, Any]:
    """`data` (a JSON object) with every value checked by `fields`; raises BadInput."""
    _require(isinstance(data, dict), f"{what}: expected a JSON object")
    unknown = sorted(set(data) - set(fields))
    _require(not unknown, f"{what}: unknown fields {', '.join(unknown)}")
    return {key: fields[key](value, key) for key, value in data.items()}
