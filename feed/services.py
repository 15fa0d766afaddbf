"""Hybrid fan-out and timeline upkeep. Every function is safe to run twice.

A post by an account under FEED_FANOUT_THRESHOLD followers is pushed into the timeline of each
follower who read their feed in the last FEED_ACTIVE_DAYS, reading followers in batches from the
author's shard; a post by an account over it goes to `celebrity:{author}:posts` only and is
merged when a follower reads. Any timeline can be rebuilt from PostgreSQL with one query per shard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from accounts.models import UserCounters
from accounts.selectors import following_ids, is_following
from feed import timelines
from instagram.ids import id_array, min_id_at
from instagram.scatter import scatter
from instagram.sharding import alias_for_id, group_by_alias
from posts.models import Post


def recent_post_ids(
    author_ids: Iterable[int],
    *,
    limit: int,
    published_since: dt.datetime | None = None,
    before_id: int | None = None,
    from_id: int = 0,
) -> list[int]:
    """The newest published posts of these authors (below `before_id`, from `from_id` on): one
    query per shard, merged newest first."""
    found: list[int] = []
    for alias, ids in group_by_alias(author_ids).items():
        posts = Post.objects.using(alias).filter(
            author_id__in=ids, published_at__isnull=False, deleted_at__isnull=True
        )
        if published_since is not None:  # by the ID too, so the index walk stops there
            posts = posts.filter(
                published_at__gte=published_since,
                id__gte=min_id_at(published_since - PUBLISHED_WITHIN),
            )
        if before_id is not None:
            posts = posts.filter(id__lt=before_id)
        if from_id:
            posts = posts.filter(id__gte=from_id)
        found.extend(posts.order_by("-id").values_list("id", flat=True)[:limit])
    return sorted(found, reverse=True)[:limit]


def live_post_ids(post_ids: list[int]) -> list[int]:
    """Those of these posts that are published and not deleted: one query per shard."""
    live: list[int] = []
    for alias, ids in group_by_alias(post_ids).items():
        live.extend(
            Post.objects.using(alias)
            .filter(id__in=ids, published_at__isnull=False, deleted_at__isnull=True)
            .values_list("id", flat=True)
        )
    return live


# Posts published this close to a rebuild's start are read again once the timeline exists.
# A post is published within this long of its creation (its media's processing), which its ID
# tells: the re-read walks back no further than that.
PUBLISHED_WITHIN = dt.timedelta(days=1)
REBUILD_OVERLAP = dt.timedelta(minutes=1)


def timeline_rebuild(*, user_id: int) -> list[int]:
    """A complete timeline from the database: recent posts of followed non-celebrities.

    Fan-out and a follow's merge skip a timeline that does not exist yet, and the rebuild
    replaces whatever they wrote, so a post published, or an account followed, while the
    rebuild reads would be missed. So once the timeline is written, posts published since
    shortly before the rebuild began are read again, and so are the recent posts of accounts
    followed meanwhile, and both are merged.
    """
    started = timezone.now()
    regular = _regular_followees(user_id)
    length = settings.FEED_TIMELINE_LENGTH
    post_ids = recent_post_ids(regular, limit=length)
    built_floor = timelines.capped_floor(post_ids, length)
    timelines.timeline_replace(user_id, post_ids, floor=built_floor)
    late = recent_post_ids(regular, limit=length, published_since=started - REBUILD_OVERLAP)
    floor = timelines.capped_floor(late, length)
    before = set(regular)
    followed_meanwhile = [u for u in _regular_followees(user_id) if u not in before]
    if followed_meanwhile:  # merged as a follow's merge does: down to the floor
        merged = recent_post_ids(followed_meanwhile, limit=length, from_id=built_floor)
        floor = max(floor, timelines.capped_floor(merged, length))
        late += merged
    known = set(post_ids)
    timelines.timeline_add(user_id, [p for p in late if p not in known], floor=floor)
    return post_ids


def _regular_followees(user_id: int) -> list[int]:
    followees = following_ids(user_id)
    celebrities = set(timelines.celebrities_among(followees))
    return [followee for followee in followees if followee not in celebrities]


# The newest posts of each of several authors, as one array per author, on one shard.
_NEWEST_PER_AUTHOR_SQL = """
SELECT a.id, ARRAY(
    SELECT p.id FROM posts_post p
    WHERE p.author_id = a.id AND p.published_at IS NOT NULL AND p.deleted_at IS NULL
      AND (%(since)s::timestamptz IS NULL OR p.published_at >= %(since)s::timestamptz)
      AND p.id >= %(since_id)s::int8
    ORDER BY p.id DESC LIMIT %(limit)s::int)
FROM unnest(%(authors)s::int8[]) AS a(id)
"""


def _newest_per_author(author_ids: list[int], *, since: dt.datetime | None) -> dict[int, list]:
    """Each author's newest published posts: one query per shard, all in flight at once."""
    by_alias = group_by_alias(author_ids)
    params = {
        "limit": settings.FEED_CELEBRITY_POSTS,
        "since": since.isoformat() if since is not None else None,
        "since_id": min_id_at(since - PUBLISHED_WITHIN) if since is not None else 0,
    }
    answers = scatter(
        [
            (alias, _NEWEST_PER_AUTHOR_SQL, {**params, "authors": id_array(ids)})
            for alias, ids in by_alias.items()
        ]
    )
    return {author_id: list(posts) for rows in answers for author_id, posts in rows}


def celebrity_lists_rebuild(author_ids: list[int]) -> dict[int, list[int]]:
    """Celebrities' lists from the database, newest first: one query per shard for all of
    them, and one more once they are written. A post published while they are read finds no
    list to join (see `timelines.celebrity_add`), so those published since shortly before the
    rebuild began are read again once the lists exist, and added."""
    if not author_ids:
        return {}
    started = timezone.now()
    lists = _newest_per_author(author_ids, since=None)
    timelines.celebrity_lists_replace(lists)
    late = _newest_per_author(author_ids, since=started - REBUILD_OVERLAP)
    rebuilt = {}
    for author_id, post_ids in lists.items():
        known = set(post_ids)
        for post_id in late.get(author_id, []):
            if post_id not in known:
                timelines.celebrity_add(author_id, post_id)
                known.add(post_id)
        rebuilt[author_id] = sorted(known, reverse=True)[: settings.FEED_CELEBRITY_POSTS]
    return rebuilt


# The post, its author's follower count and whether their posts are merged at read, and the
# first batch of followers, in one round trip.
_POST_AND_FOLLOWERS_SQL = """
SELECT p.author_id, COALESCE(c.follower_count, 0), COALESCE(c.merged_at_read, false), f.ids,
       f.last_id
FROM posts_post p
LEFT JOIN accounts_usercounters c ON c.user_id = p.author_id
LEFT JOIN LATERAL (
    SELECT array_agg(b.follower_id ORDER BY b.id) AS ids, max(b.id) AS last_id
    FROM (SELECT id, follower_id FROM accounts_follower
          WHERE followee_id = p.author_id AND id > 0 ORDER BY id LIMIT %(batch)s) b
) f ON true
WHERE p.id = %(post)s AND p.published_at IS NOT NULL AND p.deleted_at IS NULL
"""
_NEXT_FOLLOWERS_SQL = """
SELECT array_agg(b.follower_id ORDER BY b.id), max(b.id)
FROM (SELECT id, follower_id FROM accounts_follower
      WHERE followee_id = %(author)s AND id > %(after)s ORDER BY id LIMIT %(batch)s) b
"""


def post_fanout(*, post_id: int) -> int:
    """Push a published post to its author's active followers; returns timelines written.

    Followers are read from the author's shard in ID batches (an index-only scan), never all
    at once, and each batch is one script call in Redis that writes the timelines that are
    live: a timeline lives FEED_ACTIVE_DAYS from its owner's last feed read, so followers idle
    that long have none and are skipped (their next read rebuilds it from the database).
    """
    batch_size = settings.FEED_FANOUT_BATCH
    shard = connections[alias_for_id(post_id)]
    with shard.cursor() as cursor:
        cursor.execute(_POST_AND_FOLLOWERS_SQL, {"post": post_id, "batch": batch_size})
        found = cursor.fetchone()
    if found is None:
        return 0
    author_id, follower_count, merged_at_read, batch, last_id = found
    # Once over the threshold, always merged at read (recorded with the counts): rebuilt
    # timelines and new follows skip the account's posts, so a later post fanned out instead
    # would be missing from them.
    if merged_at_read or follower_count >= settings.FEED_FANOUT_THRESHOLD:
        if not merged_at_read:
            UserCounters.objects.using(alias_for_id(author_id)).filter(user_id=author_id).update(
                merged_at_read=True
            )
        timelines.celebrity_add(author_id, post_id)
        if not live_post_ids([post_id]):  # deleted meanwhile: its hook may have run before
            timelines.celebrity_remove(author_id, [post_id])
        return 0
    written = 0
    while batch:
        written += timelines.fanout_push(batch, post_id)
        if len(batch) < batch_size:
            break
        with shard.cursor() as cursor:
            cursor.execute(
                _NEXT_FOLLOWERS_SQL, {"author": author_id, "after": last_id, "batch": batch_size}
            )
            batch, last_id = cursor.fetchone()
    return written


def timeline_follow_merge(*, follower_id: int, followee_id: int) -> int:
    """A new follow: the followee's recent posts join the follower's (built) timeline. Tasks of
    one edge can run in any order (workers, retries): each acts only if the graph still says
    what it was made for."""
    if not is_following(follower_id, followee_id):
        return 0  # unfollowed since
    if timelines.celebrities_among([followee_id]):
        return 0  # merged at read time
    # The account's posts down to the timeline's floor, which holds every post above it: so the
    # floor stays where it is (its value covers every account followed, and would outlive an
    # unfollow), unless the account has more posts above it than a timeline's length.
    floor = timelines.timeline_floor(follower_id)
    if floor is None:
        return 0  # no timeline: its rebuild reads the account's posts
    limit = settings.FEED_TIMELINE_LENGTH
    post_ids = recent_post_ids([followee_id], limit=limit, from_id=floor)
    timelines.timeline_add(follower_id, post_ids, floor=timelines.capped_floor(post_ids, limit))
    return len(post_ids)


def timeline_follow_remove(*, follower_id: int, followee_id: int) -> int:
    """An unfollow or block: drop the followee's posts (reads already filter them at once)."""
    if is_following(follower_id, followee_id):
        return 0  # followed again since: its merge keeps them
    post_ids = recent_post_ids([followee_id], limit=settings.FEED_TIMELINE_LENGTH)
    timelines.timeline_remove(follower_id, post_ids)
    if is_following(follower_id, followee_id):
        # Followed again after the check: that follow's merge may have run before this removal
        # and found nothing to do, so merge in its place.
        timeline_follow_merge(follower_id=follower_id, followee_id=followee_id)
        return 0
    return len(post_ids)


def celebrities_rebuild() -> int:
    """Re-register every account merged at read: over the threshold, or over it once (after
    Redis lost its data). Members of the `celebrities` set are recorded as merged at read first
    (those registered before the database recorded it)."""
    from instagram.redis import get_redis
    from instagram.sharding import shard_aliases

    registered = [int(m) for m in get_redis().smembers(timelines.CELEBRITIES)]
    for alias, ids in group_by_alias(registered).items():
        UserCounters.objects.using(alias).filter(user_id__in=ids).update(merged_at_read=True)
    count = 0
    for alias in shard_aliases():
        author_ids = list(
            UserCounters.objects.using(alias)
            .filter(Q(follower_count__gte=settings.FEED_FANOUT_THRESHOLD) | Q(merged_at_read=True))
            .values_list("user_id", flat=True)
        )
        for start in range(0, len(author_ids), CELEBRITY_REBUILD_BATCH):
            count += len(
                celebrity_lists_rebuild(author_ids[start : start + CELEBRITY_REBUILD_BATCH])
            )
    return count


CELEBRITY_REBUILD_BATCH = 200  # lists rebuilt by one query (per list: FEED_CELEBRITY_POSTS IDs)
