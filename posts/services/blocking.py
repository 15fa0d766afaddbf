"""A block takes the blocked user's likes and comments off the blocker's posts, as people expect
of a block: the blocker's posts no longer count or show them, to anyone. Unblocking does not
bring them back.

Run by the accounts app's block hook, through the outbox (at least once, while the block
stands): every step is idempotent, and each batch commits with its counts, so a crash mid-way
loses nothing and a run again removes only what is left. The blocker's posts, their likes and
their comments all live on the blocker's shard.
"""

from __future__ import annotations

from django.db import connections, transaction

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


def block_interactions_remove(*, blocker_id: int, blocked_id: int) -> None:
    """The block hook: the blocked user's likes of the blocker's posts (with the counts and the
    liker's own list of liked posts), then their comments there (with their replies)."""
    using = alias_for_id(blocker_id)
    while _likes_remove(using, blocker_id, blocked_id) == BATCH:
        pass
    comments = Comment.objects.using(using).filter(
        author_id=blocked_id,
        deleted_at__isnull=True,
        post_id__in=Post.objects.using(using).filter(author_id=blocker_id).values("id"),
    )
    while batch := list(comments.order_by("id")[:BATCH]):
        for comment in batch:  # each deleted (or found deleted) drops out of the next batch
            comment_soft_delete(comment)


def _likes_remove(using: str, blocker_id: int, blocked_id: int) -> int:
    """One batch, in one transaction: the rows, each post's count (the like row first, then
    the post, as an unlike takes them), and the events that update the liker's list."""
    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute(
                _LIKES_DELETE_SQL, {"blocked": blocked_id, "blocker": blocker_id, "batch": BATCH}
            )
            post_ids = sorted(row[0] for row in cursor.fetchall())
            if post_ids:
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
