"""The S3 backend for real: an S3-compatible server (moto in server mode) on 127.0.0.1."""

import datetime as dt
import socket

import boto3
import pytest
from django.utils import timezone

from instagram.sharding import alias_for_id
from media.models import Media
from media.services import (
    media_expire,
    media_mark_attached,
    media_process,
    media_release,
    media_tier_apply,
)
from tests.media import images
from tests.media.conftest import upload

ALL = "__all__"
BUCKET = "media-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, settings, redis_client, media_root):
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGE_BACKEND = "s3"
    settings.MEDIA_CDN_URL = "https://cdn.example.com"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "media.s3.MediaS3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_server,
                "region_name": "us-east-1",
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "default_acl": None,
                "querystring_auth": False,
            },
        },
    }
    yield client
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    for key in keys:
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.mark.django_db(databases=ALL)
def test_s3_upload_process_tier_and_expire(s3, authed, user, shard_commits):
    with shard_commits():
        body = upload(authed, images.jpeg_rotated_with_gps()).json()
    media_id = int(body["media_id"])
    prefix = f"{user.id}/{media_id}"
    stored_after_upload = _keys(s3)
    original_acl = s3.get_object_acl(Bucket=BUCKET, Key=f"{prefix}/original.jpg")

    media_process(media_id=media_id)

    variant = s3.head_object(Bucket=BUCKET, Key=f"{prefix}/1080.jpg")
    jpeg = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/320.jpg")["Body"].read()
    assert stored_after_upload == [f"{prefix}/original.jpg"]
    assert [g["Permission"] for g in original_acl["Grants"]] == ["FULL_CONTROL"]  # owner only
    assert body["urls"]["1080"] == f"https://cdn.example.com/{prefix}/1080.jpg"
    assert _keys(s3) == sorted(
        [f"{prefix}/{name}.jpg" for name in ("1080", "640", "320", "150")]
        + [f"{prefix}/{name}_square.jpg" for name in ("1080", "640", "320", "150")]
        + [f"{prefix}/original.jpg", f"{prefix}/metadata.json"]
    )
    assert variant["CacheControl"] == "public, max-age=31536000, immutable"
    assert variant["ContentType"] == "image/jpeg"
    assert b"SecretCam" not in jpeg and b"Exif" not in jpeg

    # Tiering moves every file of an old, rarely seen upload to the warm storage class.
    media_mark_attached(uploader_id=user.id, media_ids=[media_id])
    Media.objects.using(alias_for_id(media_id)).filter(id=media_id).update(
        created_at=timezone.now() - dt.timedelta(days=40)
    )
    moved = media_tier_apply()
    classes = {
        key: s3.head_object(Bucket=BUCKET, Key=key).get("StorageClass", "STANDARD")
        for key in _keys(s3)
    }
    after_tier = s3.head_object(Bucket=BUCKET, Key=f"{prefix}/1080.jpg")
    assert moved == {"hot": 0, "warm": 1, "cold": 0}
    assert set(classes.values()) == {"STANDARD_IA"}
    assert after_tier["CacheControl"] == "public, max-age=31536000, immutable"

    # Released and swept: no object is left behind.
    media_release(uploader_id=user.id, media_ids=[media_id])
    assert media_expire() == 0  # the release grace period
    assert media_expire(now=timezone.now() + dt.timedelta(days=7, seconds=1)) == 1
    assert _keys(s3) == []


@pytest.mark.django_db(databases=ALL)
def test_s3_refused_upload_leaves_no_object(s3, authed):
    response = upload(authed, images.truncated_jpeg())

    assert response.status_code == 400
    assert _keys(s3) == []
