"""The home feed's Redis cache of post bodies and author cards: never stale, never shared
per-viewer state, and robust to what it finds at its keys."""

import re

import orjson
import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from accounts.admin import UserAdmin
from accounts.models import User
from accounts.selectors import AUTHOR_CARDS
from feed.services import post_fanout
from instagram.cache import FORGOTTEN
from instagram.sharding import alias_for_id
from posts.hydration import POST_BODIES
from posts.models import Location, Post
from posts.services.likes import post_like
from posts.services.posts import post_create, post_update
from tests.conftest import jpeg_bytes

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)

BODY_FIELDS = {
    "post_id",
    "media",
    "caption",
    "hashtags",
    "mentions",
    "location",
    "created_at",
    "permalink",
}


def _feed(client, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/api/v1/feed?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _ids(body) -> list[int]:
    return [int(p["post_id"]) for p in body["posts"]]


def _version(post_id: int) -> int:
    """The post's version as the feed reads it: updated_at in microseconds."""
    with connections[alias_for_id(post_id)].cursor() as cursor:
        cursor.execute(
            "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM posts_post "
            "WHERE id = %s",
            [post_id],
        )
        return cursor.fetchone()[0]


def _cached_body(redis_client, post_id: int) -> tuple[int, dict]:
    """The version and the decoded body stored at the post's key (after its author's ID)."""
    raw = redis_client.get(POST_BODIES.key(post_id))
    assert raw is not None, "no cached body"
    head, author, body = raw.split(b" ", 2)
    assert int(author) == Post.objects.using(alias_for_id(post_id)).get(id=post_id).author_id
    return int(head), orjson.loads(body)


def _author(user: User, *, verified: bool = False, picture: str | None = None) -> dict:
    return {
        "user_id": str(user.id),
        "username": user.username,
        "profile_pic_url": picture,
        "is_verified": verified,
    }


@pytest.fixture
def user_admin():
    return UserAdmin(User, admin.site)


@pytest.fixture
def author_and_follower(make_user, follow, redis_client):
    author = make_user("author", shard="shard_1")
    follower = make_user("follower", shard="shard_0")
    follow(follower, author)
    return author, follower


def test_caption_edit_shows_on_the_next_read_although_the_old_body_was_cached(
    author_and_follower, publish, client_for, redis_client
):
    author, follower = author_and_follower
    post_id = publish(author, "before #old")
    first = _feed(client_for(follower))
    assert redis_client.exists(POST_BODIES.key(post_id)) == 1
    assert _cached_body(redis_client, post_id)[1]["caption"] == "before #old"

    post_update(author=author, post_id=post_id, caption="after #new")
    second = _feed(client_for(follower))

    assert [(p["caption"], p["hashtags"]) for p in first["posts"]] == [("before #old", ["old"])]
    assert [(p["caption"], p["hashtags"]) for p in second["posts"]] == [("after #new", ["new"])]
    version, cached = _cached_body(redis_client, post_id)
    assert (version, cached["caption"]) == (_version(post_id), "after #new")


def test_alt_text_edit_shows_on_the_next_read_although_the_old_body_was_cached(
    author_and_follower, publish, client_for, redis_client
):
    author, follower = author_and_follower
    post_id = publish(author)
    first = _feed(client_for(follower))
    assert redis_client.exists(POST_BODIES.key(post_id)) == 1

    post_update(author=author, post_id=post_id, alt_text=["a red square"])
    second = _feed(client_for(follower))

    assert [m["alt_text"] for m in first["posts"][0]["media"]] == [""]
    assert [m["alt_text"] for m in second["posts"][0]["media"]] == ["a red square"]


def test_viewer_state_is_never_shared_through_the_cached_body(
    make_user, follow, publish, client_for, redis_client
):
    author = make_user("author", shard="shard_1")
    liker = make_user("liker", shard="shard_0")
    other = make_user("other", shard="shard_1")
    follow(liker, author)
    follow(other, author)
    post_id = publish(author)
    before = [_feed(client_for(viewer)) for viewer in (liker, other)]  # the body is cached

    post_like(user=liker, post_id=post_id)
    liker_sees = _feed(client_for(liker))
    other_sees = _feed(client_for(other))
    redis_client.delete(POST_BODIES.key(post_id))
    other_first = _feed(client_for(other))  # this time the other viewer fills the cache...
    liker_next = _feed(client_for(liker))  # ...and the liker reads what they wrote

    def state(body):
        return [(int(p["post_id"]), p["like_count"], p["viewer_has_liked"]) for p in body["posts"]]

    assert [state(body) for body in before] == [[(post_id, 0, False)]] * 2
    assert state(liker_sees) == state(liker_next) == [(post_id, 1, True)]
    assert state(other_sees) == state(other_first) == [(post_id, 1, False)]
    assert set(_cached_body(redis_client, post_id)[1]) == BODY_FIELDS


def test_admin_deactivation_hides_the_authors_posts_at_once_and_reactivation_restores_them(
    author_and_follower,
    publish,
    client_for,
    redis_client,
    user_admin,
    django_capture_on_commit_callbacks,
):
    author, follower = author_and_follower
    post_id = publish(author)
    assert _ids(_feed(client_for(follower))) == [post_id]
    assert redis_client.exists(AUTHOR_CARDS.key(author.id)) == 1

    with django_capture_on_commit_callbacks(using="default", execute=True):
        user_admin.deactivate(None, User.objects.filter(pk=author.id))
    hidden = _feed(client_for(follower))
    cached_while_deactivated = redis_client.get(AUTHOR_CARDS.key(author.id))
    with django_capture_on_commit_callbacks(using="default", execute=True):
        user_admin.reactivate(None, User.objects.filter(pk=author.id))
    restored = _feed(client_for(follower))

    assert hidden["posts"] == []
    assert cached_while_deactivated == FORGOTTEN  # read from the database until the mark ends
    assert _ids(restored) == [post_id]
    assert restored["posts"][0]["author"] == _author(author)


def test_admin_verification_shows_on_the_authors_posts_at_once(
    author_and_follower,
    publish,
    client_for,
    redis_client,
    user_admin,
    django_capture_on_commit_callbacks,
):
    author, follower = author_and_follower
    publish(author)
    before = _feed(client_for(follower))
    assert redis_client.exists(AUTHOR_CARDS.key(author.id)) == 1

    with django_capture_on_commit_callbacks(using="default", execute=True):
        user_admin.verify(None, User.objects.filter(pk=author.id))
    verified = _feed(client_for(follower))
    with django_capture_on_commit_callbacks(using="default", execute=True):
        user_admin.unverify(None, User.objects.filter(pk=author.id))
    unverified = _feed(client_for(follower))

    assert [p["author"] for p in before["posts"]] == [_author(author)]
    assert [p["author"] for p in verified["posts"]] == [_author(author, verified=True)]
    assert [p["author"] for p in unverified["posts"]] == [_author(author)]


def test_admin_rename_shows_on_the_authors_posts_at_once(
    author_and_follower,
    publish,
    client_for,
    redis_client,
    user_admin,
    django_capture_on_commit_callbacks,
):
    author, follower = author_and_follower
    publish(author)
    _feed(client_for(follower))
    assert redis_client.exists(AUTHOR_CARDS.key(author.id)) == 1

    renamed = User.objects.get(pk=author.id)
    renamed.username = "renamed"
    with django_capture_on_commit_callbacks(using="default", execute=True):
        user_admin.save_model(None, renamed, None, True)
    after = _feed(client_for(follower))

    assert [p["author"]["username"] for p in after["posts"]] == ["renamed"]


def test_new_profile_picture_shows_on_the_authors_posts_at_once(
    author_and_follower, publish, client_for, redis_client, django_capture_on_commit_callbacks
):
    from accounts.services.profile import profile_picture_set

    author, follower = author_and_follower
    publish(author)  # sets MEDIA_ROOT to a temporary folder, through `media_for`
    before = _feed(client_for(follower))
    assert redis_client.exists(AUTHOR_CARDS.key(author.id)) == 1

    upload = SimpleUploadedFile("me.jpg", jpeg_bytes(), content_type="image/jpeg")
    with django_capture_on_commit_callbacks(using="default", execute=True):
        profile_picture_set(user=User.objects.get(pk=author.id), file=upload)
    after = _feed(client_for(follower))

    picture = User.objects.get(pk=author.id).profile_pic_url
    assert picture.endswith("/320_square.jpg")
    assert [p["author"] for p in before["posts"]] == [_author(author)]
    assert [p["author"] for p in after["posts"]] == [_author(author, picture=picture)]


@pytest.mark.parametrize(
    "garbage",
    [b"not-a-version {}", b"", b"12 {}", b"12 x {}", b"\xff\xfe", b"-5 {}", b"-5 1 {}"],
    ids=repr,
)
def test_a_garbage_value_at_a_body_key_is_a_miss_and_is_rewritten(
    garbage, author_and_follower, publish, client_for, redis_client
):
    author, follower = author_and_follower
    post_id = publish(author, "the real one")
    expected = _feed(client_for(follower))
    redis_client.set(POST_BODIES.key(post_id), garbage)

    answered = _feed(client_for(follower))

    assert answered == expected
    assert [p["caption"] for p in answered["posts"]] == ["the real one"]
    raw = redis_client.get(POST_BODIES.key(post_id))
    assert re.fullmatch(rb"\d+ \d+ \{.*\}", raw, re.DOTALL)
    version, cached = _cached_body(redis_client, post_id)
    assert (version, cached["caption"]) == (_version(post_id), "the real one")
    assert redis_client.ttl(POST_BODIES.key(post_id)) > 0


@pytest.mark.parametrize("body", [b"", b"not json", b'{"post_id": "1"', b"null"], ids=repr)
def test_a_value_of_the_current_version_with_an_unparseable_body_is_a_miss(
    body, author_and_follower, publish, client_for, redis_client
):
    author, follower = author_and_follower
    post_id = publish(author, "the real one")
    expected = _feed(client_for(follower))
    redis_client.set(POST_BODIES.key(post_id), b"%d %d %s" % (_version(post_id), author.id, body))

    response = client_for(follower).get("/api/v1/feed")

    assert response.status_code == 200
    assert orjson.loads(response.content) == expected
    version, cached = _cached_body(redis_client, post_id)
    assert (version, cached["caption"]) == (_version(post_id), "the real one")


def test_a_garbage_value_at_a_card_key_is_a_miss_and_is_rewritten(
    author_and_follower, publish, client_for, redis_client
):
    author, follower = author_and_follower
    post_id = publish(author)
    redis_client.set(AUTHOR_CARDS.key(author.id), b"garbage")

    answered = _feed(client_for(follower))

    assert _ids(answered) == [post_id]
    assert answered["posts"][0]["author"] == _author(author)
    assert orjson.loads(redis_client.get(AUTHOR_CARDS.key(author.id))[2:]) == _author(author)


def test_unpublished_post_is_in_its_authors_feed_but_its_body_is_not_cached(
    author_and_follower,
    media_for,
    client_for,
    redis_client,
    django_capture_on_commit_callbacks,
):
    from media.services.processing import media_process

    author, follower = author_and_follower
    media_ids = media_for(author, 1, process=False)
    post = post_create(author=author, media_ids=media_ids, caption="soon")
    assert post.published_at is None

    own = _feed(client_for(author))
    followers = _feed(client_for(follower))
    cached_before = redis_client.exists(POST_BODIES.key(post.id))
    with django_capture_on_commit_callbacks(using=alias_for_id(post.id), execute=True):
        media_process(media_id=media_ids[0])  # its after-commit hook publishes the post
    post_fanout(post_id=post.id)  # the task the publish hook sends
    own_after = _feed(client_for(author))
    followers_after = _feed(client_for(follower))

    assert [(p["caption"], [m["status"] for m in p["media"]]) for p in own["posts"]] == [
        ("soon", ["processing"])
    ]
    assert followers["posts"] == []
    assert cached_before == 0
    assert [[m["status"] for m in p["media"]] for p in own_after["posts"]] == [["ready"]]
    assert [[m["status"] for m in p["media"]] for p in followers_after["posts"]] == [["ready"]]
    version, cached = _cached_body(redis_client, post.id)
    assert (version, [m["status"] for m in cached["media"]]) == (_version(post.id), ["ready"])


def test_location_rename_shows_on_the_next_read_although_the_body_was_cached(
    author_and_follower, media_for, client_for, redis_client, django_capture_on_commit_callbacks
):
    from posts.services.posts import post_publish_if_ready

    author, follower = author_and_follower
    place = Location.objects.create(name="Oslo", name_normalized="oslo", lat=59.9, lng=10.7)
    post = post_create(author=author, media_ids=media_for(author, 1), location_id=place.id)
    assert post_publish_if_ready(post=post)
    first = _feed(client_for(follower))
    assert redis_client.exists(POST_BODIES.key(post.id)) == 1

    place.name, place.name_normalized = "Kristiania", "kristiania"
    with django_capture_on_commit_callbacks(using="default", execute=True):
        admin.site._registry[Location].save_model(None, place, None, True)
    second = _feed(client_for(follower))

    assert [p["location"]["name"] for p in first["posts"]] == ["Oslo"]
    assert [p["location"]["name"] for p in second["posts"]] == ["Kristiania"]


def test_without_redis_cached_kinds_are_read_from_the_database(
    author_and_follower, publish, settings
):
    from instagram.cache import CacheRead, cache_read

    author, _ = author_and_follower
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    (cards,) = cache_read(CacheRead(AUTHOR_CARDS, [author.id]))

    assert orjson.loads(cards[author.id].json) == _author(author)


def test_a_card_read_before_a_change_is_not_cached_after_it(
    author_and_follower, publish, client_for, redis_client, django_capture_on_commit_callbacks
):
    from accounts.services.profile import user_cards_forget

    author, follower = author_and_follower
    publish(author)
    with django_capture_on_commit_callbacks(using="default", execute=True):
        user_cards_forget(user_ids=[author.id])  # as a change does, before and after it commits

    _feed(client_for(follower))  # loads the card from the database

    assert redis_client.get(AUTHOR_CARDS.key(author.id)) == FORGOTTEN
    assert 0 < redis_client.ttl(AUTHOR_CARDS.key(author.id)) <= 30
