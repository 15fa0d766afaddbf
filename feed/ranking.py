"""Ranking of feed candidates: a weighted score of relationship, interest, recency, popularity.

relationship  1 + the viewer's likes of the author's posts (last 500 likes), x10 when the
              author is on the viewer's close friends list
interest      1 + half the number of the post's hashtags the viewer liked recently
recency       exp(-age / 24 h)
popularity    1 + 0.2 * log(1 + likes + 2 * comments)

All signals come from rows the system already keeps (the liker's "liked posts" index, close
friends, the post's counts), read in a fixed number of queries.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Protocol, TypeVar

from accounts.selectors import close_friend_ids
from instagram.ids import timestamp_ms_of
from instagram.sharding import alias_for_id
from posts.models import LikedPost
from posts.selectors import posts_fetch


class Rankable(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def author_id(self) -> int: ...
    @property
    def hashtags(self) -> list: ...
    @property
    def like_count(self) -> int: ...
    @property
    def comment_count(self) -> int: ...


T = TypeVar("T", bound=Rankable)

RECENT_LIKES = 500
CLOSE_FRIEND_WEIGHT = 10.0
RECENCY_HOURS = 24.0


def _engagement(viewer_id: int) -> tuple[Counter, Counter]:
    liked_ids = list(
        LikedPost.objects.using(alias_for_id(viewer_id))
        .filter(user_id=viewer_id)
        .order_by("-liked_at")
        .values_list("post_id", flat=True)[:RECENT_LIKES]
    )
    by_author: Counter = Counter()
    by_tag: Counter = Counter()
    for post in posts_fetch(liked_ids).values():
        by_author[post.author_id] += 1
        by_tag.update(post.hashtags)
    return by_author, by_tag


def score(
    post: Rankable, *, now_ms: int, likes_of_author: int, close: bool, tags: Counter
) -> float:
    relationship = (1.0 + likes_of_author) * (CLOSE_FRIEND_WEIGHT if close else 1.0)
    interest = 1.0 + 0.5 * sum(1 for tag in post.hashtags if tags[tag])
    age_hours = max(now_ms - timestamp_ms_of(post.id), 0) / 3_600_000
    recency = math.exp(-age_hours / RECENCY_HOURS)
    popularity = 1.0 + 0.2 * math.log1p(post.like_count + 2 * post.comment_count)
    return relationship * interest * recency * popularity


def rank(*, viewer_id: int, posts: list[T], now_ms: int) -> list[T]:
    """Highest score first; ties broken by newest, so the order is deterministic."""
    by_author, by_tag = _engagement(viewer_id)
    close = close_friend_ids(viewer_id)
    scored = [
        (
            score(
                post,
                now_ms=now_ms,
                likes_of_author=by_author[post.author_id],
                close=post.author_id in close,
                tags=by_tag,
            ),
            post.id,
            post,
        )
        for post in posts
    ]
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [post for _, _, post in scored]
