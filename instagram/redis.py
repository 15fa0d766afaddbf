"""The shared Redis client (a single server or Redis Cluster, from REDIS_URL).

Redis is a cache here, and its callers do without it when a call fails (they read PostgreSQL;
rate limits let requests through; a revocation or a ranked feed answers 503; a Celery task runs
again later). A server that is down fails a call at once (connection refused); one that is
unreachable (packets dropped) or hung answers nothing, and each call would wait out its timeout,
several per page. So on a single server, after a timeout, new connections to that server fail at
once for REDIS_UNREACHABLE_SECONDS; the first call after that tries again (and, if the server is
still silent, waits out one timeout and starts another such period). Each process keeps its own.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection

# Until when (monotonic time) each server, by address, is taken as unreachable.
_unreachable_until: dict[str, float] = {}


class _FailFast:
    """A connection that refuses to connect while its server is taken as unreachable, and
    marks it so on a timeout (connecting, or waiting for a reply)."""

    def _server(self) -> str:
        """The server's address, as redis-py's connection writes it in its errors."""
        return super()._host_error()  # type: ignore[misc]

    def connect_check_health(self, *args, **kwargs):
        if getattr(self, "_sock", None) is None:
            if time.monotonic() < _unreachable_until.get(self._server(), 0.0):
                raise redis.ConnectionError(
                    f"Redis at {self._server()} timed out moments ago; not retried yet"
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
        until = time.monotonic() + settings.REDIS_UNREACHABLE_SECONDS
        _unreachable_until[self._server()] = until


class _Connection(_FailFast, Connection):
    pass


class _SSLConnection(_FailFast, SSLConnection):
    pass


class _UnixConnection(_FailFast, UnixDomainSocketConnection):
    pass


_CONNECTIONS = {"redis": _Connection, "rediss": _SSLConnection, "unix": _UnixConnection}


def unreachable_forget() -> None:
    """Take every server as reachable again (tests)."""
    _unreachable_until.clear()


@lru_cache(maxsize=4)
def _client(
    url: str, cluster: bool, connect_timeout: float, socket_timeout: float
) -> redis.Redis | RedisCluster:
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    if cluster:
        return RedisCluster.from_url(url, **timeouts)
    scheme = url.partition("://")[0].lower()
    return redis.Redis.from_url(url, connection_class=_CONNECTIONS[scheme], **timeouts)


def get_redis() -> Any:
    """The client. Typed `Any`: redis-py types every synchronous reply as `Awaitable | Any`."""
    return _client(
        settings.REDIS_URL,
        settings.REDIS_CLUSTER,
        settings.REDIS_CONNECT_TIMEOUT,
        settings.REDIS_SOCKET_TIMEOUT,
    )
