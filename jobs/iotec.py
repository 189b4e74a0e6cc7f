"""The ioTec Pay collections adapter (contract: shared/contracts/iotec.md).

`IotecClient(source_name, config)` speaks the token, collect, status and external-id
calls and returns `Collection` dataclasses; every failure is a `GatewayError` whose
`permanent` says whether trying again can help (bad credentials, a refused collect)
or not (timeouts, 5xx, a lost answer). Bearer tokens are cached per source per
process and refreshed `REFRESH_EARLY_S` before they expire; a 401 from the API
refreshes the token once and retries the call once.

Config keys (a gateway Source's `config`): `auth_url` (identity host, e.g.
https://id.iotec.io), `api_url` (e.g. https://pay.iotec.io), `client_id_env`,
`client_secret_env` (environment variables holding the credentials), `wallet_id`,
`currency` (what collect sends: `UGX`, or `ITX` on the sandbox wallet). `api_url` may end
in `/api` or not (https://pay.iotec.io/api and https://pay.iotec.io are one API): the calls'
paths carry the `/api`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import quote

import requests

from webapp.config import ConfigError, secret
from webapp.domain import money

REFRESH_EARLY_S = 60
TIMEOUT_S = 15
STATUSES = ("Pending", "SentToVendor", "Success", "Failed", "AwaitingApproval",
            "RolledBack", "Scheduled", "Cancelled", "Rejected")
PAID = "Success"
ENDED = {"Failed": "failed", "Rejected": "failed", "RolledBack": "failed", "Cancelled": "cancelled"}

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # (source, auth_url, client_id) → (token, expires)
_tokens_lock = threading.Lock()


class GatewayError(Exception):
    """A failed gateway call; `permanent` False means a later try may succeed."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.permanent, self.status, self.code = permanent, status, code


@dataclass(frozen=True)
class Collection:
    """A CollectionViewModel, reduced to what Paywatch uses (the whole body is in `raw`)."""

    id: str
    external_id: str | None
    status: str  # ioTec's RequestStatus, exactly as sent (key on this, never on statusCode)
    status_message: str
    amount: int | float | None  # the JSON number as sent (a double)
    currency: str | None
    payer: str | None
    payer_name: str | None
    vendor_transaction_id: str | None
    raw: dict

    @property
    def paid(self) -> bool:
        return self.status == PAID

    @property
    def mapped(self) -> str:
        """Paywatch's word: paid, failed, cancelled, or pending (SentToVendor and the rest)."""
        return "paid" if self.paid else ENDED.get(self.status, "pending")

    @property
    def moved_at(self) -> datetime | None:
        """When the money moved, by ioTec's clock (processedAt, else lastUpdated); None when unknown."""
        for key in ("processedAt", "lastUpdated"):
            value = self.raw.get(key)
            if isinstance(value, str) and value:
                try:
                    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    continue
                # ioTec writes UTC; a time without an offset is read as UTC.
                return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return None

    def amount_minor(self, currency: str) -> int | None:
        """The double ioTec sends, as integer minor units of `currency`; None when missing, not
        exact or out of range (money.minor_of_double: bounded, never rounded)."""
        return money.minor_of_double(self.amount, currency)


def parse_collection(body: Any) -> Collection:
    if not isinstance(body, dict) or not body.get("id") or body.get("status") not in STATUSES:
        raise GatewayError(f"unexpected collection body: {str(body)[:200]}", permanent=False)
    amount = body.get("amount")
    return Collection(
        id=str(body["id"]), external_id=body.get("externalId"), status=body["status"],
        status_message=body.get("statusMessage") or "",
        amount=amount if isinstance(amount, (int, float)) and not isinstance(amount, bool) else None,
        currency=body.get("currency"), payer=body.get("payer"), payer_name=body.get("payerName"),
        vendor_transaction_id=body.get("vendorTransactionId"), raw=body,
    )


def error_message(response: requests.Response) -> tuple[str, str | None]:
    """(message, code) from either error shape: ApiErrorResponse {message, code}, ProblemDetails
    {title, status, errors}, or an RFC 6749 {error, error_description}."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "no body")[:300], None
    if not isinstance(body, dict):
        return str(body)[:300], None
    message = body.get("message") or body.get("title") or body.get("error_description") or body.get("error") or ""
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        message += " " + "; ".join(f"{k}: {' '.join(map(str, v if isinstance(v, list) else [v]))}"
                                   for k, v in errors.items())
    return message.strip()[:500] or f"HTTP {response.status_code}", body.get("code") or body.get("error")


class IotecClient:
    """One gateway source's client. `clock` (monotonic seconds) decides token expiry."""

    def __init__(self, source_name: str, config: dict, *, clock: Callable[[], float] = time.monotonic,
                 session: requests.Session | None = None):
        self.name, self.config, self.clock = source_name, config, clock
        self.auth_url = config["auth_url"].rstrip("/")
        self.api_url = api_base(config["api_url"])
        self.http = session or requests.Session()
        try:
            self.client_id = secret(config["client_id_env"])
            self.client_secret = secret(config["client_secret_env"])
        except ConfigError as exc:
            raise GatewayError(str(exc), permanent=True, code="config") from None

    # ------------------------------------------------------------ token

    def _key(self) -> tuple[str, str, str]:
        return (self.name, self.auth_url, self.client_id)

    def token(self, *, fresh: bool = False) -> str:
        """A bearer token: the cached one unless it expires within REFRESH_EARLY_S (or `fresh`)."""
        with _tokens_lock:
            cached = _tokens.get(self._key())
            if cached and not fresh and self.clock() < cached[1] - REFRESH_EARLY_S:
                return cached[0]
        form = {"client_id": self.client_id, "client_secret": self.client_secret, "grant_type": "client_credentials"}
        response = self._send("POST", f"{self.auth_url}/connect/token", data=form)
        if response.status_code != 200:
            message, code = error_message(response)
            raise GatewayError(f"token refused: {message}{f' ({code})' if code and code not in message else ''}",
                               permanent=response.status_code in (400, 401, 403), status=response.status_code,
                               code="token")
        body = response.json()
        token, ttl = body.get("access_token"), body.get("expires_in", 300)
        if not token:
            raise GatewayError("token answer without access_token", permanent=False)
        with _tokens_lock:
            _tokens[self._key()] = (token, self.clock() + float(ttl))
        return token

    # ------------------------------------------------------------ calls

    def collect(self, *, external_id: str, amount_minor: int, currency: str, payer: str,
                payer_name: str = "", note: str = "") -> Collection:
        """Start a MobileMoney collection. GatewayError(permanent) when ioTec refuses it."""
        wire = self.config.get("currency") or currency
        body = {
            "category": "MobileMoney", "currency": wire, "walletId": self.config.get("wallet_id"),
            "externalId": external_id, "payer": payer.lstrip("+"), "payerName": payer_name or None,
            "payerNote": (note or None) and note[:100], "payeeNote": external_id, "channel": None,
            "amount": float(Decimal(money.to_decimal_string(amount_minor, currency))),
            "transactionChargesCategory": "ChargeWallet",
        }
        return parse_collection(self._api("POST", "/api/collections/collect", json=body).json())

    def status(self, transaction_id: str) -> Collection:
        """The collection by ioTec id (the authoritative key)."""
        return parse_collection(self._api("GET", f"/api/collections/status/{quote(transaction_id, safe='')}").json())

    def by_external_id(self, external_id: str) -> Collection | None:
        """The collection by our externalId; None while ioTec does not know it (404)."""
        try:
            response = self._api("GET", f"/api/collections/external-id/{quote(external_id, safe='')}")
        except GatewayError as exc:
            if exc.status == 404:
                return None
            raise
        return parse_collection(response.json())

    def _api(self, method: str, path: str, **kwargs) -> requests.Response:
        response = None
        for attempt in range(2):  # a 401 refreshes the token once and tries once more
            headers = {"Authorization": f"Bearer {self.token(fresh=attempt > 0)}", "Accept": "application/json"}
            response = self._send(method, f"{self.api_url}{path}", headers=headers, **kwargs)
            if response.status_code != 401:
                break
        if response.status_code == 200:
            return response
        message, code = error_message(response)
        transient = response.status_code >= 500 or response.status_code in (404, 408, 429)
        raise GatewayError(f"{method} {path}: HTTP {response.status_code} {message}", permanent=not transient,
                           status=response.status_code, code=code)

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise GatewayError(f"{method} {url}: {type(exc).__name__}: {exc}", permanent=False) from None


def api_base(api_url: str) -> str:
    """The API's root without a trailing "/api" (every call's path starts with /api/)."""
    base = api_url.strip().rstrip("/")
    return base[:-4] if base.lower().endswith("/api") else base


def forget_tokens() -> None:
    """Drop every cached token (tests, and after credentials change)."""
    with _tokens_lock:
        _tokens.clear()
