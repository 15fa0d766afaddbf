"""A real Celery worker consuming the `media` queue renders an upload after commit."""

import time

import pytest

from instagram.celery import app as celery_app
from instagram.models import OutboxEvent, OutboxStatus
from instagram.sharding import alias_for_id
from media.models import Media
from tests.media import images
from tests.media.conftest import stored_files, upload


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_real_worker_on_the_media_queue_makes_the_upload_ready(authed, media_root):
    from celery.contrib.testing.worker import start_worker

    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # stale messages of earlier runs
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        queues=["media"],
        shutdown_timeout=30,
    ):
        body = upload(authed, images.jpeg_rotated_with_gps(), filter_id="clarendon").json()
        media_id = int(body["media_id"])
        media = Media.objects.using(alias_for_id(media_id))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if media.filter(id=media_id, status="ready").exists():
                break
            time.sleep(0.1)

    row = media.get(id=media_id)
    assert body["status"] == "processing"
    assert row.status == "ready"
    assert (row.width, row.height) == (1000, 1200)
    assert len([p for p in stored_files(media_root) if p.endswith("0.jpg") or "_sq" in p]) == 8
    assert authed.get(f"/api/v1/media/{media_id}").json()["status"] == "ready"


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_an_upload_made_while_the_broker_is_down_is_rendered_once_it_is_back(
    authed, media_root, broker_refusing, settle
):
    """The upload answers `processing` and its rendering waits in the outbox, not in a lost
    message: the sweep hands it to a real worker later."""
    from celery.contrib.testing.worker import start_worker

    from media.tasks import media_process_task

    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    with broker_refusing(media_process_task):
        body = upload(authed, images.jpeg_rotated_with_gps()).json()
    media_id = int(body["media_id"])
    media = Media.objects.using(alias_for_id(media_id))
    event = OutboxEvent.objects.using(alias_for_id(media_id)).get(kind="media.uploaded")
    waiting = (media.get(id=media_id).status, event.status, event.attempts, event.last_error)

    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, queues=["media"], shutdown_timeout=30
    ):
        settle()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if media.filter(id=media_id, status="ready").exists():
                break
            time.sleep(0.1)

    assert body["status"] == "processing"
    assert waiting == (
        "processing",
        OutboxStatus.PENDING,
        1,
        "OperationalError: Error 111 connecting to the broker. Connection refused.",
    )
    event.refresh_from_db()
    assert (event.status, event.attempts) == (OutboxStatus.DONE, 2)
    assert media.get(id=media_id).status == "ready"
    assert authed.get(f"/api/v1/media/{media_id}").json()["status"] == "ready"
