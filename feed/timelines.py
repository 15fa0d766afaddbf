"""Timeline keys in Redis. Every key names one user inside `{}` so it has a Redis Cluster hash
slot of its own, and every command touches one key: the same code runs on one server or a
cluster. Redis is a cache here: any key can be rebuilt from PostgreSQL (services.py).

- `timeline:{user}`        sorted set of post IDs, all at score 0 with the ID as 19-digit text,
                           so lexical order is ID order is time order (IDs sort by time) and
                           `ZREVRANGEBYLEX` pages exactly; posts of accounts the user follows,
                           pushed by fan-out, trimmed to FEED_TIMELINE_LENGTH.
- `timeline:{user}:built`  present while `timeline:{user}` is complete (built from the database
                           and kept up by fan-out); missing means "rebuild before reading".
- `celebrity:{user}:posts` recent posts of an account over the fan-out threshold, merged at read.
- `celebrities`            the set of such accounts (read with SMISMEMBER against followings).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from instagram.redis import get_redis

CELEBRITIES = "celebrities"


def timeline_key(user_id: int) -> str:
    return f"timeline:{{{user_id}}}"


def built_key(user_id: int) -> str:
    return f"timeline:{{{user_id}}}:built"


def celebrity_key(user_id: int) -> str:
    return f"celebrity:{{{user_id}}}:posts"


def member(post_id: int) -> str:
    return f"{post_id:019d}"


def entries(post_ids: Iterable[int]) -> dict[str, int]:
    return {member(post_id): 0 for post_id in post_ids}


def ttl_seconds() -> int:
    return settings.FEED_TIMELINE_TTL_DAYS * 86400


def timeline_replace(user_id: int, post_ids: list[int]) -> None:
    """Write a complete timeline (a rebuild): the posts, then the marker that it is whole."""
    key, marker = timeline_key(user_id), built_key(user_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.delete(key)
    if post_ids:
        pipe.zadd(key, entries(post_ids))
        pipe.zremrangebyrank(key, 0, -settings.FEED_TIMELINE_LENGTH - 1)
        pipe.expire(key, ttl_seconds())
    pipe.set(marker, "1", ex=ttl_seconds())
    pipe.execute()


def timeline_add(user_id: int, post_ids: list[int]) -> None:
    """Merge posts into a timeline that is built (a missing one is rebuilt on its next read)."""
    if not post_ids:
        return
    client = get_redis()
    if not client.exists(built_key(user_id)):
        return
    key = timeline_key(user_id)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key, entries(post_ids))
    pipe.zremrangebyrank(key, 0, -settings.FEED_TIMELINE_LENGTH - 1)
    pipe.execute()


def timeline_remove(user_id: int, post_ids: Iterable[int]) -> None:
    members = [member(post_id) for post_id in post_ids]
    if members:
        get_redis().zrem(timeline_key(user_id), *members)


def fanout_push(follower_ids: list[int], post_id: int) -> int:
    """ZADD one post to many timelines in one pipeline; returns how many were written.

    Plain ZADDs (no script, no read): a timeline that is not built simply gains a post and
    stays marked unbuilt, so its next read rebuilds it. Trimming happens on read.
    """
    if not follower_ids:
        return 0
    pipe = get_redis().pipeline(transaction=False)
    value = member(post_id)
    for follower_id in follower_ids:
        pipe.execute_command("ZADD", f"timeline:{{{follower_id}}}", 0, value)
    pipe.execute()
    return len(follower_ids)


def timeline_read(user_id: int, *, before_id: int | None, count: int) -> list[int] | None:
    """Newest post IDs below `before_id`, or None if the timeline must be rebuilt first."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.exists(built_key(user_id))
    high = f"({member(before_id)}" if before_id is not None else "+"
    pipe.zrevrangebylex(timeline_key(user_id), high, "-", start=0, num=count)
    pipe.zcard(timeline_key(user_id))
    built, members, size = pipe.execute()
    if not built:
        return None
    if size > settings.FEED_TIMELINE_LENGTH + 50:
        client.zremrangebyrank(timeline_key(user_id), 0, -settings.FEED_TIMELINE_LENGTH - 1)
    return [int(m) for m in members]


def celebrity_add(author_id: int, post_id: int) -> None:
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.sadd(CELEBRITIES, str(author_id))
    pipe.zadd(celebrity_key(author_id), entries([post_id]))
    pipe.zremrangebyrank(celebrity_key(author_id), 0, -settings.FEED_CELEBRITY_POSTS - 1)
    pipe.execute()


def celebrity_replace(author_id: int, post_ids: list[int]) -> None:
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.sadd(CELEBRITIES, str(author_id))
    pipe.delete(celebrity_key(author_id))
    pipe.zadd(celebrity_key(author_id), entries(post_ids or [0]))
    pipe.execute()


def celebrities_among(user_ids: list[int]) -> list[int]:
    if not user_ids:
        return []
    flags = get_redis().smismember(CELEBRITIES, [str(u) for u in user_ids])
    return [user_id for user_id, flag in zip(user_ids, flags, strict=True) if flag]


def celebrity_posts(
    author_ids: list[int], *, before_id: int | None, count: int
) -> dict[int, list[int] | None]:
    """Recent posts of each celebrity (None where the list is missing and must be rebuilt)."""
    if not author_ids:
        return {}
    pipe = get_redis().pipeline(transaction=False)
    high = f"({member(before_id)}" if before_id is not None else "+"
    for author_id in author_ids:
        pipe.exists(celebrity_key(author_id))
        pipe.zrevrangebylex(celebrity_key(author_id), high, "-", start=0, num=count)
    results = pipe.execute()
    found: dict[int, list[int] | None] = {}
    for index, author_id in enumerate(author_ids):
        exists, members = results[2 * index], results[2 * index + 1]
        found[author_id] = [int(m) for m in members if int(m)] if exists else None
    return found
