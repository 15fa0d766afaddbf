"""Where media files live: local filesystem (default) or S3-compatible, chosen by settings.

Layout: `{user_id}/{media_id}/original.{ext}` (private), `{variant}.jpg` and `metadata.json`.
Names are deterministic and written once, so a second write of the same name (a task run twice)
overwrites with identical bytes instead of inventing a new name.
"""

from __future__ import annotations

import os
import posixpath
from functools import lru_cache

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage

VARIANT_CACHE_CONTROL = "public, max-age=31536000, immutable"
METADATA_CACHE_CONTROL = "public, max-age=300"
ORIGINAL_CACHE_CONTROL = "private, no-store"
# S3 downloads larger than this spool to disk rather than memory in the worker.
S3_MAX_MEMORY_BYTES = 2 * 1024 * 1024


def is_original(name: str) -> bool:
    return posixpath.basename(name).startswith("original.")


def cache_control_for(name: str) -> str:
    if is_original(name):
        return ORIGINAL_CACHE_CONTROL
    if name.endswith(".jpg"):
        return VARIANT_CACHE_CONTROL
    return METADATA_CACHE_CONTROL


@lru_cache(maxsize=8)
def _build(backend: str, root: str, url: str, options: tuple) -> Storage:
    if backend == "s3":
        from media.s3 import MediaS3Storage  # boto3 is heavy: only loaded when used

        # Deterministic names are overwritten (no existence check per write).
        overrides = {"file_overwrite": True, "max_memory_size": S3_MAX_MEMORY_BYTES}
        return MediaS3Storage(**{**dict(options), **overrides})
    return FileSystemStorage(location=root, base_url=url, allow_overwrite=True)


def media_storage() -> Storage:
    """The storage for media, built from the current settings (cached per configuration)."""
    options = settings.STORAGES["default"].get("OPTIONS", {}) if _backend() == "s3" else {}
    return _build(
        _backend(),
        str(settings.MEDIA_ROOT),
        settings.MEDIA_URL,
        tuple(sorted(options.items())),
    )


def _backend() -> str:
    return settings.STORAGE_BACKEND


def public_url(name: str) -> str:
    """The final public URL of a stored name: behind MEDIA_CDN_URL when it is set.

    Names are `{digits}/{digits}/{variant}.jpg`, safe in a URL as they are, so the URL is the
    storage's base plus the name (a hot path: eight URLs per media item of every post shown).
    """
    options = repr(settings.STORAGES["default"].get("OPTIONS")) if _backend() == "s3" else ""
    return _url_base(settings.MEDIA_CDN_URL, _backend(), settings.MEDIA_URL, options) + name


@lru_cache(maxsize=8)
def _url_base(cdn_url: str, backend: str, media_url: str, options: str) -> str:
    if cdn_url:
        return cdn_url.rstrip("/") + "/"
    marker = "__base__"
    return media_storage().url(marker)[: -len(marker)]


def delete_prefix(prefix: str) -> int:
    """Delete every file under `{prefix}/`; returns how many. Idempotent."""
    storage = media_storage()
    try:
        _dirs, files = storage.listdir(prefix)
    except FileNotFoundError:
        return 0
    names = [f"{prefix}/{name}" for name in files]
    if hasattr(storage, "delete_many"):
        storage.delete_many(names)
    else:
        for name in names:
            storage.delete(name)
    if isinstance(storage, FileSystemStorage):
        _remove_empty_dirs(storage, prefix)
    return len(names)


def _remove_empty_dirs(storage: FileSystemStorage, prefix: str) -> None:
    path = storage.path(prefix)
    root = os.path.realpath(storage.location)
    while os.path.realpath(path) != root:
        try:
            os.rmdir(path)
        except OSError:
            return  # not empty (another upload of the user) or already gone
        path = os.path.dirname(path)


def set_storage_class(names: list[str], storage_class: str) -> int:
    """Move objects to an S3 storage class; a no-op for local storage."""
    storage = media_storage()
    if not hasattr(storage, "set_storage_class"):
        return 0
    return storage.set_storage_class(names, storage_class)
