"""A block takes the blocked user's likes and comments off the blocker's posts, as people expect
of a block: the blocker's posts no longer count or show them, to anyone. Unblocking does not
bring them back.

A hook of the block (accounts), run through the outbox a step at a time while the block stands:
each step removes one batch and commits with its counts and the event for the next step, so a
removal of any size holds its locks briefly, and one cut short keeps what it did and goes on
from there. Every step is idempotent. The blocker's posts, their likes and their comments all
live on the blocker's shard.
"""

from __future__ import annotations

from django.db import connections

from instagram.outbox import outbox_enqueue
from instagram.sharding import alias_for_id
from posts.models import Comment, Post
from posts.services.comments import comment_soft_delete
from posts.services.likes import LikeEvent

BATCH = 500

# The blocked user's likes of the blocker's posts: one probe of the like's unique index per post
# of the blocker's, so a batch costs what the blocker has posted, not what the liker has liked.
_LIKES_DELETE_SQL = """
DELETE FROM posts_like WHERE id IN (
    SELECT l.id FROM posts_post p
    JOIN posts_like l ON l.post_id = p.id AND l.user_id = %(blocked)s
    WHERE p.author_id = %(blocker)s
    ORDER BY l.id LIMIT %(batch)s
)
RETURNING post_id
"""


def block_interactions_remove(*, blocker_id: int, blocked_id: int) -> bool:
    """One step, in the caller's transaction on the blocker's shard: a batch of the blocked
    user's likes of the blocker's posts (with the counts, and the liker's own list of liked
    posts through the outbox), else a batch of their comments there (with their replies).
    True if there may be more."""
    using = alias_for_id(blocker_id)
    if _likes_remove(using, blocker_id, blocked_id):
        return True
    batch = list(
        Comment.objects.using(using)
        .filter(
            author_id=blocked_id,
            deleted_at__isnull=True,
            post_id__in=Post.objects.using(using).filter(author_id=blocker_id).values("id"),
        )
        .order_by("post_id", "id")[:BATCH]  # each locks its post first: in ID order
    )
    for comment in batch:
        comment_soft_delete(comment)
    return bool(batch)


def _likes_remove(using: str, blocker_id: int, blocked_id: int) -> int:
    """One batch: the rows, then each post's count (the like row first, then the post, as an
    unlike takes them; the posts in ID order), and the events that update the liker's list."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            _LIKES_DELETE_SQL, {"blocked": blocked_id, "blocker": blocker_id, "batch": BATCH}
        )
        post_ids = sorted(row[0] for row in cursor.fetchall())
        if post_ids:
            cursor.execute(
                "SELECT 1 FROM posts_post WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [post_ids]
            )
            cursor.execute(
                "UPDATE posts_post SET like_count = like_count - 1 WHERE id = ANY(%s)",
                [post_ids],
            )
    for post_id in post_ids:
        outbox_enqueue(
            partition_id=post_id,
            kind=LikeEvent.LIKED_POST_SYNC,
            payload={"user_id": blocked_id, "post_id": post_id},
        )
    return len(post_ids)
