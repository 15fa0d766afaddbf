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
from media.services import (
    lifecycle,
    media_access_flush,
    media_access_record,
    media_expire,
    media_mark_attached,
    media_process,
    media_release,
)
from tests.locks import lock_waiters, own_connections
from tests.media import images
from tests.media.conftest import media_rows, stored_files, upload

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


def _sweep_order(alias: str, now) -> list[int]:
    """The rows in the order a sweep at `now` takes them (its own query)."""
    return list(
        Media.objects.using(alias)
        .filter(attached_at__isnull=True, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[: lifecycle.EXPIRE_BATCH]
    )


def test_two_sweeps_at_once_never_leave_files_no_row_names(
    authed, user, media_root, redis_client, monkeypatch
):
    earlier = int(upload(authed, images.flat((1, 2, 3))).json()["media_id"])
    data = images.encode(images.textured(12), "JPEG")
    first = int(upload(authed, data).json()["media_id"])
    media_process(media_id=earlier)
    media_process(media_id=first)
    second = int(upload(authed, data).json()["media_id"])  # an exact duplicate: same files
    alias = alias_for_id(first)
    assert Media.objects.using(alias).get(id=second).duplicate_of_id == first
    # One post with both, deleted: released by one UPDATE, so both expire at the same instant.
    media_mark_attached(uploader_id=user.id, media_ids=[first, second])
    media_release(uploader_id=user.id, media_ids=[first, second])
    late = timezone.now() + dt.timedelta(days=8)

    # The first sweep and the second both check whether the files are still shared while the
    # other's delete is not yet committed (the wait lets the other get there, or gives up at
    # once when the other waits for a lock, as it does when the two take turns).
    checked: list[int] = []
    real_delete = lifecycle.media_delete

    def delete_then_wait_for_the_other(*, media):
        real_delete(media=media)
        if media.id in (first, second):
            checked.append(media.id)
            deadline = time.monotonic() + 5
            while len(checked) < 2 and lock_waiters(alias) == 0:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)

    monkeypatch.setattr(lifecycle, "media_delete", delete_then_wait_for_the_other)

    # An attach of `earlier` in progress holds its row: the first sweep lists, then waits.
    attaching = connections.create_connection(alias)
    attaching.set_autocommit(False)
    try:
        with attaching.cursor() as cursor:
            cursor.execute("SELECT 1 FROM media_media WHERE id = %s FOR UPDATE", [earlier])
        with ThreadPoolExecutor(2) as pool:
            before = _sweep_order(alias, late)
            sweep_1 = pool.submit(own_connections(lambda: media_expire(now=late)))
            _until(lambda: lock_waiters(alias) == 1, "the first sweep never waited")
            # Meanwhile the tier task folds a view of `first` into its row (a new row version).
            media_access_record(media_ids=[first])
            media_access_flush()
            after = _sweep_order(alias, late)
            sweep_2 = pool.submit(own_connections(lambda: media_expire(now=late)))
            _until(lambda: lock_waiters(alias) == 2, "the second sweep never waited")
            attaching.rollback()  # the attach failed: `earlier` is swept too
            swept = sweep_1.result(timeout=60) + sweep_2.result(timeout=60)
    finally:
        attaching.close()

    # The two duplicates tie on expires_at; ORDER BY expires_at alone leaves their order to
    # the physical row order, which the flush changed: the two sweeps took them in turn.
    assert (before, after) == ([earlier, first, second], [earlier, second, first])
    assert swept == 3
    assert media_rows() == []
    assert stored_files(media_root) == [], "files left that no row names (never deleted)"


def test_the_access_flush_locks_its_rows_in_id_order(redis_client):
    """An UPDATE ... FROM a list locks rows in the order of its plan (for thousands of rows, the
    table's): the flush must take them in ID order, as the sweep and an attach do."""
    from django.db import OperationalError

    ids = [k << 23 for k in range(1, 5001)]  # logical shard 0
    with connections["shard_0"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO media_media (id, uploader_id, media_type, kind, status, failure_reason,"
            " attempts, filter_id, storage_prefix, original_name, source_format, size_bytes,"
            " sha256, variants, blurhash, placeholder, created_at, tier, access_count)"
            " SELECT g, 1, 'photo', 'post', 'ready', '', 0, 'normal', 'p' || g, '', 'jpeg', 1,"
            " '', '{}', '', '', now(), 'hot', 0 FROM unnest(%s::int8[]) g",
            [ids],
        )
        # The first row moved to the end of the table, so the table's order is not ID order.
        cursor.execute("UPDATE media_media SET size_bytes = 2 WHERE id = %s", [ids[0]])
        cursor.execute("ANALYZE media_media")
    media_access_record(media_ids=ids[:1000])
    holder = connections.create_connection("shard_0")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT 1 FROM media_media WHERE id = %s FOR UPDATE", [ids[0]])
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            flush = pool.submit(own_connections(media_access_flush))
            _until(lambda: lock_waiters("shard_0") >= 1, "the flush never waited")
            # Waiting for the lowest ID, the flush must hold none above it.
            probe = connections.create_connection("shard_0")
            probe.set_autocommit(False)
            try:
                with probe.cursor() as cursor:
                    cursor.execute(
                        "SELECT 1 FROM media_media WHERE id = %s FOR UPDATE NOWAIT", [ids[500]]
                    )
                higher_row_free = True
            except OperationalError:
                higher_row_free = False
            finally:
                probe.rollback()
                probe.close()
            holder.rollback()
            flushed = flush.result(timeout=30)
    finally:
        holder.close()

    assert higher_row_free
    assert flushed == 1000
