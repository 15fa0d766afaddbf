"""Duplicates, near-duplicates, attachment, expiry, tiers and profile pictures."""

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from instagram.errors import ApiError
from instagram.models import OutboxEvent, OutboxStatus
from instagram.sharding import alias_for_id
from media import storage
from media.models import Media, MediaNearDuplicate, MediaStatus
from media.selectors import media_near_duplicates
from media.services import (
    media_access_record,
    media_expire,
    media_mark_attached,
    media_process,
    media_release,
    media_tier_apply,
    profile_picture_attach,
    profile_picture_create,
)
from tests.media import images
from tests.media.conftest import media_rows, open_image, stored_files, upload

ALL = "__all__"


def _upload_id(client, data, **fields) -> int:
    response = upload(client, data, **fields)
    assert response.status_code == 200, response.content
    return int(response.json()["media_id"])


def _get(media_id) -> Media:
    return Media.objects.using(alias_for_id(media_id)).get(id=media_id)


@pytest.mark.django_db(databases=ALL)
def test_exact_duplicate_reuses_the_stored_variants(authed, media_root, shard_commits):
    data = images.encode(images.textured(5), "JPEG")
    with shard_commits() as first_callbacks:
        first = _upload_id(authed, data)
    media_process(media_id=first)
    files = stored_files(media_root)

    with shard_commits() as second_callbacks:
        response = upload(authed, data, name="again.jpg")

    body = response.json()
    second = _get(int(body["media_id"]))
    assert len(first_callbacks) == 1
    assert second_callbacks == []  # nothing to render
    assert body["status"] == "ready"
    assert body["urls"] == upload_urls(first)
    assert second.duplicate_of_id == first
    assert second.storage_prefix == _get(first).storage_prefix
    assert stored_files(media_root) == files  # no second copy


def upload_urls(media_id):
    from media.selectors import media_urls

    return media_urls(_get(media_id))


@pytest.mark.django_db(databases=ALL)
def test_duplicate_of_an_upload_still_processing_becomes_ready_with_it(
    authed, media_root, shard_commits
):
    data = images.encode(images.textured(6), "JPEG")
    with shard_commits():
        first = _upload_id(authed, data)
        second = _upload_id(authed, data)

    media_process(media_id=second)  # a duplicate has nothing of its own to render
    assert _get(second).status == MediaStatus.PROCESSING
    media_process(media_id=first)

    assert (_get(first).status, _get(second).status) == ("ready", "ready")
    assert _get(second).variants == _get(first).variants


@pytest.mark.django_db(databases=ALL)
def test_same_file_with_another_filter_is_rendered_again(authed, media_root, shard_commits):
    data = images.encode(images.textured(7), "JPEG")
    with shard_commits():
        first = _upload_id(authed, data)
        second = _upload_id(authed, data, filter_id="moon")

    assert _get(second).duplicate_of_id is None
    assert _get(second).storage_prefix != _get(first).storage_prefix


@pytest.mark.django_db(databases=ALL)
def test_deleting_the_first_of_two_duplicates_keeps_the_files(authed, media_root, shard_commits):
    data = images.encode(images.textured(8), "JPEG")
    with shard_commits():
        first = _upload_id(authed, data)
    media_process(media_id=first)
    second = _upload_id(authed, data)
    media_mark_attached(uploader_id=_get(second).uploader_id, media_ids=[second])
    files = stored_files(media_root)

    expired = media_expire(now=timezone.now() + dt.timedelta(hours=25))

    assert expired == 1
    assert [row.id for row in media_rows()] == [second]
    assert stored_files(media_root) == files


@pytest.mark.django_db(databases=ALL)
def test_near_duplicates_across_users_are_recorded_for_moderation(
    authed, make_user, client_for, media_root, shard_commits
):
    picture = images.textured(9)
    tweaked = picture.copy()
    tweaked.paste((0, 0, 0), (10, 10, 30, 30))  # a small mark, recompressed
    other = client_for(make_user())
    with shard_commits():
        original_id = _upload_id(authed, images.encode(picture, "JPEG", quality=95))
        copy_id = _upload_id(other, images.encode(tweaked, "JPEG", quality=70))
        unrelated_id = _upload_id(other, images.encode(images.textured(10), "JPEG"))
    for media_id in (original_id, copy_id, unrelated_id):
        media_process(media_id=media_id)

    pairs = media_near_duplicates(media_id=original_id)

    assert [(p.media_id, p.other_media_id) for p in pairs] == [(copy_id, original_id)]
    assert pairs[0].other_uploader_id == _get(original_id).uploader_id
    assert pairs[0].distance <= 6
    assert media_near_duplicates(media_id=copy_id) == pairs
    assert media_near_duplicates(media_id=unrelated_id) == []
    assert sum(MediaNearDuplicate.objects.using(a).count() for a in ("shard_0", "shard_1")) == 1


@pytest.mark.django_db(databases=ALL)
def test_unattached_media_expires_after_24_hours_rows_and_files(
    authed, user, media_root, shard_commits
):
    with shard_commits():
        kept = _upload_id(authed, images.flat((1, 2, 3)))
        dropped = _upload_id(authed, images.flat((4, 5, 6)))
    media_process(media_id=kept)
    media_process(media_id=dropped)
    attached = media_mark_attached(uploader_id=user.id, media_ids=[kept])

    assert media_expire(now=timezone.now() + dt.timedelta(hours=23)) == 0
    assert media_expire(now=timezone.now() + dt.timedelta(hours=25)) == 1

    assert [m.id for m in attached] == [kept]
    assert [row.id for row in media_rows()] == [kept]
    assert {p.split("/")[1] for p in stored_files(media_root)} == {str(kept)}
    assert _get(kept).expires_at is None


@pytest.mark.django_db(databases=ALL)
def test_attaching_someone_elses_expired_or_unknown_media_is_refused_entirely(
    authed, user, make_user, client_for, media_root, shard_commits
):
    with shard_commits():
        mine = _upload_id(authed, images.flat((1, 1, 1)))
        theirs = _upload_id(client_for(make_user()), images.flat((2, 2, 2)))
        expired = _upload_id(authed, images.flat((3, 3, 3)))
    Media.objects.using(alias_for_id(expired)).filter(id=expired).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    for ids in ([mine, theirs], [mine, expired], [mine, 12345]):
        with pytest.raises(ApiError) as caught:
            media_mark_attached(uploader_id=user.id, media_ids=ids)
        assert caught.value.error_code == "invalid_media"

    assert _get(mine).attached_at is None


@pytest.mark.django_db(databases=ALL)
def test_released_media_is_deleted_by_the_next_sweep(authed, user, media_root, shard_commits):
    with shard_commits():
        media_id = _upload_id(authed, images.flat((5, 5, 5)))
    media_process(media_id=media_id)
    media_mark_attached(uploader_id=user.id, media_ids=[media_id])

    released = media_release(uploader_id=user.id, media_ids=[media_id])
    kept = media_expire()  # within the grace period a deleted post can still be restored
    swept = media_expire(now=timezone.now() + dt.timedelta(days=7, seconds=1))

    assert (released, kept, swept) == (1, 0, 1)
    assert media_rows() == []
    assert stored_files(media_root) == []


@pytest.mark.django_db(databases=ALL)
def test_tiers_follow_age_and_access_count(
    authed, user, media_root, shard_commits, redis_client, settings
):
    settings.MEDIA_TIER_POLICY = {**settings.MEDIA_TIER_POLICY, "hot_min_accesses": 3}
    with shard_commits():
        ids = [_upload_id(authed, images.flat((i, 40, 40))) for i in range(4)]
    for media_id in ids:
        media_process(media_id=media_id)
    media_mark_attached(uploader_id=user.id, media_ids=ids)
    new, month_old, popular, year_old = ids
    now = timezone.now()
    for media_id, age in ((month_old, 40), (popular, 40), (year_old, 400)):
        Media.objects.using(alias_for_id(media_id)).filter(id=media_id).update(
            created_at=now - dt.timedelta(days=age)
        )
    media_access_record(media_ids=[popular, popular, popular, new])
    out = StringIO()

    call_command("media_tier", stdout=out)

    assert out.getvalue() == "hot=0 warm=1 cold=1\n"
    assert {i: _get(i).tier for i in ids} == {
        new: "hot",
        month_old: "warm",
        popular: "hot",
        year_old: "cold",
    }
    assert (_get(popular).access_count, _get(new).access_count) == (3, 1)
    assert media_tier_apply() == {"hot": 0, "warm": 0, "cold": 0}  # settled


@pytest.fixture
def storage_moves(monkeypatch):
    """The storage classes the tier task sets, in order (no file is moved)."""
    moves: list[str] = []
    monkeypatch.setattr(
        storage, "set_storage_class", lambda names, cls: moves.append(cls) or len(names)
    )
    return moves


def _processed(client, shard_commits, data) -> int:
    with shard_commits():
        media_id = _upload_id(client, data)
    media_process(media_id=media_id)
    return media_id


def _aged(media_ids: list[int], days: int) -> None:
    Media.objects.using(alias_for_id(media_ids[0])).filter(id__in=media_ids).update(
        created_at=timezone.now() - dt.timedelta(days=days)
    )


_SETTLED = {"hot": 0, "warm": 0, "cold": 0}


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize(
    ("aged", "moved", "tier"),
    [
        ({"old": 400}, _SETTLED, "hot"),  # the newer needs hot: both stay hot
        ({"old": 40}, _SETTLED, "hot"),
        ({"old": 400, "new": 400}, {**_SETTLED, "cold": 1}, "cold"),  # together, once
    ],
)
def test_exact_duplicates_sharing_files_take_the_hottest_tier_either_needs_and_stay(
    authed, user, media_root, shard_commits, redis_client, storage_moves, aged, moved, tier
):
    data = images.encode(images.textured(21), "JPEG")
    ids = {"old": _processed(authed, shard_commits, data)}
    ids["new"] = _upload_id(authed, data)  # an exact duplicate: the same files
    media_mark_attached(uploader_id=user.id, media_ids=list(ids.values()))
    for name, days in aged.items():
        _aged([ids[name]], days)

    first = media_tier_apply()
    second = media_tier_apply()

    assert (first, second) == (moved, _SETTLED)
    assert storage_moves == ([] if tier == "hot" else ["GLACIER_IR"])
    assert (_get(ids["old"]).tier, _get(ids["new"]).tier) == (tier, tier)


@pytest.mark.django_db(databases=ALL)
def test_a_new_duplicate_of_cold_files_whose_source_was_released_brings_them_back_hot(
    authed, user, media_root, shard_commits, redis_client, storage_moves
):
    data = images.encode(images.textured(23), "JPEG")
    old = _processed(authed, shard_commits, data)
    media_mark_attached(uploader_id=user.id, media_ids=[old])
    _aged([old], 400)
    assert media_tier_apply() == {"hot": 0, "warm": 0, "cold": 1}  # the files are cold now
    media_release(uploader_id=user.id, media_ids=[old])  # its post deleted (grace period)
    new = _upload_id(authed, data)  # an exact duplicate: the same (cold) files
    media_mark_attached(uploader_id=user.id, media_ids=[new])

    assert _get(new).storage_prefix == _get(old).storage_prefix
    assert media_tier_apply() == {"hot": 1, "warm": 0, "cold": 0}
    assert storage_moves == ["GLACIER_IR", "STANDARD"]
    assert (_get(old).tier, _get(new).tier) == ("hot", "hot")


@pytest.mark.django_db(databases=ALL)
def test_profile_picture_uses_the_pipeline_with_square_150_and_320(user, media_root):
    file = SimpleUploadedFile("me.heic", images.heic(), "image/heic")

    media = profile_picture_create(user=user, file=file)

    assert media.status == MediaStatus.READY
    assert media.kind == "profile"
    assert (media.attached_at, media.expires_at is None) == (None, False)  # until it is set
    profile_picture_attach(uploader_id=user.id, media_id=media.id)
    assert _get(media.id).expires_at is None
    assert media.variants == {"320_square": [320, 320], "150_square": [150, 150]}
    assert sorted(p.rsplit("/", 1)[1] for p in stored_files(media_root)) == [
        "150_square.jpg",
        "320_square.jpg",
        "metadata.json",
        "original.heic",
    ]
    image = open_image((media_root / media.storage_prefix / "320_square.jpg").read_bytes())
    assert image.size == (320, 320)
    from media.selectors import media_urls

    assert media_urls(media) == {
        "320": f"/media/{media.storage_prefix}/320_square.jpg",
        "150": f"/media/{media.storage_prefix}/150_square.jpg",
    }
    assert media_expire(now=timezone.now() + dt.timedelta(days=30)) == 0


@pytest.mark.django_db(databases=ALL)
def test_a_profile_picture_that_cannot_be_decoded_is_a_400_leaving_nothing(user, media_root):
    file = SimpleUploadedFile("me.png", images.png_with_corrupt_pixels(), "image/png")

    with pytest.raises(ApiError) as caught:
        profile_picture_create(user=user, file=file)

    assert (caught.value.status_code, caught.value.error_code) == (400, "invalid_image")
    assert media_rows() == []
    assert stored_files(media_root) == []


@pytest.mark.django_db(databases=ALL)
def test_processed_hooks_run_after_commit_for_the_row_and_its_duplicates(
    authed, media_root, shard_commits
):
    from media.services.processing import media_processed_hooks

    data = images.encode(images.textured(11), "JPEG")
    with shard_commits():
        first = _upload_id(authed, data)
        second = _upload_id(authed, data)
    seen = []
    media_processed_hooks.append(lambda media_ids: seen.append(sorted(media_ids)))
    try:
        with shard_commits(execute=True) as callbacks:
            media_process(media_id=first)
            assert seen == []  # not before commit
    finally:
        media_processed_hooks.pop()

    events = OutboxEvent.objects.using(alias_for_id(first)).filter(kind="media.processed")
    assert len(callbacks) == 1  # the outbox event, applied by this process after commit
    assert seen == [sorted([first, second])]
    assert [(sorted(e.payload["media_ids"]), e.status) for e in events] == [
        (sorted([first, second]), OutboxStatus.DONE)
    ]


@pytest.mark.django_db(databases=ALL)
def test_attachable_ids_are_own_unexpired_unattached_and_not_failed(
    authed, user, make_user, client_for, media_root, shard_commits
):
    from media.selectors import media_attachable_ids

    with shard_commits():
        fresh = _upload_id(authed, images.flat((1, 9, 9)))
        used = _upload_id(authed, images.flat((2, 9, 9)))
        broken = _upload_id(authed, images.png_with_corrupt_pixels(), name="b.png")
        theirs = _upload_id(client_for(make_user()), images.flat((3, 9, 9)))
    media_process(media_id=broken)
    media_mark_attached(uploader_id=user.id, media_ids=[used])

    found = media_attachable_ids(uploader_id=user.id, media_ids=[fresh, used, broken, theirs])

    assert found == {fresh}


DATA = Path(__file__).parent / "data"


@pytest.mark.django_db(databases=ALL)
def test_a_profile_picture_with_a_malformed_exif_block_is_turned_and_one_a_codec_refuses_is_a_400(
    user, media_root
):
    # The orientation (6) reads; the rest of the EXIF block is corrupt.
    data = (DATA / "malformed_exif.jpg").read_bytes()
    media = profile_picture_create(user=user, file=SimpleUploadedFile("me.jpg", data))
    assert (media.status, media.source_width, media.source_height) == ("ready", 1000, 1200)

    corrupt = (DATA / "corrupt.heic").read_bytes()  # the HEIC decoder raises RuntimeError
    for attempt in range(2):  # and again: no row left behind to be taken as its duplicate
        with pytest.raises(ApiError) as caught:
            profile_picture_create(user=user, file=SimpleUploadedFile("me.heic", corrupt))
        assert (caught.value.status_code, caught.value.error_code) == (400, "invalid_image")
        assert [row.id for row in media_rows()] == [media.id], attempt
    assert {p.split("/")[1] for p in stored_files(media_root)} == {str(media.id)}


@pytest.mark.django_db(databases=ALL)
def test_a_profile_picture_whose_render_crashes_leaves_nothing_and_a_retry_renders_it(
    user, media_root, monkeypatch
):
    data = images.encode(images.textured(8), "JPEG")

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr("media.services.processing.render", crash)
    with pytest.raises(RuntimeError):
        profile_picture_create(user=user, file=SimpleUploadedFile("me.jpg", data))
    assert (media_rows(), stored_files(media_root)) == ([], [])
    monkeypatch.undo()

    media = profile_picture_create(user=user, file=SimpleUploadedFile("me.jpg", data))
    assert (media.status, media.duplicate_of_id) == ("ready", None)


@pytest.mark.django_db(databases=ALL)
def test_a_profile_picture_never_set_expires_and_one_set_but_not_attached_is_kept(user, media_root):
    from accounts.models import User

    orphan = profile_picture_create(  # its request died before setting it
        user=user, file=SimpleUploadedFile("a.jpg", images.encode(images.textured(11), "JPEG"))
    )
    in_use = profile_picture_create(  # set on the user; the request died before attaching it
        user=user, file=SimpleUploadedFile("b.jpg", images.encode(images.textured(12), "JPEG"))
    )
    User.objects.filter(pk=user.pk).update(profile_pic_media_id=in_use.id)

    assert media_expire(now=timezone.now() + dt.timedelta(hours=23)) == 0
    assert media_expire(now=timezone.now() + dt.timedelta(hours=25)) == 1

    assert [row.id for row in media_rows()] == [in_use.id]
    assert (_get(in_use.id).attached_at is not None, _get(in_use.id).expires_at) == (True, None)
    assert {p.split("/")[1] for p in stored_files(media_root)} == {str(in_use.id)}
    assert orphan.id != in_use.id


@pytest.mark.django_db(databases=ALL)
def test_an_access_flush_run_again_after_dying_counts_each_view_once(
    authed, user, media_root, shard_commits, redis_client, monkeypatch
):
    from media.services import lifecycle

    with shard_commits():
        [media_id] = [_upload_id(authed, images.flat((9, 40, 40)))]
    media_access_record(media_ids=[media_id, media_id, media_id])
    client = lifecycle.get_redis()

    class DiesBeforeTheDrop:
        """The run dies after its rows were updated, when it drops the Redis copy."""

        def __getattr__(self, name):
            return getattr(client, name)

        def delete(self, *keys):
            raise ConnectionError("killed")

        def register_script(self, text):
            if "DEL" not in text:
                return client.register_script(text)
            return lambda **kwargs: self.delete()

    monkeypatch.setattr(lifecycle, "get_redis", DiesBeforeTheDrop)
    with pytest.raises(ConnectionError):
        lifecycle.media_access_flush()
    monkeypatch.undo()
    assert _get(media_id).access_count == 3
    media_access_record(media_ids=[media_id])  # a view meanwhile

    assert lifecycle.media_access_flush() == 1  # the leftover adds nothing; the new view does
    assert lifecycle.media_access_flush() == 0

    assert _get(media_id).access_count == 4
    assert [k for k in redis_client.keys("media:access:*")] == []
