"""The shared Redis client (a single server or Redis Cluster, from REDIS_URL)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster


@lru_cache(maxsize=4)
def _client(url: str, cluster: bool) -> redis.Redis | RedisCluster:
    if cluster:
        return RedisCluster.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def get_redis() -> Any:
    """The client. Typed `Any`: redis-py types every synchronous reply as `Awaitable | Any`."""
    return _client(settings.REDIS_URL, settings.REDIS_CLUSTER)
