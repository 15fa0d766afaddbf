"""Comments: one level of replies, counts kept with the rows."""

from __future__ import annotations

from django.db import connections, transaction
from django.utils import timezone

from accounts.models import User
from instagram.errors import ApiError
from instagram.sharding import alias_for_id
from posts.models import COMMENT_MAX, MAX_MENTIONS, Comment, PostMention
from posts.parsing import mentions_in
from posts.selectors import comment_get_visible, post_get_visible
from posts.services.posts import mentions_resolve


def _bump(using: str, table: str, column: str, row_id: int, delta: int) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {column} + %s WHERE id = %s", [delta, row_id]
        )


def _post_locked(using: str, post_id: int) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1 FROM posts_post WHERE id = %s FOR UPDATE", [post_id])


def comment_create(
    *, author: User, post_id: int, text: str, parent_id: int | None = None
) -> Comment:
    if post_get_visible(viewer_id=author.id, post_id=post_id) is None:
        raise ApiError(404, "not_found", "Post not found.")
    if not text.strip():
        raise ApiError(400, "empty_comment", "A comment needs some text.")
    if len(text) > COMMENT_MAX:
        raise ApiError(400, "comment_too_long", f"Comments are at most {COMMENT_MAX} characters.")
    names = mentions_in(text)
    if len(names) > MAX_MENTIONS:
        raise ApiError(400, "too_many_mentions", f"At most {MAX_MENTIONS} mentions.")
    mentions = mentions_resolve(author=author, names=names)
    using = alias_for_id(post_id)
    with transaction.atomic(using=using):
        # The post's row first, as a delete takes it (its count changes either way): a reply
        # locking its parent first would lock the two in the opposite order, and deadlock.
        _post_locked(using, post_id)
        if parent_id is not None:
            # Locked, so it cannot be deleted (taking its replies) before this reply commits;
            # one the author may not see is refused like a missing one.
            parent = (
                comment_get_visible(viewer_id=author.id, comment_id=parent_id, for_update=True)
                if alias_for_id(parent_id) == using
                else None
            )
            if parent is None or parent.comment.post_id != post_id:
                raise ApiError(400, "invalid_parent", "Reply to a comment on this post.")
            if parent.comment.parent_id is not None:
                raise ApiError(400, "invalid_parent", "Replies go one level deep.")
        comment = Comment.objects.using(using).create(
            post_id=post_id, author_id=author.id, parent_id=parent_id, text=text
        )
        _bump(using, "posts_post", "comment_count", post_id, 1)
        if parent_id is not None:
            _bump(using, "posts_comment", "reply_count", parent_id, 1)
        PostMention.objects.using(using).bulk_create(
            PostMention(post_id=post_id, comment_id=comment.id, user_id=int(m["user_id"]))
            for m in mentions
        )
    return comment


def comment_delete(*, user: User, comment_id: int) -> None:
    """By the comment's author or the post's author; a deleted comment takes its replies.

    One the user may not see answers 404 like a missing one (no sign it exists), even to the
    post's author when the list hides it from everyone (a deactivated author)."""
    found = comment_get_visible(viewer_id=user.id, comment_id=comment_id, deleting=True)
    if found is None:
        raise ApiError(404, "not_found", "Comment not found.")
    comment = found.comment
    if user.id not in (comment.author_id, found.post.author_id):
        raise ApiError(403, "permission_denied", "Only the comment's or the post's author can.")
    comment_soft_delete(comment)


def comment_remove(*, comment_id: int) -> bool:
    """Moderation (the admin): soft-delete a comment, with its replies, whoever wrote it; True
    if this call deleted it."""
    comment = Comment.objects.using(alias_for_id(comment_id)).filter(id=comment_id).first()
    return comment is not None and comment_soft_delete(comment)


def comment_soft_delete(comment: Comment) -> bool:
    using = alias_for_id(comment.id)
    with transaction.atomic(using=using):
        # The post's row first, which every delete changes (its count): deletes of a reply and
        # of its comment would otherwise lock the two comments in opposite orders, and deadlock.
        _post_locked(using, comment.post_id)
        now = timezone.now()
        removed = (
            Comment.objects.using(using)
            .filter(id=comment.id, deleted_at__isnull=True)
            .update(deleted_at=now)
        )
        if not removed:
            return False
        replies = (
            Comment.objects.using(using)
            .filter(parent_id=comment.id, deleted_at__isnull=True)
            .update(deleted_at=now)
        )
        _bump(using, "posts_post", "comment_count", comment.post_id, -(1 + replies))
        if comment.parent_id is not None:
            _bump(using, "posts_comment", "reply_count", comment.parent_id, -1)
    return True
