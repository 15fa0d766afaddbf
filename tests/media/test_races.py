"""Uploads racing the worker and the expiry sweep, interleaved deterministically through row
locks (each side on a connection of its own)."""

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from instagram.sharding import alias_for_id
from media.models import Media
from media.services import media_expire, media_process
from tests.locks import lock_waiters, own_connections
from tests.media import images
from tests.media.conftest import stored_files, upload

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL, transaction=True)


def _get(media_id: int) -> Media:
    return Media.objects.using(alias_for_id(media_id)).get(id=media_id)


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_duplicate_made_while_the_worker_finishes_its_source_becomes_ready_with_it(
    authed, media_root, monkeypatch
):
    data = images.encode(images.textured(9), "JPEG")
    source = int(upload(authed, data).json()["media_id"])  # rendered by the test, below
    alias = alias_for_id(source)
    copied, go_on = threading.Event(), threading.Event()
    from media.services import upload as uploads

    real_copy = uploads._copy_rendition

    def copy_then_wait(src, media):  # the duplicate has read its source (`processing`)
        real_copy(src, media)
        copied.set()
        assert go_on.wait(30)

    monkeypatch.setattr(uploads, "_copy_rendition", copy_then_wait)
    with ThreadPoolExecutor(2) as pool:
        duplicate = pool.submit(own_connections(lambda: upload(authed, data)))
        assert copied.wait(30)
        worker = pool.submit(own_connections(lambda: media_process(media_id=source)))
        # The worker renders, then waits for the duplicate's lock on the source (or, were
        # there none, finishes before the duplicate is even saved).
        _until(lambda: worker.done() or lock_waiters(alias) == 1, "the worker never finished")
        go_on.set()
        second = int(duplicate.result().json()["media_id"])
        worker.result()

    assert (_get(source).status, _get(second).status) == ("ready", "ready")
    assert _get(second).duplicate_of_id == source


def test_the_expiry_sweep_leaves_an_upload_attached_while_it_ran(authed, media_root):
    media_id = int(upload(authed, images.flat((7, 8, 9))).json()["media_id"])
    media_process(media_id=media_id)
    alias = alias_for_id(media_id)
    files = stored_files(media_root)
    # A post attaching the upload holds its row (locked, attached, not yet committed) while a
    # sweep whose clock is past the upload's expiry runs.
    attaching = connections.create_connection(alias)
    attaching.set_autocommit(False)
    try:
        with attaching.cursor() as cursor:
            cursor.execute("SELECT 1 FROM media_media WHERE id = %s FOR UPDATE", [media_id])
            cursor.execute(
                "UPDATE media_media SET attached_at = now(), expires_at = NULL WHERE id = %s",
                [media_id],
            )
        with ThreadPoolExecutor(1) as pool:
            late = timezone.now() + dt.timedelta(days=2)
            sweep = pool.submit(own_connections(lambda: media_expire(now=late)))
            _until(lambda: lock_waiters(alias) == 1, "the sweep never waited for the row")
            attaching.commit()
            assert sweep.result() == 0
    finally:
        attaching.close()

    assert _get(media_id).attached_at is not None
    assert stored_files(media_root) == files


def _new_upload(user, data: bytes) -> Media:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from media.services import media_create_from_upload

    return media_create_from_upload(
        uploader_id=user.id,
        file=SimpleUploadedFile("p.jpg", data, "image/jpeg"),
        kind="post",
        filter_id="normal",
    )


def test_the_same_bytes_sent_while_the_first_upload_stores_its_file_are_an_upload_of_their_own(
    user, media_root, monkeypatch, settle
):
    """A double tap: the second request comes while the first stores its file, which then
    fails. The second must not take the first as its source (removed with its failure)."""
    from media import storage

    data = images.encode(images.textured(11), "JPEG")
    real = storage.media_storage()
    made: dict[str, Media] = {}

    class FailingOnce:
        def save(self, name, content):
            if made:
                return real.save(name, content)
            made["first"] = Media()  # the second request's own store goes through
            made["second"] = _new_upload(user, data)
            raise OSError("storage unavailable")

        def __getattr__(self, attr):
            return getattr(real, attr)

    monkeypatch.setattr(storage, "media_storage", lambda: FailingOnce())
    with pytest.raises(OSError):
        _new_upload(user, data)
    monkeypatch.undo()
    second = made["second"]
    settle()
    media_process(media_id=second.id)

    assert second.duplicate_of_id is None
    assert (_get(second.id).status, Media.objects.using(alias_for_id(second.id)).count()) == (
        "ready",
        1,
    )


def test_a_retry_of_an_upload_whose_request_died_before_handing_it_on_is_rendered(
    user, media_root, monkeypatch, settle
):
    from media.services import upload as uploads

    data = images.encode(images.textured(12), "JPEG")

    def killed(*args, **kwargs):
        raise SystemExit("killed")

    with monkeypatch.context() as patched:  # the process dies: no clean-up either
        patched.setattr(uploads, "outbox_enqueue", killed)
        patched.setattr(uploads.storage, "delete_prefix", killed)
        with pytest.raises(SystemExit):
            _new_upload(user, data)
    retry = _new_upload(user, data)
    settle()
    media_process(media_id=retry.id)

    assert retry.duplicate_of_id is None
    assert _get(retry.id).status == "ready"
