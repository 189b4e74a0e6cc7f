"""What the JSON API's views share: key auth (and its rate limit), input parsing, errors, idempotency.

Errors always have the documented shape
`{"success": false, "error": {"code", "message", "details", "timestamp"}}`.
Amounts travel as decimal strings, times as ISO 8601 with an offset.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from functools import wraps
from typing import Any, Callable

from flask import g, jsonify, make_response, request
from peewee import IntegrityError

from webapp.api import limits
from webapp.config import settings
from webapp.domain import apikeys, input_bounds, money, phones
from webapp.storage import db
from webapp.storage.models import IdempotencyRecord, Role
from webapp.web.access import ROLE_RANK
from webapp.web.errors import error_body

API_STAFF = "api:staff"
API_ADMIN = "api:admin"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def error_response(exc: ApiError):
    return jsonify(error_body(exc.status, exc.code, exc.message, exc.details)), exc.status


def api_access(level: str) -> Callable:
    """Require `Authorization: Bearer <api key>` of at least `level` (api:staff / api:admin)."""
    role = {API_STAFF: Role.STAFF, API_ADMIN: Role.ADMIN}[level]

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args, **kwargs):
            scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
            key = apikeys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
            if key is None:
                return error_response(ApiError(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>"))
            if ROLE_RANK[key.role] < ROLE_RANK[role]:
                return error_response(ApiError(403, "forbidden", f"this call needs a key with role {role}"))
            g.api_key = key
            allowance = limits.check(key)
            if not allowance.allowed:
                over = ApiError(429, "rate_limited", f"this key may make {allowance.limit} calls per window; "
                                f"retry in {allowance.headers()['Retry-After']} s", {"limit": allowance.limit})
                return allowance.apply(make_response(error_response(over)))
            try:
                return allowance.apply(make_response(view(*args, **kwargs)))
            except ApiError as exc:
                return allowance.apply(make_response(error_response(exc)))

        guarded.access = level
        return guarded

    return decorate


def actor() -> str:
    return f"api:{g.api_key.prefix}"


# ------------------------------------------------------------------ input

MAX_BODY = 64 * 1024  # bytes of a JSON body; 413 above (a request with a full meta is ~20 KiB)
MAX_META = 16 * 1024  # bytes of `meta` as compact JSON
MAX_KEY_TEXT = 255  # Idempotency-Key, cursor and other short tokens
_LONG_INT = 18  # JSON integers longer than this are read as Decimal (never int's slow path)


def _json_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _LONG_INT else Decimal(text)


def _json_fraction(text: str) -> Decimal | float:
    # "12.50" stays exact; an exponent form ("1e999999") is a float (inf here), which
    # amounts refuse: decimal notation only.
    return float(text) if "e" in text or "E" in text else Decimal(text)


def json_body() -> dict[str, Any]:
    """The request's JSON object, numbers kept exact (Decimal), shape checked.

    400 for text that is not JSON, 413 above MAX_BODY (werkzeug, from the limit the API
    sets on each request), 422 naming the field for nesting deeper than MAX_JSON_DEPTH
    or text no column can store (NUL, unpaired surrogates).
    """
    cached = g.get("json_body")
    if cached is not None:
        return cached
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"{}", parse_float=_json_fraction, parse_int=_json_int)
    except RecursionError:
        raise field_error("body", f"is nested deeper than {input_bounds.MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    problem = input_bounds.json_problem(data)
    if problem:
        raise field_error(*problem)
    g.json_body = data
    return data


def field_error(field: str, problem: str) -> ApiError:
    return ApiError(422, "validation_failed", f"{field}: {problem}", {field: problem})


def text(data: dict, field: str, *, required: bool = False, max_length: int = 255, default: str | None = None,
         multiline: bool = False) -> str | None:
    """A string field, stripped; 422 when too long or holding control characters (a note: `multiline`)."""
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise field_error(field, "is required")
        return default
    if not isinstance(value, str):
        raise field_error(field, "must be a string")
    value = value.strip()
    problem = input_bounds.text_problem(value, max_length=max_length, multiline=multiline)
    if problem:
        raise field_error(field, problem)
    return value


def query_text(name: str, *, max_length: int = 100) -> str | None:
    """A query-string parameter as text (None when absent or empty); 422 naming it when unusable."""
    value = request.args.get(name)
    if not value:
        return None
    problem = input_bounds.text_problem(value, max_length=max_length)
    if problem:
        raise field_error(name, problem)
    return value


def amount(data: dict, currency: str, field: str = "amount") -> int:
    value = data.get(field)
    if value is None or value == "":
        raise field_error(field, 'is required, as a decimal string like "5000.00"')
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise field_error(field, 'must be a decimal string like "5000.00"')
    try:
        minor = money.to_minor(value, currency)
    except money.MoneyError as exc:
        raise field_error(field, str(exc)) from None
    if minor <= 0:
        raise field_error(field, "must be more than zero")
    return minor


def phone(data: dict, field: str, *, strict: bool) -> str | None:
    """A phone number in E.164; with `strict=False` a masked number ("2567****123") is kept as evidence."""
    raw = text(data, field, max_length=40)
    if raw is None:
        return None
    number = phones.try_e164(raw, settings().phone_region)
    if number:
        return number
    if not strict and any(c in raw for c in "*xX•#"):
        return raw  # a masked number, as a provider shows it: evidence, not an address
    raise field_error(field, f"{raw!r} is not a valid phone number (use international form, e.g. +256772123456)")


def currency(data: dict, default: str) -> str:
    value = data.get("currency", default)
    try:
        return money.normalize_currency(value if isinstance(value, str) else "")
    except money.MoneyError as exc:
        raise field_error("currency", str(exc)) from None


def timestamp(data: dict, field: str) -> datetime | None:
    """An ISO 8601 time with its offset, in UTC; 422 naming the field otherwise or out of range."""
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > input_bounds.MAX_TIME_TEXT:
        raise field_error(field, "must be an ISO 8601 time with an offset, like 2026-11-22T14:03:00+03:00")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise field_error(field, f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise field_error(field, "needs a UTC offset (…Z or …+03:00): a time without one is ambiguous")
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:  # year 1 at +03:00, 9999-12-31 at -05:00
        raise field_error(field, input_bounds.TIME_RANGE) from None
    problem = input_bounds.time_problem(parsed)
    if problem:
        raise field_error(field, problem)
    return parsed


def integer(data, field: str, low: int, high: int) -> int | None:
    """A whole number in [low, high] from a JSON body or the query string; 422 naming the field."""
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise field_error(field, "must be a whole number")
    if isinstance(value, Decimal) and value.adjusted() >= 20:  # never written out: may be "1E+999999"
        raise field_error(field, f"must be between {low} and {high}")
    digits = value if isinstance(value, int) else str(value).strip()
    if isinstance(digits, str) and not (digits.isascii() and digits.lstrip("-").isdigit()):
        raise field_error(field, "must be a whole number")
    number = int(digits) if isinstance(digits, int) or len(digits) <= 20 else high + 1  # no int() of huge text
    if not low <= number <= high:
        raise field_error(field, f"must be between {low} and {high}")
    return number


def meta(data: dict) -> dict[str, Any]:
    """`meta`: a JSON object of at most MAX_META bytes; keys up to 100 characters, none reserved."""
    value = data.get("meta") or {}
    if not isinstance(value, dict):
        raise field_error("meta", "must be a JSON object")
    for key in value:
        if len(key) > 100 or input_bounds.text_problem(key, max_length=100):
            raise field_error("meta", f"key {key[:40]!r}… must be at most 100 characters, without control characters")
        if key.startswith("paywatch"):
            raise field_error("meta", f"key {key!r}: keys starting with 'paywatch' are Paywatch's own")
    try:
        size = len(json.dumps(value, separators=(",", ":"), default=str, allow_nan=False).encode())
    except ValueError:
        raise field_error("meta", "numbers must be finite (no Infinity or NaN)") from None
    if size > MAX_META:
        raise field_error("meta", f"is {size} bytes as JSON; at most {MAX_META}")
    # Exact numbers stay exact: a Decimal is kept as its text.
    return {k: (str(v) if not isinstance(v, (str, int, bool, type(None), list, dict)) else v) for k, v in value.items()}


def idempotency_key() -> str | None:
    """The Idempotency-Key header: printable ASCII, at most 255 characters; 422 otherwise."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if len(key) > MAX_KEY_TEXT or not key.isascii() or not key.isprintable():
        raise field_error("Idempotency-Key", f"must be 1–{MAX_KEY_TEXT} printable ASCII characters")
    return key


# ------------------------------------------------------------------ idempotency


def _fingerprint(body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"{}"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


class _NotKept(Exception):
    """A 5xx answer: its transaction is rolled back, so a retry runs afresh."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def idempotent(view: Callable[[], Any], key: str | None):
    """Run `view` once per (API key, idempotency key), like Stripe.

    The view runs in one transaction with the record of its answer: what it changed and
    the answer a retry will get commit together or not at all, so neither a crash after
    the commit nor a Redis that fails the jobs enqueued after it can lead a retry to do
    the work twice. Same key and same body → the first response again (header
    Idempotent-Replayed); same key, other body → 409; a 5xx is not kept (nothing it did
    is). A retry that arrives while the first call runs waits for it, then replays.
    """
    if not key:
        return view()
    if len(key) > 255:
        raise field_error("Idempotency-Key", "must be at most 255 characters")
    fingerprint = _fingerprint(request.get_data(cache=True))
    claimed = False
    try:
        with db.transaction():
            # The unique (api_key, key) row: a concurrent call with the same key waits on it.
            record = IdempotencyRecord.create(api_key=g.api_key.id, key=key, fingerprint=fingerprint)
            claimed = True
            response = _answer(view)
            IdempotencyRecord.update(status_code=response.status_code, body=response.get_data(as_text=True)).where(
                IdempotencyRecord.id == record.id
            ).execute()
    except IntegrityError:
        if claimed:
            raise
        return _replay(key, fingerprint)
    except _NotKept as failure:
        return failure.response
    return response


def _answer(view: Callable[[], Any]):
    """The view's response; an ApiError's 4xx is an answer too (its changes rolled back)."""
    try:
        with db.transaction():
            response = make_response(view())
            if response.status_code >= 500:
                raise _NotKept(response)
            return response
    except ApiError as exc:
        response = make_response(error_response(exc))
    if response.status_code >= 500:
        raise _NotKept(response)
    return response


def _replay(key: str, fingerprint: str):
    record = IdempotencyRecord.get(IdempotencyRecord.api_key == g.api_key.id, IdempotencyRecord.key == key)
    if record.fingerprint != fingerprint:
        raise ApiError(409, "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request body", {"key": key})
    if record.status_code is None:  # a row an older version left while it ran
        raise ApiError(409, "idempotency_in_progress",
                       "a request with this Idempotency-Key is still being processed; retry shortly", {"key": key})
    replay = make_response(record.body, record.status_code)
    replay.headers["Content-Type"] = "application/json"
    replay.headers["Idempotent-Replayed"] = "true"
    return replay


# ------------------------------------------------------------------ cursors


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a `next_cursor` stands for; 422 naming `cursor` for anything this API did not give out."""
    if not cursor:
        return None
    problem = "is not a cursor this API gave out"
    if len(cursor) > 32 or not cursor.isascii():
        raise field_error("cursor", problem)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        raise field_error("cursor", problem) from None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= input_bounds.MAX_ID:
        raise field_error("cursor", problem)
    return int(text)
