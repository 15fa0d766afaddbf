"""Profile edits."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django.db import transaction

from accounts.models import FollowRequest, User
from accounts.selectors import AUTHOR_CARDS
from accounts.services.graph import follow_request_approve
from instagram.cache import cache_forget
from instagram.dispatch import after_commit
from instagram.sharding import alias_for_id

EDITABLE = ("full_name", "bio", "is_private", "email")


def profile_update(*, user: User, **changes) -> User:
    """Apply profile edits; going public approves every pending follow request."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    if not changes:
        return user
    went_public = user.is_private and changes.get("is_private") is False
    with transaction.atomic():
        for field, value in changes.items():
            setattr(user, field, value)
        user.save(update_fields=list(changes))  # only these: other fields may be stale
        user_cards_forget(user_ids=[user.id])
    if went_public:
        pending = FollowRequest.objects.using(alias_for_id(user.id)).filter(
            target_id=user.id, approved_at__isnull=True
        )
        for requester_id in pending.values_list("requester_id", flat=True).iterator():
            follow_request_approve(target=user, requester_id=requester_id)
    return user


def profile_picture_set(*, user: User, file) -> User:
    """Render an upload as the profile picture (150 and 320 square) and release the old one."""
    from media.selectors import media_urls
    from media.services import media_release, profile_picture_create

    media = profile_picture_create(user=user, file=file)
    previous = user.profile_pic_media_id
    user.profile_pic_media_id = media.id
    user.profile_pic_url = media_urls(media)["320"]
    user.save(update_fields=["profile_pic_media_id", "profile_pic_url"])
    user_cards_forget(user_ids=[user.id])
    if previous and previous != media.id:
        media_release(uploader_id=user.id, media_ids=[previous])
    return user


def user_cards_forget(*, user_ids: Iterable[int]) -> None:
    """Around a change to users' name, picture, badge or status: mark their cached author
    cards changed now and again once the change commits (every path that changes those
    fields calls this), so no read from before the change can cache the old card."""
    ids = list(user_ids)
    cache_forget(AUTHOR_CARDS, ids)
    after_commit(partial(cache_forget, AUTHOR_CARDS, ids), using="default")
