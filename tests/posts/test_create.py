import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import UserCounters
from instagram.models import OutboxEvent, OutboxStatus
from media.models import Media
from posts.models import Location, Post, PostHashtag, PostMedia, PostMention, PostTag

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _post_count(alias: str) -> int:
    return Post.objects.using(alias).count()


def test_create_a_carousel_post_and_read_it_back(make_user, client_for, media_for, redis_client):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    place = Location.objects.create(name="Lisbon", name_normalized="lisbon", lat=38.7, lng=-9.1)
    media_ids = media_for(ann, 2)

    created = client_for(ann).post(
        "/api/v1/posts",
        {
            "media_ids": [str(i) for i in media_ids],
            "caption": "Sunset with @ben #Summer #sea #summer",
            "alt_text": ["first", "second"],
            "tagged_users": [str(ben.id)],
            "location_id": str(place.id),
        },
        format="json",
    )
    post_id = created.json()["post_id"]
    detail = client_for(ben).get(f"/api/v1/posts/{post_id}")

    assert created.status_code == 201
    assert created.json()["permalink"] == f"/p/{post_id}"
    body = detail.json()
    assert detail.status_code == 200
    assert body["author"] == {
        "user_id": str(ann.id),
        "username": "ann",
        "profile_pic_url": None,
        "is_verified": False,
    }
    assert [m["media_id"] for m in body["media"]] == [str(i) for i in media_ids]
    assert [m["alt_text"] for m in body["media"]] == ["first", "second"]
    assert body["media"][0]["type"] == "image"
    assert set(body["media"][0]["urls"]) == {"1080", "640", "320", "150"}
    assert body["media"][0]["url"] == body["media"][0]["urls"]["1080"]
    assert body["media"][0]["blur_placeholder"].startswith("data:image/")
    assert (body["media"][0]["width"], body["media"][0]["height"]) == (427, 320)
    assert body["caption"] == "Sunset with @ben #Summer #sea #summer"
    assert body["hashtags"] == ["summer", "sea"]
    assert body["mentions"] == [{"user_id": str(ben.id), "username": "ben"}]
    assert body["location"] == {
        "location_id": str(place.id),
        "name": "Lisbon",
        "lat": 38.7,
        "lng": -9.1,
    }
    assert (body["like_count"], body["comment_count"]) == (0, 0)
    assert (body["viewer_has_liked"], body["viewer_has_saved"]) == (False, False)
    assert sorted(PostTag.objects.using("shard_0").values_list("user_id", flat=True)) == [ben.id]
    assert UserCounters.objects.using("shard_0").get(user_id=ann.id).post_count == 1
    assert all(
        m.attached_at is not None and m.expires_at is None
        for m in Media.objects.using("shard_0").filter(id__in=media_ids)
    )


def test_one_alt_text_applies_to_every_item(make_user, client_for, media_for, redis_client):
    ann = make_user("ann")
    media_ids = [str(i) for i in media_for(ann, 2)]

    response = client_for(ann).post(
        "/api/v1/posts", {"media_ids": media_ids, "alt_text": "a dog"}, format="json"
    )

    links = PostMedia.objects.using("shard_0").order_by("position")
    assert response.status_code == 201
    assert [link.alt_text for link in links] == ["a dog", "a dog"]


@pytest.fixture
def bad_post(make_user, client_for, media_for, redis_client):
    """Posts a body and checks the answer, and that nothing at all was written."""
    ann = make_user("ann", shard="shard_0")
    others = {"ben": make_user("ben", shard="shard_1"), "ann": ann}

    def attempt(body_for, status: int, code: str):
        body = body_for(ann, others, media_for)
        before = list(Media.objects.using("shard_0").values_list("id", "attached_at"))
        response = client_for(ann).post("/api/v1/posts", body, format="json")
        assert response.status_code == status, response.json()
        assert response.json()["error"]["code"] == code
        assert _post_count("shard_0") == 0
        assert PostHashtag.objects.using("shard_0").count() == 0
        assert PostMention.objects.using("shard_0").count() == 0
        assert list(Media.objects.using("shard_0").values_list("id", "attached_at")) == before
        return response

    return attempt


def _ids(ids):
    return [str(i) for i in ids]


def _expired(user, others, media_for):
    ids = media_for(user, 1)
    Media.objects.using("shard_0").filter(id__in=ids).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    return {"media_ids": _ids(ids)}


@pytest.mark.parametrize(
    ("body_for", "status", "code"),
    [
        (lambda u, o, m: {"media_ids": _ids(m(u, 11))}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": []}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": _ids(m(u, 1) * 2)}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": _ids(m(o["ben"], 1))}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": ["4611686018427387903"]}, 400, "invalid_media"),
        (_expired, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": ["abc"]}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": [str(2**64)]}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": ["²"]}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": "1"}, 400, "invalid_media"),
        (lambda u, o, m: {"media_ids": [{"id": 1}]}, 400, "invalid_media"),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "caption": "x" * 30000},
            400,
            "caption_too_long",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "caption": "x" * 2201},
            400,
            "caption_too_long",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "caption": "😀" * 2600},
            400,
            "caption_too_long",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "caption": "bad\x00byte"},
            400,
            "invalid",
        ),
        (
            lambda u, o, m: {
                "media_ids": _ids(m(u, 1)),
                "caption": " ".join(f"#tag{n}" for n in range(31)),
            },
            400,
            "too_many_hashtags",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "tagged_users": [str(u.id)]},
            400,
            "cannot_tag_self",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "tagged_users": ["123456"]},
            400,
            "invalid_tagged_user",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "location_id": "999999"},
            400,
            "invalid_location",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 2)), "alt_text": ["one", "two", "three"]},
            400,
            "invalid_alt_text",
        ),
        (
            lambda u, o, m: {"media_ids": _ids(m(u, 1)), "alt_text": "a" * 1001},
            400,
            "invalid",
        ),
    ],
)
def test_bad_posts_are_refused_and_change_nothing(bad_post, body_for, status, code):
    bad_post(body_for, status, code)


def test_tagging_a_user_who_blocked_you_is_a_403(bad_post, client_for):
    def body(user, others, media_for):
        client_for(others["ben"]).post(f"/api/v1/users/{user.id}/block")
        return {"media_ids": _ids(media_for(user, 1)), "tagged_users": [str(others["ben"].id)]}

    response = bad_post(body, 403, "tagged_user_blocked")

    assert response.json()["error"]["message"] == "A tagged user cannot be tagged by you."


@pytest.mark.parametrize("blocker", ["ben", "ann"])
def test_a_name_blocked_either_way_or_unknown_stays_plain_text(
    make_user, client_for, media_for, redis_client, blocker
):
    ann, ben = make_user("ann"), make_user("ben", shard="shard_1")
    make_user("cat")
    blocked = ann if blocker == "ben" else ben
    client_for({"ann": ann, "ben": ben}[blocker]).post(f"/api/v1/users/{blocked.id}/block")
    body = {"media_ids": _ids(media_for(ann, 1)), "caption": "with @ben, @cat and @nobody_here"}

    response = client_for(ann).post("/api/v1/posts", body, format="json")

    assert response.status_code == 201
    post = Post.objects.using("shard_0").get()
    assert post.caption == "with @ben, @cat and @nobody_here"
    assert [m["username"] for m in post.mentions] == ["cat"]  # as if ben had no account
    assert list(PostMention.objects.using("shard_0").values_list("post_id", flat=True)) == [post.id]


def test_media_already_posted_cannot_be_posted_again(bad_post, client_for):
    def body(user, others, media_for):
        ids = _ids(media_for(user, 1))
        client_for(user).post("/api/v1/posts", {"media_ids": ids}, format="json")
        Post.objects.using("shard_0").all().delete()  # keep the "nothing written" check simple
        return {"media_ids": ids}

    bad_post(body, 400, "invalid_media")


def test_more_than_25_posts_a_day_is_rate_limited(
    make_user, client_for, media_for, settings, redis_client
):
    settings.POSTS_PER_DAY = 2
    ann = make_user("ann")

    statuses = []
    for _ in range(3):
        response = client_for(ann).post(
            "/api/v1/posts", {"media_ids": _ids(media_for(ann, 1))}, format="json"
        )
        statuses.append(response.status_code)

    assert statuses == [201, 201, 429]
    assert response.json()["error"]["code"] == "rate_limited"
    assert 86000 < int(response["Retry-After"]) <= 86401
    assert _post_count("shard_0") == 2


def test_post_with_media_still_processing_is_published_when_ready(
    make_user, client_for, media_for, redis_client, django_capture_on_commit_callbacks
):
    from media.services.processing import media_process

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    media_ids = media_for(ann, 2, process=False)
    media_process(media_id=media_ids[0])

    created = client_for(ann).post("/api/v1/posts", {"media_ids": _ids(media_ids)}, format="json")
    post_id = created.json()["post_id"]
    before_ready = client_for(ben).get(f"/api/v1/posts/{post_id}")
    own_view = client_for(ann).get(f"/api/v1/posts/{post_id}")
    with django_capture_on_commit_callbacks(using="shard_0", execute=True):
        media_process(media_id=media_ids[1])  # its after-commit hook publishes the post
    after_ready = client_for(ben).get(f"/api/v1/posts/{post_id}")

    assert created.status_code == 201
    assert before_ready.status_code == 404
    assert own_view.status_code == 200
    assert [m["status"] for m in own_view.json()["media"]] == ["ready", "processing"]
    assert after_ready.status_code == 200
    assert Post.objects.using("shard_0").get().published_at is not None


def test_a_worker_dying_right_after_the_media_is_ready_still_publishes_the_post(
    make_user, client_for, media_for, redis_client, settle
):
    """The commit that makes the last media item ready carries the publication with it: the
    hooks' after-commit moment never comes here (as if the worker died), the sweep does it."""
    from media.services.processing import media_process

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    media_ids = media_for(ann, 1, process=False)
    created = client_for(ann).post("/api/v1/posts", {"media_ids": _ids(media_ids)}, format="json")
    post_id = created.json()["post_id"]
    media_process(media_id=media_ids[0])  # committed; its after-commit work never runs
    before = client_for(ben).get(f"/api/v1/posts/{post_id}")
    counted_before = UserCounters.objects.using("shard_0").get(user_id=ann.id).post_count

    applied = settle()

    events = OutboxEvent.objects.using("shard_0").order_by("id")
    assert before.status_code == 404
    assert counted_before == 0
    assert applied == 3  # the upload's, the media's, then the publication's
    assert [(e.kind, e.status) for e in events] == [
        ("media.uploaded", OutboxStatus.DONE),
        ("media.processed", OutboxStatus.DONE),
        ("post.published", OutboxStatus.DONE),
    ]
    assert client_for(ben).get(f"/api/v1/posts/{post_id}").status_code == 200
    assert UserCounters.objects.using("shard_0").get(user_id=ann.id).post_count == 1
    assert settle() == 0  # applied once


def test_unauthenticated_create_is_a_401(client_for):
    response = client_for(None).post("/api/v1/posts", {"media_ids": ["1"]}, format="json")

    assert response.status_code == 401
