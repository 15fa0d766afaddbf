"""Profile edits."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from functools import partial

from django.db import transaction

from accounts.models import User
from accounts.selectors import AUTHOR_CARDS
from accounts.services.graph import follow_requests_approve_all_later, switch_to_private_lock
from instagram.cache import cache_forget
from instagram.dispatch import after_commit

EDITABLE = ("full_name", "bio", "is_private", "email")


def profile_update(*, user: User, **changes) -> User:
    """Apply profile edits; going public approves every pending follow request."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    if not changes:
        return user
    going_public = changes.get("is_private") is False
    if going_public:  # the requests live on the user's shard: a net for a crash after the switch
        follow_requests_approve_all_later(target_id=user.id, net=True)
    with ExitStack() as stack:
        if changes.get("is_private") is True:  # approvals in flight commit first, or see it
            stack.enter_context(switch_to_private_lock(user.id))
        with transaction.atomic():
            for field, value in changes.items():
                setattr(user, field, value)
            user.save(update_fields=list(changes))  # only these: other fields may be stale
            user_cards_forget(user_ids=[user.id])
    if going_public:
        # Also when the account was public already, so repeating the edit finishes approvals
        # an earlier one left (a request that raced the switch).
        follow_requests_approve_all_later(target_id=user.id)
    return user


def profile_picture_set(*, user: User, file) -> User:
    """Render an upload as the profile picture (150 and 320 square) and release the old one."""
    from media.selectors import media_urls
    from media.services import media_release, profile_picture_attach, profile_picture_create
    from media.services.lifecycle import profile_picture_release_later

    media = profile_picture_create(user=user, file=file)
    with transaction.atomic(using="default"):
        # The picture replaced is the one in the row now, read under its lock: with two uploads
        # at once, the second releases the first's (not the one both saw before), so neither
        # stays attached for good.
        previous = (
            User.objects.select_for_update()
            .values_list("profile_pic_media_id", flat=True)
            .get(pk=user.pk)
        )
        if previous and previous != media.id:  # committed first, on the uploader's shard
            profile_picture_release_later(uploader_id=user.id, media_id=previous)
        user.profile_pic_media_id = media.id
        user.profile_pic_url = media_urls(media)["320"]
        user.save(update_fields=["profile_pic_media_id", "profile_pic_url"])
        user_cards_forget(user_ids=[user.id])
    # Set (committed), so it stops expiring; a process that dies before this leaves it to the
    # expiry sweep, which attaches a picture a user points at instead of deleting it.
    profile_picture_attach(uploader_id=user.id, media_id=media.id)
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
