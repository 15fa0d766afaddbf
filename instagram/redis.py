"""The shared Redis client (a single server or Redis Cluster, from REDIS_URL).

Redis is a cache here, and its callers do without it when a call fails (they read PostgreSQL;
rate limits let requests through; a revocation or a ranked feed answers 503; a Celery task runs
again later). A server that is down fails a call at once (connection refused); one that is
unreachable (packets dropped) or hung answers nothing, and each call would wait out its timeout,
several per page. So on a single server, after a timeout, new connections to that server fail at
once for REDIS_UNREACHABLE_SECONDS; the first call after that tries again (and, if the server is
still silent, waits out one timeout and starts another such period). Each process keeps its own.

A Redis Cluster none of whose nodes can be reached fails a call with a ConnectionError too
(`ClusterUnavailable`; redis-py's own RedisClusterException is no RedisError), so the same
fallbacks serve a cluster; creating its client reads the cluster's slots, so `get_redis()`
itself raises it, and tries again on the next call.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from redis.cluster import ClusterPipeline, NodesManager, RedisCluster
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import RedisClusterException, SlotNotCoveredError

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


class ClusterUnavailable(redis.ConnectionError):
    """No node of the Redis Cluster could be reached, or those reached leave slots uncovered."""


_DISCOVERY = NodesManager.initialize.__code__


def _cluster_unavailable(error: RedisClusterException) -> bool:
    """Whether the cluster failed the call (found no node, or not every slot, when it looked for
    them), rather than the call being one no cluster runs (keys of two slots in one command)."""
    if isinstance(error, SlotNotCoveredError):
        return True
    return any(frame.f_code is _DISCOVERY for frame, _ in traceback.walk_tb(error.__traceback__))


@contextmanager
def _cluster_failures_as_connection_errors() -> Iterator[None]:
    """redis-py's cluster client reports a cluster it cannot reach with RedisClusterException,
    which is no RedisError, so every caller's fallback (`except RedisError`) would miss it;
    raised as a ConnectionError, it is the outage those fallbacks are for. Its other
    RedisClusterExceptions are mistakes in the call and stay as they are."""
    try:
        yield
    except RedisClusterException as error:
        if not _cluster_unavailable(error):
            raise
        raise ClusterUnavailable(str(error)) from error


class _ClusterPipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _cluster_failures_as_connection_errors():
            return super().execute(raise_on_error)


class _Cluster(RedisCluster):
    """RedisCluster whose failures to reach the cluster are ConnectionErrors: on creating it
    (it reads the cluster's slots at once), on a command, on a pipeline's execution."""

    def __init__(self, *args, **kwargs) -> None:
        with _cluster_failures_as_connection_errors():
            super().__init__(*args, **kwargs)

    def execute_command(self, *args, **kwargs):
        with _cluster_failures_as_connection_errors():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        pipe.__class__ = _ClusterPipeline  # the same pipeline, its execute() translated
        return pipe


@lru_cache(maxsize=4)
def _client(
    url: str, cluster: bool, connect_timeout: float, socket_timeout: float
) -> redis.Redis | RedisCluster:
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    if cluster:
        return _Cluster.from_url(url, **timeouts)
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
