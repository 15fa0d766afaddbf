"""Saved posts, on the saver's shard."""

from __future__ import annotations

from accounts.models import User
from instagram.errors import ApiError
from instagram.sharding import alias_for_id
from posts.models import Save
from posts.selectors import post_get_visible


def post_save(*, user: User, post_id: int) -> None:
    if post_get_visible(viewer_id=user.id, post_id=post_id) is None:
        raise ApiError(404, "not_found", "Post not found.")
    Save.objects.using(alias_for_id(user.id)).bulk_create(
        [Save(user_id=user.id, post_id=post_id)], ignore_conflicts=True
    )


def post_unsave(*, user: User, post_id: int) -> None:
    """Idempotent, and whether the post is visible or not: the row is the saver's own (one
    who lost access must still be able to remove it), and a 204 either way tells nothing."""
    Save.objects.using(alias_for_id(user.id)).filter(user_id=user.id, post_id=post_id).delete()
