"""Likes of posts and comments. Counts change in the same transaction as the like rows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import connections, transaction

from accounts.models import User
from instagram.errors import ApiError
from instagram.locks import advisory_xact_lock
from instagram.outbox import outbox_enqueue, outbox_handler
from instagram.sharding import alias_for_id
from posts.models import Comment, CommentLike, Like, LikedPost
from posts.selectors import comment_get_visible, post_get_visible


class LikeEvent(StrEnum):
    LIKED_POST_SYNC = "posts.liked_post_sync"


@dataclass(frozen=True)
class LikeState:
    like_count: int
    viewer_has_liked: bool


def _visible_post_or_404(user: User, post_id: int):
    post = post_get_visible(viewer_id=user.id, post_id=post_id)
    if post is None:
        raise ApiError(404, "not_found", "Post not found.")
    return post


def _change(using: str, sql: str, params: list) -> Any:
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _like_count_after(using: str, *, user_id: int, post_id: int, delta: int) -> int:
    """The post's like count after a like row changed by `delta` (0: unchanged): the count
    moves in the same transaction, and the liker's index follows through the outbox."""
    if not delta:
        return _change(using, "SELECT like_count FROM posts_post WHERE id = %s", [post_id])
    outbox_enqueue(
        partition_id=post_id,
        kind=LikeEvent.LIKED_POST_SYNC,
        payload={"user_id": user_id, "post_id": post_id},
    )
    return _change(
        using,
        "UPDATE posts_post SET like_count = like_count + %s WHERE id = %s RETURNING like_count",
        [delta, post_id],
    )


def post_like(*, user: User, post_id: int) -> LikeState:
    _visible_post_or_404(user, post_id)
    using = alias_for_id(post_id)
    with transaction.atomic(using=using):
        inserted = _change(
            using,
            "INSERT INTO posts_like (post_id, user_id, created_at) VALUES (%s, %s, now()) "
            "ON CONFLICT DO NOTHING RETURNING id",
            [post_id, user.id],
        )
        count = _like_count_after(
            using, user_id=user.id, post_id=post_id, delta=int(bool(inserted))
        )
    return LikeState(like_count=count, viewer_has_liked=True)


def post_unlike(*, user: User, post_id: int) -> LikeState:
    _visible_post_or_404(user, post_id)
    using = alias_for_id(post_id)
    with transaction.atomic(using=using):
        deleted, _ = Like.objects.using(using).filter(post_id=post_id, user_id=user.id).delete()
        count = _like_count_after(using, user_id=user.id, post_id=post_id, delta=-deleted)
    return LikeState(like_count=count, viewer_has_liked=False)


@outbox_handler(LikeEvent.LIKED_POST_SYNC)
def liked_post_sync(payload: dict) -> None:
    """Make the liker's "liked posts" row match the like on the post's shard (idempotent)."""
    user_id, post_id = payload["user_id"], payload["post_id"]
    using = alias_for_id(user_id)
    with transaction.atomic(using=using):
        advisory_xact_lock(using, f"liked:{user_id}:{post_id}")
        liked_at = (
            Like.objects.using(alias_for_id(post_id))
            .filter(post_id=post_id, user_id=user_id)
            .values_list("created_at", flat=True)
            .first()
        )
        rows = LikedPost.objects.using(using).filter(user_id=user_id, post_id=post_id)
        if liked_at is None:
            rows.delete()
        elif not rows.exists():
            LikedPost.objects.using(using).create(
                user_id=user_id, post_id=post_id, liked_at=liked_at
            )


def _visible_comment_or_404(user: User, comment_id: int) -> Comment:
    found = comment_get_visible(viewer_id=user.id, comment_id=comment_id)
    if found is None:
        raise ApiError(404, "not_found", "Comment not found.")
    return found.comment


def comment_like(*, user: User, comment_id: int) -> LikeState:
    _visible_comment_or_404(user, comment_id)
    using = alias_for_id(comment_id)
    with transaction.atomic(using=using):
        inserted = _change(
            using,
            "INSERT INTO posts_commentlike (comment_id, user_id, created_at) "
            "VALUES (%s, %s, now()) ON CONFLICT DO NOTHING RETURNING id",
            [comment_id, user.id],
        )
        delta = 1 if inserted else 0
        count = _change(
            using,
            "UPDATE posts_comment SET like_count = like_count + %s WHERE id = %s "
            "RETURNING like_count",
            [delta, comment_id],
        )
    return LikeState(like_count=count, viewer_has_liked=True)


def comment_unlike(*, user: User, comment_id: int) -> LikeState:
    _visible_comment_or_404(user, comment_id)
    using = alias_for_id(comment_id)
    with transaction.atomic(using=using):
        deleted, _ = (
            CommentLike.objects.using(using).filter(comment_id=comment_id, user_id=user.id).delete()
        )
        count = _change(
            using,
            "UPDATE posts_comment SET like_count = like_count - %s WHERE id = %s "
            "RETURNING like_count",
            [1 if deleted else 0, comment_id],
        )
    return LikeState(like_count=count, viewer_has_liked=False)
