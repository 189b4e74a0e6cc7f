"""Per-key API rate limits on Redis (the limiter's storage), with RateLimit-* headers and 429s.

Each key gets its own `rate_limit` or PAYWATCH_API_RATE_LIMIT, counted in a moving window in
the same Redis storage flask-limiter uses for logins. With Redis down the count moves to this
process's memory for RETRY_STORAGE seconds at a time: limits still hold per process, and the
API never answers 500 for it.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Response
from redis.exceptions import RedisError
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from webapp.config import settings
from webapp.storage.models import ApiKey
from webapp.web.extensions import limiter

log = logging.getLogger(__name__)
RETRY_STORAGE = 10.0  # seconds between attempts to use Redis again after it failed
_fallback = MovingWindowRateLimiter(MemoryStorage())
_shared: dict[int, MovingWindowRateLimiter] = {}
_storage_failed_at = 0.0


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window has room again in full

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_after)}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after))
        return headers

    def apply(self, response: Response) -> Response:
        response.headers.update(self.headers())
        return response


def _strategy() -> MovingWindowRateLimiter:
    global _storage_failed_at
    storage = limiter.storage
    if id(storage) not in _shared:  # a new app (its own storage): start afresh
        _shared.clear()
        _shared[id(storage)] = MovingWindowRateLimiter(storage)
        _storage_failed_at = 0.0
    if time.monotonic() - _storage_failed_at < RETRY_STORAGE:
        return _fallback
    return _shared[id(storage)]


def _items(key: ApiKey) -> list[RateLimitItem]:
    return parse_many(key.rate_limit or settings().api_rate_limit)


def _count(strategy: MovingWindowRateLimiter, items: list[RateLimitItem], who: str) -> Allowance:
    if len(items) == 1:  # the usual case: hit alone (a moving-window hit counts nothing when over)
        allowed = strategy.hit(items[0], who)
    else:  # several limits: count the call only when every one of them has room
        allowed = all(strategy.test(item, who) for item in items) and all(strategy.hit(item, who) for item in items)
    now = time.time()
    tightest = None
    for item in items:
        reset_at, remaining = strategy.get_window_stats(item, who)
        candidate = (remaining, item, reset_at)
        if tightest is None or remaining < tightest[0]:
            tightest = candidate
    remaining, item, reset_at = tightest
    return Allowance(allowed, item.amount, max(0, remaining), max(0, math.ceil(reset_at - now)))


def check(key: ApiKey) -> Allowance:
    """Count one call of `key` against its limits; `allowed` is False when over them (nothing counted then)."""
    global _storage_failed_at
    items, who = _items(key), f"api-key:{key.prefix}"
    strategy = _strategy()
    try:
        return _count(strategy, items, who)
    except (RedisError, StorageError, OSError) as exc:  # Redis down, slow or refusing: count in memory
        log.warning("rate-limit storage unreachable (%s): counting API calls in memory for %ss",
                    type(exc).__name__, RETRY_STORAGE)
        _storage_failed_at = time.monotonic()
        return _count(_fallback, items, who)
