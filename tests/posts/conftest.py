import io
import itertools

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

_colour = itertools.count(1)


def jpeg_bytes(width: int = 400, height: int = 300) -> bytes:
    n = next(_colour)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)).save(
        buffer, "JPEG", quality=90
    )
    return buffer.getvalue()


@pytest.fixture
def media_for(settings, tmp_path):
    """Uploads through the real media pipeline; processed at once unless told otherwise."""
    from media.services.processing import media_process
    from media.services.upload import media_create_from_upload

    settings.MEDIA_ROOT = tmp_path / "media"

    def make(user, count: int = 1, *, process: bool = True) -> list[int]:
        ids = []
        for _ in range(count):
            upload = SimpleUploadedFile("p.jpg", jpeg_bytes(), content_type="image/jpeg")
            media = media_create_from_upload(
                uploader_id=user.id, file=upload, kind="post", filter_id="normal"
            )
            if process:
                media_process(media_id=media.id)
            ids.append(media.id)
        return ids

    return make


@pytest.fixture
def post_for(client_for, media_for):
    """A post through the API; returns its ID."""

    def make(user, caption: str = "", media: int = 1, **extra) -> int:
        media_ids = [str(i) for i in media_for(user, media)]
        response = client_for(user).post(
            "/api/v1/posts", {"media_ids": media_ids, "caption": caption, **extra}, format="json"
        )
        assert response.status_code == 201, response.json()
        return int(response.json()["post_id"])

    return make
