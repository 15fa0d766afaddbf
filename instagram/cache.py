"""Read-through caches of rendered objects in Redis: post bodies, author cards.

Redis is a cache here, never the only copy: a missing entry is loaded from PostgreSQL and
written back, and every entry expires after its kind's TTL. A kind whose objects carry a
version (a post's `updated_at`) is checked against the version the caller read from the
database in the same request, so an edit is never served stale, whatever the timing of its
invalidation. Other kinds are marked changed before and after the commit of any change
(`cache_forget`); while marked they are read from the database and not filled.

Any number of objects of any kinds cost one round trip: MGET on one server; on Redis Cluster,
redis-py's `mget_nonatomic` (one MGET per hash slot, pipelined).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from redis.exceptions import RedisError

from instagram.redis import get_redis

logger = logging.getLogger(__name__)


class Cached(NamedTuple):
    """An object as cached: its JSON, ready to be spliced into an answer, and its version. (A
    tuple: the feed makes dozens per page, and a frozen dataclass costs several times more.)"""

    json: bytes
    version: int = 0
    owner: int = 0  # of an `owned` kind: the ID of the object's owner (a post's author)


@dataclass(frozen=True)
class CachedKind:
    """One kind of cached object: its key prefix, lifetime, and loader.

    `load(ids)` reads the objects from the database (one query per shard); an ID it leaves
    out does not exist and is not cached. A versioned kind is checked against the version the
    caller read, so a fill simply overwrites. An unversioned kind is dropped on change with a
    mark (`cache_forget`) and filled with SET NX, so a fill from a read made before a change
    can never outlive the mark; `nullable` kinds may cache `null` (a hidden object). An
    `owned` kind's entries also name the object's owner (`"<version> <owner> <json>"`), so a
    Redis script that reads one can read its owner's entries in the same call.
    """

    prefix: str
    ttl: int
    load: Callable[[list[int]], dict[int, Cached]]
    versioned: bool = False
    nullable: bool = False
    owned: bool = False
    shape: int = 1  # raised when the JSON changes shape: a new release reads new keys only

    def key(self, object_id: int) -> str:
        return f"{self.prefix}:{{{object_id}}}:{self.shape}"

    def key_parts(self) -> tuple[str, str]:
        """What comes before and after the ID in a key (for scripts that build keys)."""
        return f"{self.prefix}:{{", f"}}:{self.shape}"


@dataclass(frozen=True)
class CacheRead:
    kind: CachedKind
    ids: Iterable[int]
    versions: Mapping[int, int] | None = None  # the current version of each, if versioned
    # Entries already read from Redis (by a script, in an earlier round trip), by ID, None where
    # there was none: only the other IDs are read.
    prefetched: Mapping[int, bytes | None] | None = None


FORGOTTEN = b"-"  # a mark: changed lately; load from the database and do not fill
FORGOTTEN_SECONDS = 30


def cache_read(*reads: CacheRead) -> list[dict[int, Cached]]:
    """The objects each read asks for, by ID, in one Redis round trip plus loads of misses.

    Stored as `b"<version> <json>"` (`b"<version> <owner> <json>"` for an owned kind), so a hit
    costs no decoding of the JSON. Without Redis, everything is loaded from the database.
    """
    wanted = [(read, list(dict.fromkeys(read.ids))) for read in reads]
    keys = [
        read.kind.key(i) for read, ids in wanted for i in ids if i not in (read.prefetched or ())
    ]
    values = iter(_get_many(keys) if keys else [])
    found: list[dict[int, Cached]] = []
    fill: dict[str, tuple[bytes, int, bool]] = {}
    for read, ids in wanted:
        objects: dict[int, Cached] = {}
        missing: list[int] = []
        marked: set[int] = set()
        unreadable: set[int] = set()
        prefetched = read.prefetched or {}
        for object_id in ids:
            raw = prefetched[object_id] if object_id in prefetched else next(values)
            hit = _parse(read.kind, raw)
            if hit is not None and (
                read.versions is None or read.versions.get(object_id) == hit.version
            ):
                objects[object_id] = hit
                continue
            missing.append(object_id)
            if raw == FORGOTTEN:
                marked.add(object_id)
            elif raw is not None:
                unreadable.add(object_id)  # not ours (another release): replace it
        if missing:
            loaded = read.kind.load(missing)
            for object_id, value in loaded.items():
                if object_id not in marked:
                    entry = (
                        b"%d %d %s" % (value.version, value.owner, value.json)
                        if read.kind.owned
                        else b"%d %s" % (value.version, value.json)
                    )
                    overwrite = read.kind.versioned or object_id in unreadable
                    fill[read.kind.key(object_id)] = (entry, read.kind.ttl, overwrite)
            objects.update(loaded)
        found.append(objects)
    if fill:
        _set_many(fill)
    return found


def _parse(kind: CachedKind, raw: bytes | None) -> Cached | None:
    """A stored entry, or None for anything but "<digits> [<owner digits> ]<object>" (or
    `null`, if allowed)."""
    if raw is None:
        return None
    head, _, body = raw.partition(b" ")
    owner = b"0"
    if kind.owned:
        owner, _, body = body.partition(b" ")
    if not (head.isdigit() and owner.isdigit()):
        return None
    if (body[:1] == b"{" and body[-1:] == b"}") or (kind.nullable and body == b"null"):
        return Cached(body, int(head), int(owner))
    return None


def cache_forget(kind: CachedKind, ids: Iterable[int]) -> None:
    """Mark these objects changed: reads load them from the database for a while, unfilled."""
    keys = [kind.key(i) for i in ids]
    if not keys:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for key in keys:
            pipe.set(key, FORGOTTEN, ex=FORGOTTEN_SECONDS)
        pipe.execute()
    except RedisError:
        logger.warning("cache unavailable: %s kept until it expires", kind.prefix, exc_info=True)


def _get_many(keys: list[str]) -> list[bytes | None]:
    try:
        client = get_redis()
        if settings.REDIS_CLUSTER:
            return client.mget_nonatomic(keys)
        return client.mget(keys)
    except RedisError:
        logger.warning("cache unavailable: reading the database", exc_info=True)
        return [None] * len(keys)


def _set_many(values: dict[str, tuple[bytes, int, bool]]) -> None:
    try:
        pipe = get_redis().pipeline(transaction=False)
        for key, (value, ttl, overwrite) in values.items():
            pipe.set(key, value, ex=ttl, nx=not overwrite)
        pipe.execute()
    except RedisError:
        logger.warning("cache unavailable: not filled", exc_info=True)
