"""Every write of the media app. Public entry points for other apps:

- `media_upload(*, uploader, file, media_type, filter_id)`: a post/story upload (API).
- `profile_picture_create(*, user, file)`: a profile picture, rendered at once (accounts);
  `profile_picture_attach(*, uploader_id, media_id)` once it is set on the user.
- `media_mark_attached(*, uploader_id, media_ids)`: a post/story uses them (stops expiry).
- `media_release(*, uploader_id, media_ids)`: no longer used; deleted by the next sweep.
- `media_access_record(*, media_ids)`: count views for storage tiering;
  `media_views_count(media_ids)`: the same, sampled, for the read paths.
- `media.services.processing.media_processed_hooks`: append `fn(*, media_ids)`; called after
  commit, through the outbox (so at least once: be idempotent), when an upload (and its exact
  duplicates) ends ready or failed.
Reads (URLs, the contract's media object, attachability) are in `media.selectors`.
"""

from media.services.lifecycle import (
    media_access_flush,
    media_access_record,
    media_delete,
    media_expire,
    media_mark_attached,
    media_release,
    media_tier_apply,
    media_views_count,
    profile_picture_attach,
)
from media.services.processing import (
    media_fail,
    media_near_duplicates_record,
    media_process,
    profile_picture_create,
)
from media.services.upload import media_create_from_upload, media_upload

__all__ = [
    "media_access_flush",
    "media_access_record",
    "media_create_from_upload",
    "media_delete",
    "media_expire",
    "media_fail",
    "media_mark_attached",
    "media_near_duplicates_record",
    "media_process",
    "media_release",
    "media_tier_apply",
    "media_upload",
    "media_views_count",
    "profile_picture_attach",
    "profile_picture_create",
]
