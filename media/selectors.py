"""Reads of the media app, and the plain-dict shape every API answer uses for a media."""

from __future__ import annotations

from collections.abc import Iterable

from instagram.errors import ApiError
from instagram.ids import parse_id_text
from instagram.sharding import alias_for_id, shard_aliases
from media.filters import FILTERS
from media.models import Media, MediaKind, MediaNearDuplicate
from media.storage import public_url

POST_URL_SIZES = ("1080", "640", "320", "150")
PROFILE_URL_SIZES = ("320", "150")


def parse_media_id(value: str | int) -> int | None:
    return parse_id_text(str(value))


def media_get_for_uploader(*, viewer_id: int, media_id: str | int) -> Media:
    """The viewer's own upload; anyone else's (or none) is a 404, so existence never leaks."""
    parsed = parse_media_id(media_id)
    if parsed is None:
        raise ApiError(404, "not_found", "Not found.")
    media = Media.objects.using(alias_for_id(parsed)).filter(id=parsed).first()
    if media is None or media.uploader_id != viewer_id:
        raise ApiError(404, "not_found", "Not found.")
    return media


def media_urls(media: Media) -> dict[str, str]:
    """Final public URLs (live once ready): original aspect for posts, square for avatars."""
    return media_urls_of(kind=media.kind, storage_prefix=media.storage_prefix)


def media_urls_of(*, kind: str, storage_prefix: str) -> dict[str, str]:
    """The same URLs from the two columns they depend on (hot read paths select only those)."""
    if kind == MediaKind.PROFILE:
        return {
            size: public_url(f"{storage_prefix}/{size}_square.jpg") for size in PROFILE_URL_SIZES
        }
    return {size: public_url(f"{storage_prefix}/{size}.jpg") for size in POST_URL_SIZES}


def media_square_urls(media: Media) -> dict[str, str]:
    sizes = PROFILE_URL_SIZES if media.kind == MediaKind.PROFILE else POST_URL_SIZES
    return {size: _url(media, f"{size}_square") for size in sizes}


def _url(media: Media, variant: str) -> str:
    return public_url(f"{media.storage_prefix}/{variant}.jpg")


def media_payload(media: Media) -> dict:
    """The contract's media object (IDs as strings); `failure_reason` only when failed."""
    payload = {
        "media_id": str(media.id),
        "media_type": media.media_type,
        "status": media.status,
        "urls": media_urls(media),
        "square_urls": media_square_urls(media),
        "blur_placeholder": media.placeholder or None,
        "blurhash": media.blurhash or None,
        "width": media.width,
        "height": media.height,
        "filter_id": media.filter_id,
        "expires_at": media.expires_at,
    }
    if media.status == "failed":
        payload["failure_reason"] = media.failure_reason
    return payload


def media_filter_list() -> list[dict[str, str]]:
    return [{"filter_id": f.filter_id, "name": f.name} for f in FILTERS.values()]


def media_near_duplicates(*, media_id: int) -> list[MediaNearDuplicate]:
    """Near-duplicate pairs that involve a media, in either direction (for moderation)."""
    own = list(MediaNearDuplicate.objects.using(alias_for_id(media_id)).filter(media_id=media_id))
    seen = {row.id for row in own}
    for alias in shard_aliases():
        own += [
            row
            for row in MediaNearDuplicate.objects.using(alias).filter(other_media_id=media_id)
            if row.id not in seen
        ]
    return sorted(own, key=lambda row: (row.distance, row.id))


# --- For posts and stories: media of one uploader, read on the uploader's shard ---------------


def media_attachable_ids(*, uploader_id: int, media_ids: Iterable[int]) -> set[int]:
    """Which of these are the uploader's post media, not failed, unexpired and not yet used."""
    from django.utils import timezone

    from media.models import MediaStatus

    return set(
        Media.objects.using(alias_for_id(uploader_id))
        .filter(
            id__in=list(media_ids),
            uploader_id=uploader_id,
            kind=MediaKind.POST,
            attached_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .exclude(status=MediaStatus.FAILED)
        .values_list("id", flat=True)
    )


def media_all_ready(*, using: str, media_ids: list[int]) -> bool:
    from media.models import MediaStatus

    ready = Media.objects.using(using).filter(id__in=media_ids, status=MediaStatus.READY).count()
    return ready == len(media_ids)
