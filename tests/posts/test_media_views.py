"""Answers that show posts count views of their media, for the storage tier policy."""

import random

import pytest

from instagram.sharding import alias_for_id
from media.models import Media
from media.services import media_access_flush

pytestmark = pytest.mark.django_db(databases="__all__")


def _access_counts(media_ids) -> list[int]:
    media_access_flush()
    rows = Media.objects.using(alias_for_id(media_ids[0])).filter(id__in=media_ids)
    return [rows.get(id=media_id).access_count for media_id in media_ids]


def _media_of(post_id: int) -> list[int]:
    from posts.models import PostMedia

    return list(
        PostMedia.objects.using(alias_for_id(post_id))
        .filter(post_id=post_id)
        .order_by("position")
        .values_list("media_id", flat=True)
    )


def test_answers_showing_a_post_count_views_of_its_media(
    make_user, client_for, post_for, redis_client, settle
):
    from accounts.services.graph import _following_add

    ann = make_user("ann", shard="shard_0")
    fan = make_user("fan", shard="shard_1")
    _following_add(fan.id, ann.id)
    settle()
    post_id = post_for(ann)
    settle()

    client_for(fan).get(f"/api/v1/posts/{post_id}")  # the detail
    client_for(fan).get(f"/api/v1/users/{ann.id}/posts")  # a list
    feed = client_for(fan).get("/api/v1/feed").json()  # the home feed
    ranked = client_for(fan).get("/api/v1/feed?ranked=1").json()

    assert [p["post_id"] for p in feed["posts"]] == [str(post_id)]
    assert [p["post_id"] for p in ranked["posts"]] == [str(post_id)]
    assert _access_counts(_media_of(post_id)) == [4]


@pytest.mark.parametrize(("sample", "drawn", "counted"), [(10, 0, 10), (10, 3, 0), (0, 0, 0)])
def test_views_are_counted_for_one_answer_in_a_sample_as_that_many(
    make_user, client_for, post_for, redis_client, settings, monkeypatch, sample, drawn, counted
):
    ann = make_user("ann", shard="shard_0")
    post_id = post_for(ann)
    settings.MEDIA_VIEW_SAMPLE = sample
    monkeypatch.setattr(random, "randrange", lambda n: drawn)

    client_for(ann).get(f"/api/v1/posts/{post_id}")

    assert _access_counts(_media_of(post_id)) == [counted]
