"""The media endpoints: who sees what, filters, rate limit, local serving headers."""

import pytest
from rest_framework.test import APIClient

from media.services import media_process
from tests.media import images
from tests.media.conftest import media_rows, stored_files, upload

ALL = "__all__"


@pytest.mark.django_db(databases=ALL)
def test_uploader_sees_the_media_ready_with_placeholder(authed, media_root, shard_commits):
    with shard_commits():
        media_id = upload(authed, images.webp(), filter_id="moon").json()["media_id"]
    media_process(media_id=int(media_id))

    response = authed.get(f"/api/v1/media/{media_id}")

    body = response.json()
    assert response.status_code == 200
    assert body["media_id"] == media_id
    assert body["status"] == "ready"
    assert (body["width"], body["height"]) == (800, 600)
    assert body["blur_placeholder"].startswith("data:image/jpeg;base64,")
    assert len(body["blurhash"]) == 28
    assert body["filter_id"] == "moon"
    assert "failure_reason" not in body


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize("path", ["{other}", "99999999999999999999", "abc", "-1", "0"])
def test_someone_elses_or_a_malformed_media_id_is_a_404(
    authed, make_user, client_for, media_root, shard_commits, path
):
    with shard_commits():
        other = upload(client_for(make_user()), images.small_jpeg()).json()["media_id"]

    response = authed.get(f"/api/v1/media/{path.format(other=other)}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.django_db(databases=ALL)
def test_filters_are_listed(authed):
    response = authed.get("/api/v1/media/filters")

    assert response.status_code == 200
    assert response.json() == {
        "filters": [
            {"filter_id": "normal", "name": "Normal"},
            {"filter_id": "clarendon", "name": "Clarendon"},
            {"filter_id": "gingham", "name": "Gingham"},
            {"filter_id": "juno", "name": "Juno"},
            {"filter_id": "lark", "name": "Lark"},
            {"filter_id": "moon", "name": "Moon"},
            {"filter_id": "reyes", "name": "Reyes"},
        ]
    }


@pytest.mark.django_db(databases=ALL)
def test_logged_out_upload_is_401_and_stores_nothing(media_root, redis_client):
    response = upload(APIClient(), images.small_jpeg())

    assert response.status_code == 401
    assert media_rows() == []
    assert stored_files(media_root) == []


@pytest.mark.django_db(databases=ALL)
def test_uploads_beyond_the_rate_limit_are_429_with_retry_after(authed, media_root, settings):
    settings.MEDIA_UPLOAD_RATE_LIMIT = 2

    statuses = [upload(authed, images.flat((i, 9, 9))).status_code for i in range(3)]
    refused = upload(authed, images.flat((7, 7, 7)))

    assert statuses == [200, 200, 429]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= settings.MEDIA_UPLOAD_RATE_WINDOW_SECONDS
    assert len(media_rows()) == 2


@pytest.mark.django_db(databases=ALL)
def test_variants_are_served_immutable_and_originals_never(authed, media_root, shard_commits):
    with shard_commits():
        body = upload(authed, images.small_jpeg()).json()
    media_process(media_id=int(body["media_id"]))
    prefix = body["urls"]["1080"].rsplit("/", 1)[0]

    variant = authed.get(body["urls"]["1080"])
    metadata = authed.get(f"{prefix}/metadata.json")
    original = authed.get(f"{prefix}/original.jpg")

    assert variant.status_code == 200
    assert variant["Cache-Control"] == "public, max-age=31536000, immutable"
    assert variant["Content-Type"] == "image/jpeg"
    assert metadata.status_code == 200
    assert b'"filter_id": "normal"' in b"".join(metadata.streaming_content)
    assert original.status_code == 404
    # Nor by any path that only resolves to it, by anyone.
    user_id, media_id = prefix.split("/")[-2:]
    for path in (
        f"{prefix}/original.jpg/",
        f"{prefix}/original.jpg/.",
        f"{prefix}/./original.jpg",
        f"{prefix}/../{media_id}/original.jpg",
        f"/media/{user_id}//{media_id}/original.jpg",
        f"{prefix}/ORIGINAL.jpg",
    ):
        assert authed.get(path).status_code == 404, path


@pytest.mark.django_db(databases=ALL)
def test_cdn_url_prefixes_every_url(authed, media_root, settings):
    settings.MEDIA_CDN_URL = "https://cdn.example.com/m/"

    body = upload(authed, images.small_jpeg()).json()

    assert body["urls"]["150"] == (
        f"https://cdn.example.com/m/{media_rows()[0].storage_prefix}/150.jpg"
    )


@pytest.mark.django_db(databases=ALL)
def test_admin_lists_media_per_shard_and_opens_a_row(
    authed, user, media_root, shard_commits, client
):
    from accounts.models import User

    with shard_commits():
        media_id = upload(authed, images.small_jpeg()).json()["media_id"]
    admin = User.objects.create_superuser(username="root", password="pw-12345678")
    client.force_login(admin)
    shard = media_rows()[0].shard_alias()

    listing = client.get(f"/admin/media/media/?shard={shard}")
    detail = client.get(f"/admin/media/media/{media_id}/change/")
    duplicates = client.get("/admin/media/medianearduplicate/")

    assert listing.status_code == 200
    assert media_id in listing.content.decode()
    assert detail.status_code == 200
    assert duplicates.status_code == 200


@pytest.mark.django_db(databases=ALL)
def test_only_uploads_count_against_the_upload_rate_limit(authed, media_root, settings):
    settings.MEDIA_UPLOAD_RATE_LIMIT = 2

    others = [
        authed.options("/api/v1/media/upload").status_code,  # a browser's CORS preflight
        authed.get("/api/v1/media/upload").status_code,
        authed.put("/api/v1/media/upload").status_code,
    ]
    uploads = [upload(authed, images.flat((i, 9, 9))).status_code for i in range(3)]

    assert others == [200, 405, 405]
    assert uploads == [200, 200, 429]
