import io
import itertools
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from instagram.sharding import shard_aliases
from media.models import Media
from tests.media import images

_usernames = itertools.count()


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_CDN_URL = ""
    return root


@pytest.fixture
def make_user():
    from accounts.models import User

    def make():
        return User.objects.create_user(username=f"m{next(_usernames)}", password="pw-12345678")

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def authed(client_for, user, media_root, redis_client):
    return client_for(user)


@pytest.fixture(scope="session")
def photo_12mp() -> bytes:
    return images.photo()


def upload(client, data: bytes, *, name="photo.jpg", media_type="image", filter_id=None):
    fields = {"file": SimpleUploadedFile(name, data, "image/jpeg"), "media_type": media_type}
    if filter_id is not None:
        fields["filter_id"] = filter_id
    return client.post("/api/v1/media/upload", fields, format="multipart")


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def media_rows() -> list[Media]:
    return [row for alias in shard_aliases() for row in Media.objects.using(alias).all()]


def open_image(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def jpeg_segments(data: bytes) -> list[int]:
    """The marker of every segment before the image data (APPn, COM, DQT, SOF...)."""
    assert data[:2] == b"\xff\xd8"
    position, markers = 2, []
    while True:
        marker = data[position + 1]
        markers.append(marker)
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            return markers
        position += 2 + length


@pytest.fixture
def shard_commits(django_capture_on_commit_callbacks):
    """`with shard_commits() as callbacks:` captures on-commit callbacks of every shard."""
    from contextlib import ExitStack, contextmanager

    @contextmanager
    def capture(execute=False):
        callbacks: list = []
        with ExitStack() as stack:
            lists = [
                stack.enter_context(django_capture_on_commit_callbacks(using=a, execute=execute))
                for a in shard_aliases()
            ]
            yield callbacks
        callbacks.extend(c for captured in lists for c in captured)

    return capture
