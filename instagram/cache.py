"""Read-through caches of rendered objects in Redis: post bodies, author cards.

Redis is a cache here, never the only copy: a missing entry is loaded from PostgreSQL and
written back, and every entry expires after its kind's TTL. A kind whose objects carry a
version (a post's `updated_at`) is checked against the version the caller read from the
database in the same request, so an edit is never served stale, whatever the timing of its
invalidation. Other kinds are dropped after the commit of any change (`cache_forget`).

Any number of objects of any kinds cost one round trip: MGET on one server; on Redis Cluster,
redis-py's `mget_nonatomic` (one MGET per hash slot, pipelined).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings

from instagram.redis import get_redis


@dataclass(frozen=True)
class Cached:
    """An object as cached: its JSON, ready to be spliced into an answer, and its version."""

    json: bytes
    version: int = 0


@dataclass(frozen=True)
class CachedKind:
    """One kind of cached object: its key prefix, lifetime, and loader.

    `load(ids)` reads the objects from the database (one query per shard); an ID it leaves
    out does not exist and is not cached.
    """

    prefix: str
    ttl: int
    load: Callable[[list[int]], dict[int, Cached]]
    shape: int = 1  # raised when the JSON changes shape: a new release reads new keys only

    def key(self, object_id: int) -> str:
        return f"{self.prefix}:{{{object_id}}}:{self.shape}"


@dataclass(frozen=True)
class CacheRead:
    kind: CachedKind
    ids: Iterable[int]
    versions: Mapping[int, int] | None = None  # the current version of each, if versioned


def cache_read(*reads: CacheRead) -> list[dict[int, Cached]]:
    """The objects each read asks for, by ID, in one Redis round trip plus loads of misses.

    Stored as `b"<version> <json>"`, so a hit costs no decoding of the JSON.
    """
    wanted = [(read, list(dict.fromkeys(read.ids))) for read in reads]
    keys = [read.kind.key(i) for read, ids in wanted for i in ids]
    values = iter(_get_many(keys) if keys else [])
    found: list[dict[int, Cached]] = []
    fill: dict[str, tuple[bytes, int]] = {}
    for read, ids in wanted:
        objects: dict[int, Cached] = {}
        missing: list[int] = []
        for object_id in ids:
            raw = next(values)
            head, _, body = raw.partition(b" ") if raw is not None else (b"", b"", b"")
            # Anything but "<digits> <object or null>" is a miss, rendered again.
            if head.isdigit() and ((body[:1] == b"{" and body[-1:] == b"}") or body == b"null"):
                version = int(head)
                if read.versions is None or read.versions.get(object_id) == version:
                    objects[object_id] = Cached(body, version)
                    continue
            missing.append(object_id)
        if missing:
            loaded = read.kind.load(missing)
            for object_id, value in loaded.items():
                fill[read.kind.key(object_id)] = (
                    b"%d %s" % (value.version, value.json),
                    read.kind.ttl,
                )
            objects.update(loaded)
        found.append(objects)
    if fill:
        _set_many(fill)
    return found


def cache_forget(kind: CachedKind, ids: Iterable[int]) -> None:
    keys = [kind.key(i) for i in ids]
    if not keys:
        return
    client = get_redis()
    if settings.REDIS_CLUSTER:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.delete(key)
        pipe.execute()
    else:
        client.delete(*keys)


def _get_many(keys: list[str]) -> list[bytes | None]:
    client = get_redis()
    if settings.REDIS_CLUSTER:
        return client.mget_nonatomic(keys)
    return client.mget(keys)


def _set_many(values: dict[str, tuple[bytes, int]]) -> None:
    pipe = get_redis().pipeline(transaction=False)
    for key, (value, ttl) in values.items():
        pipe.set(key, value, ex=ttl)
    pipe.execute()
