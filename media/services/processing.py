"""Rendering an upload (in a `media` worker, or inline for profile pictures) and its outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, cast

import orjson
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from instagram.errors import ApiError
from instagram.outbox import outbox_enqueue, outbox_handler
from instagram.sharding import alias_for_id, shard_aliases
from media import storage
from media.hashes import hamming_distance
from media.models import MAX_REASON_LENGTH, Media, MediaKind, MediaNearDuplicate, MediaStatus
from media.processing import POST_VARIANTS, PROFILE_VARIANTS, Rendered, render
from media.services.upload import MediaEvent, media_create_from_upload
from media.validation import KINDS, ImageRejected

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

    from accounts.models import User

logger = logging.getLogger(__name__)

NEAR_DUPLICATE_CANDIDATES = 200

# Called with `media_ids` (the row and its exact duplicates) once they are ready or failed:
# posts publish a post whose media were still processing, for example. They run after commit,
# through the outbox, so a worker that dies in between loses nothing: hooks must be idempotent.
media_processed_hooks: list[Callable[..., None]] = []


def _after_processed(*, alias: str, media: Media) -> None:
    ids = list(
        Media.objects.using(alias)
        .filter(Q(id=media.id) | Q(duplicate_of_id=media.id))
        .values_list("id", flat=True)
    )
    outbox_enqueue(
        partition_id=media.id,
        kind=MediaEvent.PROCESSED,
        payload={"media_ids": ids},
        apply_here=True,
    )


@outbox_handler(MediaEvent.PROCESSED)
def _processed_apply(payload: dict) -> None:
    for hook in media_processed_hooks:
        hook(media_ids=payload["media_ids"])


@outbox_handler(MediaEvent.UPLOADED)
def _uploaded_apply(payload: dict) -> None:
    from media.tasks import media_process_task

    media_process_task.apply_async(args=(payload["media_id"],))


def media_process(*, media_id: int) -> Media | None:
    """Render a `processing` upload and mark it (and its exact duplicates) ready or failed.

    Safe to run twice: anything but a `processing` row is left alone, files are written under
    fixed names, and the final update only moves rows still `processing`. A row that keeps
    killing its worker (out of memory, a crash in a codec) fails after
    MEDIA_PROCESS_MAX_ATTEMPTS instead of being redelivered forever.
    """
    alias = alias_for_id(media_id)
    claimed = (
        Media.objects.using(alias)
        .filter(id=media_id, status=MediaStatus.PROCESSING, duplicate_of_id__isnull=True)
        .update(attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    media = Media.objects.using(alias).get(id=media_id)
    if media.attempts > settings.MEDIA_PROCESS_MAX_ATTEMPTS:
        return media_fail(media_id=media_id, reason="The image could not be processed.")
    variants = PROFILE_VARIANTS if media.kind == MediaKind.PROFILE else POST_VARIANTS
    store = storage.media_storage()
    try:
        with store.open(f"{media.storage_prefix}/{media.original_name}") as fp:
            rendered = render(
                cast(BinaryIO, fp),
                KINDS[media.source_format],
                variants=variants,
                filter_id=media.filter_id,
                max_pixels=settings.MEDIA_MAX_PIXELS,
                quality=settings.MEDIA_JPEG_QUALITY,
            )
    except FileNotFoundError:
        return media_fail(media_id=media_id, reason="The uploaded file is missing.")
    except ImageRejected as exc:
        return media_fail(media_id=media_id, reason=exc.message)
    except MemoryError:
        return media_fail(media_id=media_id, reason="The image is too large to process.")

    for variant in rendered.variants:
        store.save(f"{media.storage_prefix}/{variant.name}.jpg", ContentFile(variant.data))
    store.save(
        f"{media.storage_prefix}/metadata.json", ContentFile(_metadata_json(media, rendered))
    )
    bands = _bands(rendered.phash)
    with transaction.atomic(using=alias):
        _source_lock(alias, media_id)
        Media.objects.using(alias).filter(
            storage_prefix=media.storage_prefix, status=MediaStatus.PROCESSING
        ).update(
            status=MediaStatus.READY,
            width=rendered.width,
            height=rendered.height,
            source_width=rendered.source_width,
            source_height=rendered.source_height,
            variants={v.name: [v.width, v.height] for v in rendered.variants},
            blurhash=rendered.blurhash,
            placeholder=rendered.placeholder,
            phash=rendered.phash,
            phash_band0=bands[0],
            phash_band1=bands[1],
            phash_band2=bands[2],
            phash_band3=bands[3],
            processed_at=timezone.now(),
        )
        media.refresh_from_db(using=alias)
        if media.kind == MediaKind.POST:
            media_near_duplicates_record(media=media)
        _after_processed(alias=alias, media=media)
    return media


def _source_lock(alias: str, media_id: int) -> None:
    """Lock an upload before marking it and its duplicates final: a duplicate being made locks
    it too (`_duplicate_source`), so the marking, a statement run once the lock is held, sees
    every duplicate committed meanwhile."""
    list(Media.objects.using(alias).select_for_update().filter(id=media_id).values_list("id"))


def media_fail(*, media_id: int, reason: str) -> Media | None:
    """Mark a `processing` upload (and its exact duplicates) failed with a reason."""
    alias = alias_for_id(media_id)
    media = Media.objects.using(alias).filter(id=media_id).first()
    if media is None:
        return None
    logger.info("media %s failed: %s", media_id, reason)
    with transaction.atomic(using=alias):
        _source_lock(alias, media_id)
        Media.objects.using(alias).filter(
            Q(id=media_id) | Q(duplicate_of_id=media_id), status=MediaStatus.PROCESSING
        ).update(
            status=MediaStatus.FAILED,
            failure_reason=reason[:MAX_REASON_LENGTH],
            processed_at=timezone.now(),
        )
        media.refresh_from_db(using=alias)
        _after_processed(alias=alias, media=media)
    return media


def _bands(phash: int) -> list[int]:
    unsigned = phash & ((1 << 64) - 1)
    return [(unsigned >> (48 - 16 * i)) & 0xFFFF for i in range(4)]


def _metadata_json(media: Media, rendered: Rendered) -> bytes:
    """What is public about the files: sizes, filter and hashes; never EXIF."""
    return orjson.dumps(
        {
            "media_id": str(media.id),
            "width": rendered.width,
            "height": rendered.height,
            "source_width": rendered.source_width,
            "source_height": rendered.source_height,
            "source_format": media.source_format,
            "filter_id": media.filter_id,
            "variants": {v.name: {"width": v.width, "height": v.height} for v in rendered.variants},
            "phash": f"{rendered.phash & ((1 << 64) - 1):016x}",
            "blurhash": rendered.blurhash,
        },
        option=orjson.OPT_INDENT_2,
    )


def media_near_duplicates_record(*, media: Media) -> list[MediaNearDuplicate]:
    """Record earlier uploads (any user, any shard) within the pHash distance setting.

    Candidates share at least one 16-bit band with the new hash (complete up to distance 3,
    most matches beyond), one indexed query per shard; the exact distance decides.
    """
    if media.phash is None:
        return []
    bands = _bands(media.phash)
    match = (
        Q(phash_band0=bands[0])
        | Q(phash_band1=bands[1])
        | Q(phash_band2=bands[2])
        | Q(phash_band3=bands[3])
    )
    limit = settings.MEDIA_NEAR_DUPLICATE_DISTANCE
    found = []
    for alias in shard_aliases():
        candidates = (
            Media.objects.using(alias)
            .filter(match, status=MediaStatus.READY, kind=MediaKind.POST)
            .exclude(storage_prefix=media.storage_prefix)
            .order_by("-id")
            .values_list("id", "uploader_id", "phash")[:NEAR_DUPLICATE_CANDIDATES]
        )
        for other_id, other_uploader_id, other_phash in candidates:
            distance = hamming_distance(cast(int, media.phash), cast(int, other_phash))
            if distance <= limit:
                found.append(
                    MediaNearDuplicate(
                        uploader_id=media.uploader_id,
                        media_id=media.id,
                        other_media_id=other_id,
                        other_uploader_id=other_uploader_id,
                        distance=distance,
                        created_at=timezone.now(),
                    )
                )
    alias = alias_for_id(media.uploader_id)
    return MediaNearDuplicate.objects.using(alias).bulk_create(found, ignore_conflicts=True)


def profile_picture_create(*, user: User, file: UploadedFile) -> Media:
    """A profile picture from an upload: the same validation and pipeline, rendered at once
    (320 and 150 square), so the caller can show it in its answer. Returns a `ready` row that
    expires like any upload until the caller sets it on the user and then calls
    `profile_picture_attach` (the expiry sweep also attaches one a user points at); a file that
    cannot be rendered is a 400 and leaves nothing behind."""
    from media.services.lifecycle import media_delete

    media = media_create_from_upload(
        uploader_id=user.id, file=file, kind=MediaKind.PROFILE, filter_id="normal"
    )
    if media.status == MediaStatus.PROCESSING:
        # Rendered now, or its source if it is a duplicate of one still processing (another
        # request's, or one whose request died mid-render): its answer shows the picture.
        try:
            media_process(media_id=media.duplicate_of_id or media.id)
        except BaseException:
            media_delete(media=media)
            raise
        media.refresh_from_db(using=alias_for_id(media.uploader_id))
    if media.status != MediaStatus.READY:
        media_delete(media=media)
        raise ApiError(
            400, "invalid_image", media.failure_reason or "The image could not be processed."
        )
    return media
