import datetime as dt
import io
import itertools
import socket
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services.auth import token_issue, user_counters_ensure
from instagram.outbox import outbox_sweep
from instagram.redis import get_redis, unreachable_forget
from tests.factories import id_on

ALL = "__all__"


@pytest.fixture(autouse=True)
def _redis_reachable():
    """No test inherits another's "Redis timed out moments ago"."""
    unreachable_forget()
    yield
    unreachable_forget()


@pytest.fixture
def redis_client():
    client = get_redis()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def queries():
    """Counts queries on every database: `with queries(4): ...` fails on any other number."""
    from contextlib import ExitStack, contextmanager

    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    @contextmanager
    def expect(count: int):
        with ExitStack() as stack:
            captured = {
                alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
                for alias in connections
            }
            yield captured
        executed = [(alias, q["sql"]) for alias, c in captured.items() for q in c.captured_queries]
        listing = "\n".join(f"{alias}: {sql}" for alias, sql in executed)
        assert len(executed) == count, f"{len(executed)} queries, expected {count}:\n{listing}"

    return expect


_sequence = itertools.count(1)


@pytest.fixture
def make_user():
    """A user on a chosen shard (deterministic query counts), with counters and a token."""

    def make(username: str, *, shard: str = "shard_0", private: bool = False, **fields) -> User:
        user = User.objects.create_user(
            id=id_on(shard, sequence=next(_sequence) % 1024),
            username=username,
            password="correct horse battery staple",
            is_private=private,
            **fields,
        )
        user_counters_ensure(user_id=user.id)
        user.token = token_issue(user=user).token
        return user

    return make


@pytest.fixture
def client_for():
    def client(user: User | None) -> APIClient:
        api = APIClient()
        if user is not None:
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {user.token}")
        return api

    return client


@pytest.fixture
def admin_client_all():
    """A browser signed in to the admin as a superuser."""
    from django.test import Client

    admin = User.objects.create_superuser(username="root", password="pw-admin-123456")
    browser = Client()
    browser.force_login(admin)
    return browser


BROKER_DOWN = "Error 111 connecting to the broker. Connection refused."


@pytest.fixture
def broker_refusing(monkeypatch):
    """`with broker_refusing(task):` sending `task` fails as with the broker down."""
    from contextlib import contextmanager

    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError(BROKER_DOWN)

    @contextmanager
    def refusing(task):
        with monkeypatch.context() as patched:
            patched.setattr(task, "apply_async", refuse)
            yield

    return refusing


@pytest.fixture
def settle():
    """Apply every pending outbox event, as the relay or the sweep would."""

    def run() -> int:
        total = 0
        while applied := outbox_sweep(now=timezone.now() + dt.timedelta(hours=1)):
            total += applied
        return total

    return run


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


@pytest.fixture
def silent_redis(settings):
    """A server that accepts connections and never answers, as REDIS_URL, with short timeouts;
    yields the list of connections it accepted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    settings.REDIS_SOCKET_TIMEOUT = settings.REDIS_CONNECT_TIMEOUT = 0.3
    settings.REDIS_UNREACHABLE_SECONDS = 1.0
    yield accepted
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
    server.close()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()


def accepted_count(accepted: list) -> int:
    """How many connections `silent_redis` accepted, once its accepting thread caught up."""
    time.sleep(0.1)
    return len(accepted)
