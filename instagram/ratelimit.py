"""Fixed-window rate limits in Redis, shared by every app (login, follows, uploads, posts).

A limit is ephemeral state: if Redis is unreachable the limit fails open (and says so in the
log) rather than turning a client's request into a 500.
"""

from __future__ import annotations

import logging
import math
import time

import redis

from instagram.errors import ApiError
from instagram.redis import get_redis

logger = logging.getLogger(__name__)


def _key(name: str, window: int, now: float) -> str:
    return f"rl:{{{name}}}:{int(now // window)}"


def _retry_after(window: int, now: float) -> int:
    return max(1, math.ceil(window - (now % window)))


def retry_after(window: int) -> int:
    """Seconds until the current window ends."""
    return _retry_after(window, time.time())


def rate_limit_count(*, name: str, window: int) -> int:
    """Hits counted so far in the current window."""
    try:
        value = get_redis().get(_key(name, window, time.time()))
    except redis.RedisError:
        logger.warning("rate limit unavailable", extra={"limit": name})
        return 0
    return int(value or 0)


def rate_limit_hit(*, name: str, window: int, amount: int = 1) -> int:
    """Count `amount` hits in the current window; returns the new total."""
    key = _key(name, window, time.time())
    try:
        pipe = get_redis().pipeline()
        pipe.incrby(key, amount)
        pipe.expire(key, window + 1)
        total, _ = pipe.execute()
    except redis.RedisError:
        logger.warning("rate limit unavailable", extra={"limit": name})
        return 0
    return int(total)


def rate_limited_error(*, window: int, message: str) -> ApiError:
    return ApiError(429, "rate_limited", message, retry_after=_retry_after(window, time.time()))


def rate_limit_enforce(*, name: str, limit: int, window: int, message: str) -> None:
    """Count one hit and raise a 429 (with Retry-After) once more than `limit` were counted."""
    if rate_limit_hit(name=name, window=window) > limit:
        raise rate_limited_error(window=window, message=message)


def rate_limit_reserve(*, name: str, limit: int, window: int, message: str) -> str | None:
    """Count an attempt before the work it limits (a password check) and raise a 429 if that
    makes more than `limit`: attempts sent together cannot all pass a check made before any of
    them is counted. Returns what `rate_limit_release` takes to uncount it, should the attempt
    turn out not to count (a right password); None without Redis (the limit fails open)."""
    key = _key(name, window, time.time())
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, window + 1)
        total, _ = pipe.execute()
    except redis.RedisError:
        logger.warning("rate limit unavailable", extra={"limit": name})
        return None
    if int(total) > limit:
        rate_limit_release(key)  # refused unchecked: it is not one of the `limit`
        raise rate_limited_error(window=window, message=message)
    return key


def rate_limit_release(reservation: str | None) -> None:
    if reservation is None:
        return
    try:
        get_redis().decr(reservation)
    except redis.RedisError:  # it stays counted until its window ends
        logger.warning("rate limit unavailable", extra={"limit": reservation})
