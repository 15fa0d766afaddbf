"""Hybrid fan-out and timeline upkeep. Every function is safe to run twice.

A post by an account under FEED_FANOUT_THRESHOLD followers is pushed into the timeline of each
follower active in the last FEED_ACTIVE_DAYS, reading followers in batches from the author's
shard; a post by an account over it goes to `celebrity:{author}:posts` only and is merged when a
follower reads. Any timeline can be rebuilt from PostgreSQL with one query per shard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from accounts.models import User, UserCounters
from accounts.selectors import follower_ids_batched, following_ids
from feed import timelines
from instagram.sharding import alias_for_id, group_by_alias
from posts.models import Post


def recent_post_ids(author_ids: Iterable[int], *, limit: int) -> list[int]:
    """The newest published posts of these authors: one query per shard, merged newest first."""
    found: list[int] = []
    for alias, ids in group_by_alias(author_ids).items():
        found.extend(
            Post.objects.using(alias)
            .filter(author_id__in=ids, published_at__isnull=False, deleted_at__isnull=True)
            .order_by("-id")
            .values_list("id", flat=True)[:limit]
        )
    return sorted(found, reverse=True)[:limit]


def timeline_rebuild(*, user_id: int) -> list[int]:
    """A complete timeline from the database: recent posts of followed non-celebrities."""
    followees = following_ids(user_id)
    celebrities = set(timelines.celebrities_among(followees))
    regular = [followee for followee in followees if followee not in celebrities]
    post_ids = recent_post_ids(regular, limit=settings.FEED_TIMELINE_LENGTH)
    timelines.timeline_replace(user_id, post_ids)
    return post_ids


def celebrity_rebuild(*, author_id: int) -> list[int]:
    post_ids = recent_post_ids([author_id], limit=settings.FEED_CELEBRITY_POSTS)
    timelines.celebrity_replace(author_id, post_ids)
    return post_ids


def _follower_count(author_id: int) -> int:
    return (
        UserCounters.objects.using(alias_for_id(author_id))
        .filter(user_id=author_id)
        .values_list("follower_count", flat=True)
        .first()
        or 0
    )


def post_fanout(*, post_id: int) -> int:
    """Push a published post to its author's active followers; returns timelines written."""
    post = (
        Post.objects.using(alias_for_id(post_id))
        .filter(id=post_id, published_at__isnull=False, deleted_at__isnull=True)
        .only("id", "author_id")
        .first()
    )
    if post is None:
        return 0
    if _follower_count(post.author_id) >= settings.FEED_FANOUT_THRESHOLD:
        timelines.celebrity_add(post.author_id, post.id)
        return 0
    cutoff = timezone.now() - dt.timedelta(days=settings.FEED_ACTIVE_DAYS)
    written = 0
    for batch in follower_ids_batched(post.author_id, batch_size=settings.FEED_FANOUT_BATCH):
        active = list(
            User.objects.filter(
                id__in=batch, is_active=True, last_active_at__gte=cutoff
            ).values_list("id", flat=True)
        )
        written += timelines.fanout_push(active, post.id)
    return written


def timeline_follow_merge(*, follower_id: int, followee_id: int) -> int:
    """A new follow: the followee's recent posts join the follower's (built) timeline."""
    if timelines.celebrities_among([followee_id]):
        return 0  # merged at read time
    post_ids = recent_post_ids([followee_id], limit=settings.FEED_TIMELINE_LENGTH // 4)
    timelines.timeline_add(follower_id, post_ids)
    return len(post_ids)


def timeline_follow_remove(*, follower_id: int, followee_id: int) -> int:
    """An unfollow or block: drop the followee's posts (reads already filter them at once)."""
    post_ids = recent_post_ids([followee_id], limit=settings.FEED_TIMELINE_LENGTH)
    timelines.timeline_remove(follower_id, post_ids)
    return len(post_ids)


def celebrities_rebuild() -> int:
    """Re-register every account over the threshold (after Redis lost its data)."""
    from instagram.sharding import shard_aliases

    count = 0
    for alias in shard_aliases():
        for author_id in (
            UserCounters.objects.using(alias)
            .filter(follower_count__gte=settings.FEED_FANOUT_THRESHOLD)
            .values_list("user_id", flat=True)
        ):
            celebrity_rebuild(author_id=author_id)
            count += 1
    return count
