"""Uploads: validate before any decode, store the original privately, create the row, enqueue."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from enum import StrEnum
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from instagram.errors import ApiError
from instagram.outbox import outbox_enqueue
from instagram.sharding import alias_for_id
from media import storage
from media.filters import DEFAULT_FILTER, FILTERS
from media.models import Media, MediaKind, MediaStatus, MediaType
from media.validation import ImageRejected, Inspection, inspect_image

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

    from accounts.models import User

logger = logging.getLogger(__name__)

# A duplicate never borrows the files of an upload about to expire (the sweep could delete them
# between our check and our insert).
DUPLICATE_EXPIRY_MARGIN = dt.timedelta(hours=1)


class MediaEvent(StrEnum):
    UPLOADED = "media.uploaded"  # stored: render it (a task on the `media` queue)
    PROCESSED = "media.processed"  # ready or failed, with its exact duplicates: tell the hooks
    PROFILE_REPLACED = "media.profile_replaced"  # release the old picture once none uses it


def media_upload(
    *, uploader: User, file: UploadedFile, media_type: str, filter_id: str | None = None
) -> Media:
    """A post/story upload: stored, row `processing`, variants rendered by a `media` worker."""
    if media_type not in MediaType.values:
        raise ApiError(400, "invalid_media_type", "media_type must be 'image' or 'video'.")
    if media_type != MediaType.IMAGE:  # a value the contract names, not bad input: unsupported
        raise ApiError(415, "unsupported_media_type", "Only image uploads are supported for now.")
    filter_id = filter_id or DEFAULT_FILTER
    if filter_id not in FILTERS:
        raise ApiError(400, "invalid_filter", f"Unknown filter_id {filter_id[:32]!r}.")
    return media_create_from_upload(
        uploader_id=uploader.id, file=file, kind=MediaKind.POST, filter_id=filter_id
    )


def media_create_from_upload(
    *, uploader_id: int, file: UploadedFile, kind: str, filter_id: str
) -> Media:
    """Validate, dedupe, store and enqueue: shared by posts, stories and profile pictures."""
    size = file.size or 0
    if size > settings.MEDIA_MAX_UPLOAD_BYTES:
        raise ApiError(413, "payload_too_large", f"The file is larger than {_megabytes()} MB.")
    fp = _binary(file)
    inspection = _inspect(fp, size)
    sha256 = getattr(file, "sha256", None) or _sha256(fp)
    alias = alias_for_id(uploader_id)
    now = timezone.now()

    with transaction.atomic(using=alias):
        source = _duplicate_source(
            alias=alias, uploader_id=uploader_id, sha256=sha256, kind=kind, filter_id=filter_id
        )
        media = Media(
            uploader_id=uploader_id,
            media_type=MediaType.IMAGE,
            kind=kind,
            filter_id=filter_id,
            source_format=inspection.kind.name,
            size_bytes=size,
            sha256=sha256,
            created_at=now,
        )
        # Unattached until used: a profile picture is attached once it is set on its user
        # (`profile_picture_attach`), so one whose request died before that expires too.
        media.expires_at = now + dt.timedelta(seconds=settings.MEDIA_UNATTACHED_TTL_SECONDS)
        if source is not None:
            _copy_rendition(source, media)
        media.save(using=alias)
        if source is None:  # where its files go (so an expiry finds them, whatever happens)
            media.storage_prefix = f"{uploader_id}/{media.id}"
            media.save(using=alias, update_fields=["storage_prefix"])
    if source is not None:
        return media

    # The file is written outside the transaction (no transaction is held open during a slow
    # S3 upload); a failure removes the row again, so nothing is left behind. Once the file is
    # stored, its name is recorded, and the rendering handed on through the outbox, in one
    # transaction before the upload answers: a broker that is down delays the rendering, and
    # never leaves an answered upload `processing` for good. Only then may an upload of the
    # same bytes take this one as its source (`_duplicate_source`): one that did earlier could
    # be left pointing at an upload whose request failed or died, and never be rendered.
    original_name = f"original.{inspection.kind.extension}"
    try:
        fp.seek(0)
        storage.media_storage().save(f"{media.storage_prefix}/{original_name}", fp)
        with transaction.atomic(using=alias):
            media.original_name = original_name
            media.save(using=alias, update_fields=["original_name"])
            if kind == MediaKind.POST:
                outbox_enqueue(
                    partition_id=media.id,
                    kind=MediaEvent.UPLOADED,
                    payload={"media_id": media.id},
                    apply_here=True,
                )
    except BaseException:
        # Unless it was handed on (what failed came after that commit: the hand-on itself, or
        # the process being stopped): it is then stored, and may be a duplicate's source.
        if not Media.objects.using(alias).filter(id=media.id).exclude(original_name="").exists():
            storage.delete_prefix(media.storage_prefix)
            Media.objects.using(alias).filter(id=media.id).delete()
        raise
    return media


def _megabytes() -> int:
    return settings.MEDIA_MAX_UPLOAD_BYTES // (1024 * 1024)


def _binary(file: UploadedFile) -> IO[bytes]:
    """The seekable binary stream behind an UploadedFile (its temporary file on disk)."""
    inner = getattr(file, "file", file)
    inner.seek(0)
    return inner


def _inspect(fp: IO[bytes], size: int) -> Inspection:
    try:
        return inspect_image(
            fp,
            size=size,
            max_pixels=settings.MEDIA_MAX_PIXELS,
            max_metadata_bytes=settings.MEDIA_MAX_METADATA_BYTES,
        )
    except ImageRejected as exc:
        raise ApiError(exc.status, exc.code, exc.message)


def _sha256(fp: IO[bytes]) -> str:
    fp.seek(0)
    digest = hashlib.sha256()
    while block := fp.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def _duplicate_source(
    *, alias: str, uploader_id: int, sha256: str, kind: str, filter_id: str
) -> Media | None:
    """The uploader's live earlier upload of the very same bytes, rendered the same way, whose
    file is stored (its name recorded, with its rendering handed on), locked until the
    duplicate commits: a worker finishing the source locks it before it marks
    the source's duplicates, so it either waits for this one and marks it too, or finishes
    first and this one copies the final state."""
    keep_until = timezone.now() + DUPLICATE_EXPIRY_MARGIN
    return (
        Media.objects.using(alias)
        .select_for_update()
        .filter(
            uploader_id=uploader_id,
            sha256=sha256,
            kind=kind,
            filter_id=filter_id,
            status__in=[MediaStatus.PROCESSING, MediaStatus.READY],
            duplicate_of_id__isnull=True,
        )
        .exclude(original_name="")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=keep_until))
        .order_by("id")
        .first()
    )


RENDITION_FIELDS = (
    "storage_prefix",
    "original_name",
    "status",
    "failure_reason",
    "width",
    "height",
    "source_width",
    "source_height",
    "variants",
    "blurhash",
    "placeholder",
    "phash",
    "phash_band0",
    "phash_band1",
    "phash_band2",
    "phash_band3",
    "processed_at",
    "tier",  # where the shared files are (a later move of them updates every row)
)


def _copy_rendition(source: Media, media: Media) -> None:
    """Point at the source's files; a still-processing source finishes both rows at once."""
    for field in RENDITION_FIELDS:
        setattr(media, field, getattr(source, field))
    media.duplicate_of_id = source.id
