"""A real Celery worker consuming the `media` queue renders an upload after commit."""

import time

import pytest

from instagram.celery import app as celery_app
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
