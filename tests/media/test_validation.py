"""Hostile and malformed uploads: each a 4xx in the error envelope, no row, no stored file."""

import pytest

from media.models import MediaStatus
from media.services import media_process
from tests.media import images
from tests.media.conftest import media_rows, stored_files, upload

ALL = "__all__"
MB = 1024 * 1024


def _big_jpeg() -> bytes:
    head = images.encode(images.halves((64, 64)), "JPEG")
    return head[:-2] + b"\x00" * (31 * MB) + b"\xff\xd9"


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize(
    ("name", "make", "fields", "status", "code"),
    [
        ("empty.jpg", lambda: b"", {}, 400, "invalid_image"),
        ("big.jpg", _big_jpeg, {}, 413, "payload_too_large"),
        ("notes.jpg", lambda: images.TEXT, {}, 415, "unsupported_media_type"),
        ("logo.svg", lambda: images.SVG, {}, 415, "unsupported_media_type"),
        ("doc.pdf", lambda: images.PDF, {}, 415, "unsupported_media_type"),
        ("art.eps", lambda: images.EPS, {}, 415, "unsupported_media_type"),
        ("anim.gif", images.gif_with_script, {}, 415, "unsupported_media_type"),
        ("scan.tiff", images.tiff, {}, 415, "unsupported_media_type"),
        ("layers.psd", images.psd_header, {}, 415, "unsupported_media_type"),
        ("bomb.png", images.png_bomb, {}, 400, "image_too_large"),
        ("cut.jpg", images.truncated_jpeg, {}, 400, "invalid_image"),
        ("exif.jpg", images.jpeg_with_huge_exif, {}, 400, "invalid_image"),
        ("page.png", images.png_html_polyglot, {}, 400, "invalid_image"),
        ("ok.jpg", images.small_jpeg, {"media_type": "gif"}, 400, "invalid_media_type"),
        ("ok.jpg", images.small_jpeg, {"media_type": "video"}, 415, "unsupported_media_type"),
        ("ok.jpg", images.small_jpeg, {"filter_id": "sepia-9000"}, 400, "invalid_filter"),
    ],
)
def test_bad_upload_is_refused_and_leaves_nothing_behind(
    authed, media_root, shard_commits, name, make, fields, status, code
):
    data = make()

    with shard_commits() as callbacks:
        response = upload(authed, data, name=name, **fields)

    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert media_rows() == []
    assert stored_files(media_root) == []
    assert callbacks == []


def test_the_bomb_is_tiny_and_refused_from_its_header_alone():
    import io

    from media.validation import ImageTooLarge, inspect_image

    data = images.png_bomb()

    with pytest.raises(ImageTooLarge):
        inspect_image(
            io.BytesIO(data), size=len(data), max_pixels=50_000_000, max_metadata_bytes=MB
        )
    assert len(data) < 400 * 1024


@pytest.mark.django_db(databases=ALL)
def test_content_is_sniffed_not_the_name_or_declared_type(authed, media_root):
    png_named_jpg = upload(authed, images.png_with_alpha(), name="photo.jpg")
    jpeg_named_png = upload(authed, images.small_jpeg(), name="photo.png")

    assert png_named_jpg.status_code == jpeg_named_png.status_code == 200
    assert sorted(row.source_format for row in media_rows()) == ["jpeg", "png"]
    assert sorted(path.rsplit("/", 1)[1] for path in stored_files(media_root)) == [
        "original.jpg",
        "original.png",
    ]


@pytest.mark.django_db(databases=ALL)
def test_missing_file_is_a_400(authed, media_root):
    response = authed.post("/api/v1/media/upload", {"media_type": "image"}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert media_rows() == []


@pytest.mark.django_db(databases=ALL)
def test_a_file_that_fails_in_the_worker_ends_failed_with_a_reason(
    authed, media_root, shard_commits
):
    with shard_commits():
        response = upload(authed, images.png_with_corrupt_pixels(), name="x.png")
    media_id = int(response.json()["media_id"])

    media = media_process(media_id=media_id)
    again = media_process(media_id=media_id)  # a redelivered task changes nothing
    shown = authed.get(f"/api/v1/media/{media_id}").json()

    assert response.status_code == 200
    assert media.status == MediaStatus.FAILED
    assert media.failure_reason == "The image could not be decoded."
    assert again is None
    assert shown["status"] == "failed"
    assert shown["failure_reason"] == "The image could not be decoded."
    assert [p.rsplit("/", 1)[1] for p in stored_files(media_root)] == ["original.png"]


@pytest.mark.django_db(databases=ALL)
def test_a_task_that_keeps_killing_its_worker_fails_instead_of_looping(
    authed, media_root, shard_commits, settings
):
    from media.models import Media

    settings.MEDIA_PROCESS_MAX_ATTEMPTS = 2
    with shard_commits():
        response = upload(authed, images.small_jpeg())
    media_id = int(response.json()["media_id"])
    row = media_rows()[0]
    # Two deliveries died mid-way (out of memory, killed): their attempts were counted.
    Media.objects.using(row.shard_alias()).filter(id=media_id).update(attempts=2)

    media = media_process(media_id=media_id)

    assert media.status == MediaStatus.FAILED
    assert media.failure_reason == "The image could not be processed."
    assert media.attempts == 3


@pytest.mark.django_db(databases=ALL)
def test_a_file_over_the_limit_is_cut_off_while_streaming(authed, media_root, settings):
    # Declared length passes the early check; the handler stops at the limit while reading.
    settings.MEDIA_MAX_UPLOAD_BYTES = 100_000
    data = _big_jpeg()[:150_000]

    response = upload(authed, data)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert media_rows() == []
    assert stored_files(media_root) == []


@pytest.mark.django_db(databases=ALL)
def test_infrastructure_errors_retry_a_bounded_number_of_times_then_fail(
    authed, media_root, shard_commits, monkeypatch
):
    from media import services
    from media.tasks import MAX_RETRIES, media_process_task

    with shard_commits():
        media_id = int(upload(authed, images.small_jpeg()).json()["media_id"])
    calls = []

    def storage_down(*, media_id):
        calls.append(media_id)
        raise ConnectionError("storage unreachable")

    monkeypatch.setattr(services, "media_process", storage_down)

    media_process_task.apply(args=[media_id])  # eager: retries run at once

    assert len(calls) == MAX_RETRIES + 1
    row = media_rows()[0]
    assert (row.status, row.failure_reason) == ("failed", "The image could not be processed.")
