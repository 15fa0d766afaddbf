"""The shared Redis client (a single server or Redis Cluster, from REDIS_URL).

Redis is a cache here, and every caller falls back to PostgreSQL when a call fails. A server
that is down answers at once (connection refused); one that is unreachable (packets dropped)
or hung answers nothing, and each call would wait out its timeout, several per page. So after
a timeout, calls to that server fail at once for REDIS_UNREACHABLE_SECONDS, then try again.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster
from redis.connection import Connection, SSLConnection

# Until when (monotonic time) each server, by address, is taken as unreachable.
_unreachable_until: dict[tuple[str, int], float] = {}


class _FailFast:
    """A connection that refuses to connect while its server is taken as unreachable, and
    marks it so on a timeout (connecting, or waiting for a reply)."""

    host: str
    port: int

    def connect_check_health(self, *args, **kwargs):
        if getattr(self, "_sock", None) is None:
            until = _unreachable_until.get((self.host, self.port), 0.0)
            if time.monotonic() < until:
                raise redis.ConnectionError(
                    f"Redis at {self.host}:{self.port} timed out moments ago; not retried yet"
                )
        try:
            return super().connect_check_health(*args, **kwargs)
        except redis.TimeoutError:
            self._mark_unreachable()
            raise

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)
        except redis.TimeoutError:
            self._mark_unreachable()
            raise

    def _mark_unreachable(self) -> None:
        seconds = settings.REDIS_UNREACHABLE_SECONDS
        _unreachable_until[(self.host, self.port)] = time.monotonic() + seconds


class _Connection(_FailFast, Connection):
    pass


class _SSLConnection(_FailFast, SSLConnection):
    pass


@lru_cache(maxsize=4)
def _client(
    url: str, cluster: bool, connect_timeout: float, socket_timeout: float
) -> redis.Redis | RedisCluster:
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    if cluster:
        return RedisCluster.from_url(url, **timeouts)
    tls = url.startswith("rediss://")
    return redis.Redis.from_url(
        url, connection_class=_SSLConnection if tls else _Connection, **timeouts
    )


def get_redis() -> Any:
    """The client. Typed `Any`: redis-py types every synchronous reply as `Awaitable | Any`."""
    return _client(
        settings.REDIS_URL,
        settings.REDIS_CLUSTER,
        settings.REDIS_CONNECT_TIMEOUT,
        settings.REDIS_SOCKET_TIMEOUT,
    )
