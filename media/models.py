"""Uploaded media, on the uploader's shard (the ID carries that shard)."""

from __future__ import annotations

from django.db import models

from instagram.ids import ShardedIDField
from instagram.sharding import ShardedModel

MAX_REASON_LENGTH = 200


class MediaStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class MediaType(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"


class MediaKind(models.TextChoices):
    POST = "post", "Post or story"  # 8 variants: 1080/640/320/150, original aspect and square
    PROFILE = "profile", "Profile picture"  # 320 and 150 square


class StorageTier(models.TextChoices):
    HOT = "hot", "Hot"
    WARM = "warm", "Warm"
    COLD = "cold", "Cold"


class Media(ShardedModel):
    """One upload. Files live under `storage_prefix` (`{uploader_id}/{media_id}`); an exact
    duplicate of the uploader's earlier file shares that earlier upload's prefix, so the files
    are deleted only when no row points at them any more."""

    partition_key = "uploader_id"

    id = ShardedIDField()
    uploader_id = models.BigIntegerField()
    media_type = models.CharField(max_length=8, choices=MediaType.choices, default="image")
    kind = models.CharField(max_length=8, choices=MediaKind.choices, default=MediaKind.POST)
    status = models.CharField(
        max_length=12, choices=MediaStatus.choices, default=MediaStatus.PROCESSING
    )
    failure_reason = models.CharField(max_length=MAX_REASON_LENGTH, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)  # processing runs started
    filter_id = models.CharField(max_length=32, default="normal")
    storage_prefix = models.CharField(max_length=64, blank=True, default="")
    original_name = models.CharField(max_length=32, blank=True, default="")  # original.jpg ...
    source_format = models.CharField(max_length=8)  # jpeg | png | webp | heic
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    duplicate_of_id = models.BigIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)  # of the largest variant
    height = models.PositiveIntegerField(null=True, blank=True)
    source_width = models.PositiveIntegerField(null=True, blank=True)  # as displayed
    source_height = models.PositiveIntegerField(null=True, blank=True)
    variants = models.JSONField(default=dict, blank=True)  # name -> [width, height]
    blurhash = models.CharField(max_length=64, blank=True, default="")
    placeholder = models.CharField(max_length=2048, blank=True, default="")
    phash = models.BigIntegerField(null=True, blank=True)
    # 16-bit bands of the pHash: two hashes within Hamming distance 3 share at least one band,
    # so near-duplicate candidates come from four indexed equality lookups, not a scan.
    phash_band0 = models.IntegerField(null=True, blank=True)
    phash_band1 = models.IntegerField(null=True, blank=True)
    phash_band2 = models.IntegerField(null=True, blank=True)
    phash_band3 = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # null once attached
    attached_at = models.DateTimeField(null=True, blank=True)
    tier = models.CharField(max_length=4, choices=StorageTier.choices, default=StorageTier.HOT)
    access_count = models.BigIntegerField(default=0)
    last_accessed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "media"
        indexes = [
            models.Index(fields=["uploader_id", "sha256"], name="media_uploader_sha256"),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(attached_at__isnull=True),
                name="media_unattached_expiry",
            ),
            models.Index(fields=["storage_prefix"], name="media_storage_prefix"),
            models.Index(fields=["phash_band0"], name="media_phash_band0"),
            models.Index(fields=["phash_band1"], name="media_phash_band1"),
            models.Index(fields=["phash_band2"], name="media_phash_band2"),
            models.Index(fields=["phash_band3"], name="media_phash_band3"),
        ]

    def __str__(self) -> str:
        return f"media {self.id} ({self.status})"


class MediaNearDuplicate(ShardedModel):
    """A pair of perceptually near-identical uploads, kept on the newer upload's shard for
    moderation (reposts of someone else's photo, spam floods)."""

    partition_key = "uploader_id"

    id = ShardedIDField()
    uploader_id = models.BigIntegerField()
    media_id = models.BigIntegerField()
    other_media_id = models.BigIntegerField()
    other_uploader_id = models.BigIntegerField()
    distance = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["media_id", "other_media_id"], name="media_near_duplicate_once"
            )
        ]
        indexes = [models.Index(fields=["other_media_id"], name="media_near_dup_other")]

    def __str__(self) -> str:
        return f"{self.media_id} ~ {self.other_media_id} ({self.distance})"


class AccessFlush(ShardedModel):
    """A fold of Redis access counters applied to this shard's rows, written in the fold's own
    transaction: a fold run again (its run died before it could drop the Redis copy, or two
    runs overlapped) finds it here and adds nothing twice. Kept for a day."""

    batch = models.CharField(max_length=64, primary_key=True)
    applied_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"access flush {self.batch}"
