"""Attachment, expiry, deletion, access counting and storage tiers."""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from redis.exceptions import RedisError

from instagram.errors import ApiError
from instagram.outbox import outbox_enqueue, outbox_handler
from instagram.redis import get_redis
from instagram.sharding import alias_for_id, group_by_alias, shard_aliases
from media import storage
from media.models import Media, MediaKind, MediaStatus, StorageTier
from media.services.upload import MediaEvent

logger = logging.getLogger(__name__)

EXPIRE_BATCH = 500


def media_mark_attached(*, uploader_id: int, media_ids: Iterable[int]) -> list[Media]:
    """Attach the uploader's own, unexpired, not failed, not yet attached uploads (stops their
    expiry); an upload serves one post or story, so two concurrent posts cannot share it.

    Call it inside the post's or story's transaction on the uploader's shard (the author's):
    the rows are locked, and a 400 `invalid_media` rolls the whole write back.
    """
    ids = {int(media_id) for media_id in media_ids}
    alias = alias_for_id(uploader_id)
    now = timezone.now()
    with transaction.atomic(using=alias):
        rows = list(
            Media.objects.using(alias)
            .select_for_update()
            .filter(id__in=ids, uploader_id=uploader_id, kind=MediaKind.POST)
            .exclude(status=MediaStatus.FAILED)
            .filter(attached_at__isnull=True, expires_at__gt=now)
            .order_by("id")
        )
        if len(rows) != len(ids):
            raise ApiError(400, "invalid_media", "A media id is expired, unknown or not yours.")
        Media.objects.using(alias).filter(id__in=ids).update(
            attached_at=Coalesce("attached_at", Value(now)), expires_at=None
        )
    for row in rows:
        row.attached_at = row.attached_at or now
        row.expires_at = None
    return rows


def media_release(*, uploader_id: int, media_ids: Iterable[int]) -> int:
    """The post or story no longer uses these uploads: the expiry sweep deletes them once
    MEDIA_RELEASE_GRACE_SECONDS have passed (so a deleted post can still be restored)."""
    alias = alias_for_id(uploader_id)
    expires = timezone.now() + dt.timedelta(seconds=settings.MEDIA_RELEASE_GRACE_SECONDS)
    return (
        Media.objects.using(alias)
        .filter(id__in={int(media_id) for media_id in media_ids}, uploader_id=uploader_id)
        .update(attached_at=None, expires_at=expires)
    )


def _sharing_locked(alias: str, prefix: str) -> list[int]:
    """The rows whose files are these (exact duplicates share them), locked in ID order until
    the caller's transaction ends: two deletes of two of them take turns, so the second sees
    the first gone. (Were both to see the other, both rows would go and the files stay for
    good, named by no row.)"""
    if not prefix:
        return []
    return list(
        Media.objects.using(alias)
        .select_for_update()
        .filter(storage_prefix=prefix)
        .order_by("id")
        .values_list("id", flat=True)
    )


def media_delete(*, media: Media) -> None:
    """Delete the row, and its files unless an exact duplicate still points at them."""
    alias = alias_for_id(media.uploader_id)
    with transaction.atomic(using=alias):
        shared = any(i != media.id for i in _sharing_locked(alias, media.storage_prefix))
        if media.storage_prefix and not shared:
            storage.delete_prefix(media.storage_prefix)
        Media.objects.using(alias).filter(id=media.id).delete()


def media_expire(*, now: dt.datetime | None = None, batch: int = EXPIRE_BATCH) -> int:
    """Delete uploads never attached within their TTL (rows and files), every shard."""
    now = now or timezone.now()
    deleted = 0
    for alias in shard_aliases():
        expired = (
            Media.objects.using(alias)
            .filter(attached_at__isnull=True, expires_at__lte=now)
            .order_by("expires_at")[:batch]
        )
        for media in expired:
            try:
                deleted += _expired_delete(alias, media.id, media.storage_prefix, now)
            except Exception:  # one failing file must not stop the sweep; retried next run
                logger.exception("could not delete expired media %s", media.id)
    return deleted


def _expired_delete(alias: str, media_id: int, prefix: str, now: dt.datetime) -> int:
    """Delete one upload if it is still expired, under its row lock: an attach that locked it
    first wins (it is no longer expired once that commits), and one that comes after finds it
    gone. A file that cannot be deleted keeps the row, for the next run. The rows sharing its
    files are locked first, in the order `media_delete` locks them (two sweeps deleting two
    duplicates would otherwise each hold one and wait for the other)."""
    with transaction.atomic(using=alias):
        _sharing_locked(alias, prefix)
        media = (
            Media.objects.using(alias)
            .select_for_update()
            .filter(id=media_id, attached_at__isnull=True, expires_at__lte=now)
            .first()
        )
        if media is None:
            return 0
        if media.kind == MediaKind.PROFILE and _profile_picture_in_use(media.id):
            # Set on its user, but the request died before it was attached: attach it now.
            profile_picture_attach(uploader_id=media.uploader_id, media_id=media.id)
            return 0
        media_delete(media=media)
    return 1


def profile_picture_release_later(*, uploader_id: int, media_id: int) -> None:
    """A net for a profile picture being replaced: written (on the uploader's shard) before the
    switch commits on another database, and applied by the outbox sweep once NET_GRACE has
    passed, it releases the old picture if no user points at it then. So a process that dies
    between the switch and the release leaves no picture attached for good; a switch that
    never commits leaves the picture in use, and the net does nothing."""
    with transaction.atomic(using=alias_for_id(uploader_id)):
        outbox_enqueue(
            partition_id=uploader_id,
            kind=MediaEvent.PROFILE_REPLACED,
            payload={"uploader_id": uploader_id, "media_id": media_id},
            relay=False,
        )


@outbox_handler(MediaEvent.PROFILE_REPLACED)
def _profile_replaced_apply(payload: dict) -> None:
    media_id = payload["media_id"]
    if not _profile_picture_in_use(media_id):
        Media.objects.using(alias_for_id(payload["uploader_id"])).filter(
            id=media_id, attached_at__isnull=False
        ).update(
            attached_at=None,
            expires_at=timezone.now() + dt.timedelta(seconds=settings.MEDIA_RELEASE_GRACE_SECONDS),
        )


def _profile_picture_in_use(media_id: int) -> bool:
    from accounts.models import User

    return User.objects.filter(profile_pic_media_id=media_id).exists()


def profile_picture_attach(*, uploader_id: int, media_id: int) -> None:
    """The picture is set on its user (committed): it no longer expires."""
    Media.objects.using(alias_for_id(uploader_id)).filter(
        id=media_id, uploader_id=uploader_id, kind=MediaKind.PROFILE
    ).update(attached_at=Coalesce("attached_at", Value(timezone.now())), expires_at=None)


def _access_key(alias: str) -> str:
    return f"media:access:{{{alias}}}"  # hash tag: the key and its flush copy share a slot


def media_access_record(*, media_ids: Iterable[int], weight: int = 1) -> None:
    """Count views of media (cheap: one Redis pipeline); folded into rows by the tier task."""
    grouped = group_by_alias(int(media_id) for media_id in media_ids)
    if not grouped:
        return
    pipe = get_redis().pipeline(transaction=False)
    for alias, ids in grouped.items():
        for media_id in ids:
            pipe.hincrby(_access_key(alias), str(media_id), weight)
    pipe.execute()


def media_views_count(media_ids: Iterable[int]) -> None:
    """Views of media shown in an answer, for the tier policy: one answer in MEDIA_VIEW_SAMPLE
    is counted, as that many views each (a Redis round trip on every read would cost the hot
    lists more than the tiers are worth; the policy's thresholds are in the hundreds). Never
    fails the read that calls it."""
    sample = settings.MEDIA_VIEW_SAMPLE
    if sample <= 0 or (sample > 1 and random.randrange(sample)):  # noqa: S311 (a sample)
        return
    try:
        media_access_record(media_ids=media_ids, weight=sample)
    except RedisError:
        logger.warning("media views not counted", exc_info=True)


# Takes the live counters as the shard's flush copy (unless a copy is left by a run that died),
# names the copy's batch once, and returns the copy.
_FLUSH_TAKE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
    redis.call('RENAME', KEYS[1], KEYS[2])
end
redis.call('HSETNX', KEYS[2], '_batch', ARGV[1])
return redis.call('HGETALL', KEYS[2])
"""
# Drops the flush copy if it is still the batch this run applied.
_FLUSH_DROP_LUA = """
if redis.call('HGET', KEYS[1], '_batch') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
ACCESS_FLUSH_KEEP = dt.timedelta(days=1)


def media_access_flush(*, now: dt.datetime | None = None) -> int:
    """Move the Redis access counters into the rows, per shard: one transaction that also
    records the batch (AccessFlush), so a batch is added once however often it is run again,
    one UPDATE per 1000 rows. Returns how many rows were updated."""
    now = now or timezone.now()
    client = get_redis()
    take, drop = client.register_script(_FLUSH_TAKE_LUA), client.register_script(_FLUSH_DROP_LUA)
    updated = 0
    # Per shard, a copy left by a run that died first, then the live counters.
    for alias in [alias for alias in shard_aliases() for _ in range(2)]:
        key, flushing = _access_key(alias), _access_key(alias) + ":flushing"
        fields = take(keys=[key, flushing], args=[uuid.uuid4().hex])
        if not fields:
            continue
        copy = dict(zip(fields[::2], fields[1::2], strict=True))
        batch = copy.pop(b"_batch").decode()
        counts = sorted((int(k), int(v)) for k, v in copy.items())
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                "INSERT INTO media_accessflush (batch, applied_at) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING batch",
                [batch, now],
            )
            if cursor.fetchone() is not None:  # else applied already (and committed)
                for start in range(0, len(counts), 1000):
                    chunk = counts[start : start + 1000]
                    # Locked in ID order first, as every other writer of several rows locks
                    # them (the expiry sweep, an attach): an UPDATE ... FROM locks in the order
                    # of its plan, and two such writers could deadlock.
                    cursor.execute(
                        "SELECT 1 FROM media_media WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                        [[media_id for media_id, _ in chunk]],
                    )
                    values = ", ".join(["(%s::bigint, %s::bigint)"] * len(chunk))
                    params = [item for pair in chunk for item in pair]
                    cursor.execute(
                        "UPDATE media_media AS m SET access_count = m.access_count + v.n, "
                        f"last_accessed_at = %s FROM (VALUES {values}) AS v(id, n) "
                        "WHERE m.id = v.id",
                        [now, *params],
                    )
                    updated += cursor.rowcount
            cursor.execute(
                "DELETE FROM media_accessflush WHERE applied_at < %s", [now - ACCESS_FLUSH_KEEP]
            )
        drop(keys=[flushing], args=[batch])
    return updated


def _tier_targets(alias: str, now: dt.datetime) -> dict[str, QuerySet[Media]]:
    policy = settings.MEDIA_TIER_POLICY
    warm_before = now - dt.timedelta(days=policy["warm_after_days"])
    cold_before = now - dt.timedelta(days=policy["cold_after_days"])
    is_cold = Q(created_at__lt=cold_before, access_count__lt=policy["warm_min_accesses"])
    is_warm = Q(created_at__lt=warm_before, access_count__lt=policy["hot_min_accesses"])
    live = Media.objects.using(alias).filter(status=MediaStatus.READY, attached_at__isnull=False)
    # Exact duplicates share their files, which take the hottest tier any of them needs (else
    # each run would move them one way for one row and back for the other).
    needs_warm = live.exclude(is_cold).values("storage_prefix")
    needs_hot = live.exclude(is_warm).values("storage_prefix")
    return {
        StorageTier.COLD: live.filter(is_cold)
        .exclude(tier=StorageTier.COLD)
        .exclude(storage_prefix__in=needs_warm),
        StorageTier.WARM: live.filter(is_warm, storage_prefix__in=needs_warm)
        .exclude(tier=StorageTier.WARM)
        .exclude(storage_prefix__in=needs_hot),
        StorageTier.HOT: live.filter(storage_prefix__in=needs_hot).exclude(tier=StorageTier.HOT),
    }


def media_tier_apply(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Move media between hot, warm and cold by age and access count (MEDIA_TIER_POLICY).

    On S3 a tier is the storage class of every file of the upload (MEDIA_S3_STORAGE_CLASSES);
    locally only the row records it. Returns how many uploads moved to each tier.
    """
    now = now or timezone.now()
    media_access_flush(now=now)
    moved = {tier.value: 0 for tier in StorageTier}
    batch = settings.MEDIA_TIER_POLICY["batch"]
    for alias in shard_aliases():
        for tier, queryset in _tier_targets(alias, now).items():
            moved_files: set[str] = set()  # exact duplicates: their shared files move once
            for media in queryset.order_by("id")[:batch]:
                if media.storage_prefix in moved_files:
                    continue
                moved_files.add(media.storage_prefix)
                names = [f"{media.storage_prefix}/{name}.jpg" for name in media.variants]
                names += [
                    f"{media.storage_prefix}/{media.original_name}",
                    f"{media.storage_prefix}/metadata.json",
                ]
                storage.set_storage_class(names, settings.MEDIA_S3_STORAGE_CLASSES[tier])
                Media.objects.using(alias).filter(storage_prefix=media.storage_prefix).update(
                    tier=tier
                )
                moved[tier] += 1
    return moved
