"""The S3 flavour of media storage (imported only when STORAGE_BACKEND=s3: boto3 is heavy)."""

from __future__ import annotations

from django.conf import settings
from storages.backends.s3 import S3Storage

from media.storage import cache_control_for, is_original


class MediaS3Storage(S3Storage):
    """Per-object headers: immutable caching for variants, a private ACL for originals."""

    def get_object_parameters(self, name: str) -> dict:
        params = super().get_object_parameters(name)
        params["CacheControl"] = cache_control_for(name)
        if name.endswith(".jpg"):
            params["ContentType"] = "image/jpeg"
        elif name.endswith(".json"):
            params["ContentType"] = "application/json"
        if is_original(name) and settings.MEDIA_S3_ORIGINAL_ACL:
            params["ACL"] = settings.MEDIA_S3_ORIGINAL_ACL
        return params

    def key(self, name: str) -> str:
        return self._normalize_name(name)

    def delete_many(self, names: list[str]) -> None:
        client = self.connection.meta.client
        for start in range(0, len(names), 1000):
            client.delete_objects(
                Bucket=self.bucket_name,
                Delete={"Objects": [{"Key": self.key(n)} for n in names[start : start + 1000]]},
            )

    def set_storage_class(self, names: list[str], storage_class: str) -> int:
        """A copy of each object onto itself in another storage class (headers kept)."""
        client = self.connection.meta.client
        moved = 0
        for name in names:
            key = self.key(name)
            try:
                client.copy_object(
                    Bucket=self.bucket_name,
                    Key=key,
                    CopySource={"Bucket": self.bucket_name, "Key": key},
                    StorageClass=storage_class,
                    MetadataDirective="COPY",
                )
            except client.exceptions.NoSuchKey:
                continue
            moved += 1
        return moved
