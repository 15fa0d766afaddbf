"""Create, edit, publish and delete posts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from accounts.models import User, UserCounters
from accounts.selectors import blocked_among
from accounts.services.graph import user_counters_lock
from instagram.dispatch import after_commit
from instagram.errors import ApiError
from instagram.ids import min_id_at
from instagram.outbox import outbox_enqueue, outbox_handler
from instagram.sharding import alias_for_id, group_by_alias
from posts.models import (
    CAPTION_MAX,
    MAX_HASHTAGS,
    MAX_MEDIA,
    MAX_MENTIONS,
    MAX_TAGGED,
    Hashtag,
    Location,
    Post,
    PostHashtag,
    PostMedia,
    PostMention,
    PostTag,
)
from posts.parsing import hashtags_in, mentions_in

# Hooks other apps register (the feed's fan-out); called after commit with the post, the
# published ones through the outbox (so they must be idempotent).
post_published_hooks: list = []
post_deleted_hooks: list = []


class PostEvent(StrEnum):
    PUBLISHED = "post.published"


@dataclass(frozen=True)
class ParsedCaption:
    hashtags: list[str]
    mentions: list[dict]  # [{"user_id": "...", "username": "..."}]


def caption_parse(*, author: User, caption: str) -> ParsedCaption:
    """Hashtags and mentions of the author's caption; 400 past the limits or for an unknown
    username, 403 for a user blocked either way."""
    if len(caption) > CAPTION_MAX:
        raise ApiError(400, "caption_too_long", f"Captions are at most {CAPTION_MAX} characters.")
    tags = hashtags_in(caption)
    if len(tags) > MAX_HASHTAGS:
        raise ApiError(400, "too_many_hashtags", f"At most {MAX_HASHTAGS} hashtags per post.")
    names = mentions_in(caption)
    if len(names) > MAX_MENTIONS:
        raise ApiError(400, "too_many_mentions", f"At most {MAX_MENTIONS} mentions per post.")
    return ParsedCaption(hashtags=tags, mentions=mentions_resolve(author=author, names=names))


def mentions_resolve(*, author: User, names: list[str]) -> list[dict]:
    """The users a post or comment mentions, as it stores them: those of the names that are
    active accounts with no block either way between them and the author. Any other `@name`
    stays plain text (not linked, never notified), so a typo or a brand that has no account does
    not refuse the post, and a block is not told: a name whose owner blocked the author reads
    exactly as a name nobody has."""
    if not names:
        return []
    found = dict(
        User.objects.filter(username__in=names, is_active=True).values_list("username", "id")
    )
    blocked = blocked_among(author.id, found.values())
    return [
        {"user_id": str(found[name]), "username": name}
        for name in names
        if name in found and found[name] not in blocked
    ]


def _media_validate(*, author: User, media_ids: list[int]) -> None:
    from media.selectors import media_attachable_ids

    if not 1 <= len(media_ids) <= MAX_MEDIA:
        raise ApiError(400, "invalid_media", f"A post has 1 to {MAX_MEDIA} media items.")
    if len(set(media_ids)) != len(media_ids):
        raise ApiError(400, "invalid_media", "The same media item is listed twice.")
    usable = media_attachable_ids(uploader_id=author.id, media_ids=media_ids)
    if set(media_ids) - usable:
        raise ApiError(
            400, "invalid_media", "Media items must be your own, unexpired and not yet posted."
        )


def _tagged_validate(*, author: User, tagged: list[int]) -> list[int]:
    tagged = list(dict.fromkeys(tagged))
    if len(tagged) > MAX_TAGGED:
        raise ApiError(400, "too_many_tags", f"At most {MAX_TAGGED} tagged users.")
    if author.id in tagged:
        raise ApiError(400, "cannot_tag_self", "You cannot tag yourself.")
    existing = set(User.objects.filter(pk__in=tagged, is_active=True).values_list("id", flat=True))
    if set(tagged) - existing:
        raise ApiError(400, "invalid_tagged_user", "A tagged user does not exist.")
    if blocked_among(author.id, tagged):  # one query per shard, however many are tagged
        raise ApiError(403, "tagged_user_blocked", "A tagged user cannot be tagged by you.")
    return tagged


def _rate_limit(author: User) -> None:
    since = timezone.now() - dt.timedelta(hours=24)
    recent = list(
        Post.objects.using(alias_for_id(author.id))
        .filter(author_id=author.id, id__gte=min_id_at(since))
        .order_by("-id")
        .values_list("created_at", flat=True)[: settings.POSTS_PER_DAY]
    )
    if len(recent) >= settings.POSTS_PER_DAY:
        retry = recent[-1] + dt.timedelta(hours=24) - timezone.now()
        raise ApiError(
            429,
            "rate_limited",
            f"At most {settings.POSTS_PER_DAY} posts in 24 hours.",
            retry_after=max(1, int(retry.total_seconds()) + 1),
        )


def _index_rows(using: str, post: Post, parsed: ParsedCaption) -> None:
    PostHashtag.objects.using(using).bulk_create(
        [PostHashtag(post_id=post.id, tag=tag) for tag in parsed.hashtags]
    )
    PostMention.objects.using(using).bulk_create(
        [PostMention(post_id=post.id, user_id=int(m["user_id"])) for m in parsed.mentions]
    )


def post_create(
    *,
    author: User,
    media_ids: list[int],
    caption: str = "",
    alt_text: list[str] | None = None,
    tagged_user_ids: list[int] | None = None,
    location_id: int | None = None,
) -> Post:
    """A post on the author's shard with its media, index rows and count, in one transaction.

    Published to followers once every media item is ready (at once when they already are).
    """
    from media.services.lifecycle import media_mark_attached

    parsed = caption_parse(author=author, caption=caption)
    _media_validate(author=author, media_ids=media_ids)
    alt = alt_text or [""] * len(media_ids)
    if len(alt) != len(media_ids):
        raise ApiError(400, "invalid_alt_text", "Give one alt text, or one per media item.")
    tagged = _tagged_validate(author=author, tagged=tagged_user_ids or [])
    if location_id is not None and not Location.objects.filter(pk=location_id).exists():
        raise ApiError(400, "invalid_location", "Unknown location.")
    _rate_limit(author)  # before anything is written; counted again under the lock below
    if parsed.hashtags:
        Hashtag.objects.bulk_create(
            [Hashtag(name=tag) for tag in parsed.hashtags], ignore_conflicts=True
        )

    using = alias_for_id(author.id)
    with transaction.atomic(using=using):
        # Under the author's counter lock: two creates at once take turns, and the second
        # counts the first.
        user_counters_lock(user_id=author.id)
        _rate_limit(author)
        now = timezone.now()
        post = Post.objects.using(using).create(
            author_id=author.id,
            caption=caption,
            location_id=location_id,
            hashtags=parsed.hashtags,
            mentions=parsed.mentions,
            created_at=now,
            updated_at=now,
        )
        PostMedia.objects.using(using).bulk_create(
            PostMedia(post_id=post.id, media_id=media_id, position=index, alt_text=text)
            for index, (media_id, text) in enumerate(zip(media_ids, alt, strict=True))
        )
        PostTag.objects.using(using).bulk_create(
            PostTag(post_id=post.id, user_id=user_id) for user_id in tagged
        )
        _index_rows(using, post, parsed)
        media_mark_attached(uploader_id=author.id, media_ids=media_ids)
        post_publish_if_ready(post=post)
    return post


def _post_count_add(using: str, user_id: int, delta: int) -> None:
    UserCounters.objects.using(using).bulk_create(
        [UserCounters(user_id=user_id)], ignore_conflicts=True
    )
    with connections[using].cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_usercounters SET post_count = post_count + %s WHERE user_id = %s",
            [delta, user_id],
        )


def post_publish_if_ready(*, post: Post) -> bool:
    """Publish the post once all its media are ready; True if it is (now) published."""
    from media.selectors import media_all_ready

    if post.published_at is not None:
        return True
    using = alias_for_id(post.id)
    media_ids = list(
        PostMedia.objects.using(using).filter(post_id=post.id).values_list("media_id", flat=True)
    )
    if not media_all_ready(using=using, media_ids=media_ids):
        return False
    now = timezone.now()
    with transaction.atomic(using=using):
        updated = (
            Post.objects.using(using)
            .filter(id=post.id, published_at__isnull=True, deleted_at__isnull=True)
            .update(published_at=now, updated_at=now)  # a new version: media now ready
        )
        if updated:
            # The count shown to others counts published posts only.
            _post_count_add(using, post.author_id, 1)
            post.published_at = post.updated_at = now
            # Through the outbox: the fan-out is handed on even if this process dies right
            # after the commit or the broker is down for a while.
            outbox_enqueue(
                partition_id=post.id,
                kind=PostEvent.PUBLISHED,
                payload={"post_id": post.id},
                apply_here=True,
            )
    return bool(updated)


@outbox_handler(PostEvent.PUBLISHED)
def _published_apply(payload: dict) -> None:
    for hook in post_published_hooks:
        hook(post_id=payload["post_id"])


def posts_publish_for_media(*, media_ids: list[int]) -> int:
    """Hook for media: uploads became ready (or failed); publish posts now complete."""
    published = 0
    for using, ids in group_by_alias(media_ids).items():
        post_ids = set(
            PostMedia.objects.using(using)
            .filter(media_id__in=ids)
            .values_list("post_id", flat=True)
        )
        waiting = Post.objects.using(using).filter(
            id__in=post_ids, published_at__isnull=True, deleted_at__isnull=True
        )
        for post in waiting:
            published += post_publish_if_ready(post=post)
    return published


def _own_post(*, author: User, post_id: int, for_update: bool = False) -> Post:
    """The author's live post; `for_update` holds its row lock until commit. Someone else's
    post is a 403 if they may see it (as for a comment), else a 404 like a missing one."""
    from posts.selectors import post_get_visible

    posts = Post.objects.using(alias_for_id(post_id))
    if for_update:
        posts = posts.select_for_update()
    post = posts.filter(id=post_id, deleted_at__isnull=True).first()
    if post is None:
        raise ApiError(404, "not_found", "Post not found.")
    if post.author_id != author.id:
        if post_get_visible(viewer_id=author.id, post_id=post_id) is not None:
            raise ApiError(403, "permission_denied", "Only the post's author can.")
        raise ApiError(404, "not_found", "Post not found.")
    return post


def post_update(
    *, author: User, post_id: int, caption: str | None = None, alt_text: list[str] | None = None
) -> Post:
    post = _own_post(author=author, post_id=post_id)
    using = alias_for_id(post.id)
    parsed = caption_parse(author=author, caption=caption) if caption is not None else None
    links = list(PostMedia.objects.using(using).filter(post_id=post.id).order_by("position"))
    if alt_text is not None and len(alt_text) not in (1, len(links)):
        raise ApiError(400, "invalid_alt_text", "Give one alt text, or one per media item.")
    if parsed is not None and parsed.hashtags:
        Hashtag.objects.bulk_create(
            [Hashtag(name=tag) for tag in parsed.hashtags], ignore_conflicts=True
        )
    with transaction.atomic(using=using):
        # Edits and a delete of one post take turns on its row, so an edit replaces the index
        # rows the previous one committed (not a set it cannot see yet) and never revives a
        # post deleted meanwhile.
        post = _own_post(author=author, post_id=post_id, for_update=True)
        if parsed is not None:
            post.caption = caption or ""
            post.hashtags = parsed.hashtags
            post.mentions = parsed.mentions
            PostHashtag.objects.using(using).filter(post_id=post.id).delete()
            PostMention.objects.using(using).filter(
                post_id=post.id, comment_id__isnull=True
            ).delete()
            _index_rows(using, post, parsed)
        if alt_text is not None:
            texts = alt_text * len(links) if len(alt_text) == 1 else alt_text
            for link, text in zip(links, texts, strict=True):
                link.alt_text = text
            PostMedia.objects.using(using).bulk_update(links, ["alt_text"])
        post.updated_at = timezone.now()
        post.save(using=using, update_fields=["caption", "hashtags", "mentions", "updated_at"])
    return post


def post_delete(*, author: User, post_id: int) -> None:
    """Soft delete: gone from every list, feed, tag page and count at once; media freed later."""
    from media.services.lifecycle import media_release

    using = alias_for_id(post_id)
    with transaction.atomic(using=using):
        # Whether the post was counted is read from the locked row: the media worker may
        # publish (and count) it until this transaction holds the lock.
        post = _own_post(author=author, post_id=post_id, for_update=True)
        Post.objects.using(using).filter(id=post.id).update(deleted_at=timezone.now())
        PostHashtag.objects.using(using).filter(post_id=post.id).delete()
        if post.published_at is not None:
            _post_count_add(using, author.id, -1)
        media_ids = list(
            PostMedia.objects.using(using)
            .filter(post_id=post.id)
            .values_list("media_id", flat=True)
        )
        media_release(uploader_id=author.id, media_ids=media_ids)
        for hook in post_deleted_hooks:
            after_commit(partial(hook, post_id=post.id, author_id=author.id), using=using)


def post_restore(*, post_id: int) -> bool:
    """Admin: undo a soft delete (while its media still exist)."""
    from media.services.lifecycle import media_mark_attached

    using = alias_for_id(post_id)
    with transaction.atomic(using=using):
        # Under the row lock a delete and an edit take: restored (and counted) once.
        post = (
            Post.objects.using(using)
            .select_for_update()
            .filter(id=post_id, deleted_at__isnull=False)
            .first()
        )
        if post is None:
            return False
        Post.objects.using(using).filter(id=post_id).update(deleted_at=None)
        post.deleted_at = None
        parsed = ParsedCaption(hashtags=post.hashtags, mentions=[])
        PostHashtag.objects.using(using).bulk_create(
            [PostHashtag(post_id=post.id, tag=tag) for tag in parsed.hashtags],
            ignore_conflicts=True,
        )
        if post.published_at is not None:
            _post_count_add(using, post.author_id, 1)
            # Back in the followers' feeds (the delete took it out of lists and timelines): the
            # fan-out again, which adds what is missing and nothing twice.
            outbox_enqueue(
                partition_id=post.id,
                kind=PostEvent.PUBLISHED,
                payload={"post_id": post.id},
                apply_here=True,
            )
        media_ids = list(
            PostMedia.objects.using(using)
            .filter(post_id=post.id)
            .values_list("media_id", flat=True)
        )
        try:
            media_mark_attached(uploader_id=post.author_id, media_ids=media_ids)
        except ApiError:  # its media were already deleted: it cannot come back
            transaction.set_rollback(True, using=using)
            return False
    # Media that became ready while it was deleted published nothing (the worker skips deleted
    # posts): it is published now, fanned out and counted like any other.
    post_publish_if_ready(post=post)
    return True


def post_location_set(*, post_id: int, location_id: int | None) -> bool:
    """Moderation (the admin): move a live post to another location, or none; a new version.
    True if the post was live."""
    if location_id is not None and not Location.objects.filter(pk=location_id).exists():
        raise ApiError(400, "invalid_location", "Unknown location.")
    using = alias_for_id(post_id)
    updated = (
        Post.objects.using(using)
        .filter(id=post_id, deleted_at__isnull=True)
        .update(location_id=location_id, updated_at=timezone.now())
    )
    return bool(updated)
