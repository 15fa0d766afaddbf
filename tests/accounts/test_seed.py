from collections import Counter
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from accounts.models import Follower, Following, User, UserCounters
from accounts.selectors import relationship
from instagram.models import OutboxEvent, OutboxStatus
from instagram.sharding import alias_for_id, shard_aliases
from media.models import Media, MediaKind, MediaStatus
from posts.models import Comment, Hashtag, Like, LikedPost, Location, Post, PostMedia, PostMention

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)
# 8 of the 50 people post (the full seed has 30), so the test seeds in ~12 s.
SEED = ("seed_demo", "--fans", "300", "--posters", "8", "--force")  # tests run with DEBUG off


def rows(model, **filters) -> list:
    """Every row of a sharded model, on every shard."""
    return [
        row for alias in shard_aliases() for row in model.objects.using(alias).filter(**filters)
    ]


def snapshot(media_root) -> dict:
    sharded = (Media, Post, PostMedia, PostMention, Like, LikedPost, Comment, OutboxEvent)
    return {
        "users": sorted(User.objects.values_list("username", "profile_pic_url", "is_private")),
        "locations": Location.objects.count(),
        "hashtags": Hashtag.objects.count(),
        "counters": sorted(
            (c.user_id, c.follower_count, c.following_count, c.post_count)
            for c in rows(UserCounters)
        ),
        **{model.__name__: len(rows(model)) for model in sharded},
        "files": sum(1 for path in media_root.rglob("*") if path.is_file()),
    }


def assert_graph_is_consistent(celebrity: User) -> None:
    assert User.objects.filter(is_private=True).count() == 1
    assert relationship(None, celebrity.id).follower_count == 350
    for alias in shard_aliases():
        for counters in UserCounters.objects.using(alias):
            followers = Follower.objects.using(alias).filter(followee_id=counters.user_id).count()
            following = Following.objects.using(alias).filter(follower_id=counters.user_id).count()
            assert (counters.follower_count, counters.following_count) == (followers, following)
    assert sum(Following.objects.using(a).count() for a in shard_aliases()) == sum(
        Follower.objects.using(a).count() for a in shard_aliases()
    )


def assert_people_have_avatars(media_root) -> None:
    people = User.objects.exclude(username__startswith="fan").exclude(is_superuser=True)
    assert people.count() == 51  # the 50 and the celebrity
    for user in people:
        assert user.profile_pic_url.endswith(f"/{user.profile_pic_media_id}/320_square.jpg")
        media = Media.objects.using(alias_for_id(user.id)).get(id=user.profile_pic_media_id)
        assert (media.kind, media.status, media.uploader_id) == (
            MediaKind.PROFILE,
            MediaStatus.READY,
            user.id,
        )
        assert (media_root / media.storage_prefix / "150_square.jpg").is_file()
        assert (media_root / media.storage_prefix / "320_square.jpg").is_file()
    assert not User.objects.filter(username__startswith="fan").exclude(profile_pic_url="").exists()


def assert_posts_are_published(posts: list[Post], celebrity: User, private: User) -> None:
    assert len(posts) == 31
    assert all(p.published_at is not None and p.deleted_at is None for p in posts)
    per_author = Counter(p.author_id for p in posts)
    assert sorted(per_author.values()) == [2, 2, 3, 3, 4, 4, 4, 4, 5]
    assert (per_author[celebrity.id], per_author[private.id]) == (5, 2)
    assert max(per_author.values()) < django_settings.POSTS_PER_DAY
    for counters in rows(UserCounters):
        assert counters.post_count == per_author[counters.user_id]

    links = rows(PostMedia)
    items = Counter(link.post_id for link in links)
    assert sorted(items.values(), reverse=True) == [4, 4, 4, 3, 3, 3, 3, 3, 3, 2, 2] + [1] * 20
    assert all(link.alt_text for link in links)
    media = {m.id: m for m in rows(Media, kind=MediaKind.POST)}
    assert set(media) == {link.media_id for link in links}
    assert {(m.status, m.expires_at) for m in media.values()} == {(MediaStatus.READY, None)}
    assert {m.filter_id for m in media.values()} == {
        "clarendon",
        "gingham",
        "juno",
        "lark",
        "moon",
        "normal",
        "reyes",
    }
    assert all(p.hashtags for p in posts)
    assert sum(1 for p in posts if p.mentions) == 16
    assert sum(1 for p in posts if p.location_id is not None) == 14
    assert Location.objects.count() == 8


def assert_engagement_is_counted(posts: list[Post], private: User) -> None:
    likes, comments = rows(Like), rows(Comment)
    assert (len(likes), len(comments)) == (589, 120)
    assert sum(1 for c in comments if c.parent_id is not None) == 33
    like_rows, comment_rows = (
        Counter(x.post_id for x in likes),
        Counter(x.post_id for x in comments),
    )
    for post in posts:
        assert post.like_count == like_rows[post.id] > 0
        assert post.comment_count == comment_rows[post.id]
    replies = Counter(c.parent_id for c in comments if c.parent_id is not None)
    assert all(c.reply_count == replies[c.id] for c in comments)
    # The outbox was drained: every like has the liker's index row, no event is left.
    assert {(x.user_id, x.post_id) for x in rows(LikedPost)} == {
        (x.user_id, x.post_id) for x in likes
    }
    assert {e.status for e in rows(OutboxEvent)} == {OutboxStatus.DONE}

    # Only followers see (so like and comment on) the private account's posts.
    private_posts = {p.id for p in posts if p.author_id == private.id}
    followers = set(
        Follower.objects.using(alias_for_id(private.id))
        .filter(followee_id=private.id)
        .values_list("follower_id", flat=True)
    )
    likers = {x.user_id for x in likes if x.post_id in private_posts}
    commenters = {c.author_id for c in comments if c.post_id in private_posts}
    assert likers
    assert likers <= followers
    assert commenters <= followers | {private.id}


def test_seed_demo_builds_consistent_demo_data_once(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_CDN_URL = ""
    first, second = StringIO(), StringIO()

    call_command(*SEED, stdout=first)
    counts_after_first = User.objects.count()
    after_first = snapshot(tmp_path)
    call_command(*SEED, stdout=second)

    celebrity = User.objects.get(username="celebrity")
    private = User.objects.get(is_private=True)
    assert counts_after_first == User.objects.count() == 1 + 50 + 1 + 300
    assert first.getvalue() == (
        f"Created 50 people, 300 fans of 'celebrity', private account '{private.username}', "
        "1042 follows, 31 posts (54 photos, 11 carousels), 589 likes, 120 comments; "
        "every demo password is 'instagram-demo'\n"
    )
    assert second.getvalue() == "Demo data already present\n"
    assert snapshot(tmp_path) == after_first
    assert_graph_is_consistent(celebrity)
    assert_people_have_avatars(tmp_path)
    posts = rows(Post)
    assert_posts_are_published(posts, celebrity, private)
    assert_engagement_is_counted(posts, private)


@pytest.mark.parametrize("stopped_after", ["a person", "the celebrity"])
def test_a_seed_stopped_part_way_says_so_instead_of_taking_it_for_done(stopped_after):
    import random

    from django.core.management.base import CommandError

    from accounts.management.commands.seed_demo import _people_names

    first, last = _people_names(random.Random(20260101))[0]
    User.objects.create_user(username=f"{first}.{last}", password="pw-12345678")
    if stopped_after == "the celebrity":
        User.objects.create_user(username="celebrity", password="pw-12345678")

    with pytest.raises(CommandError, match=r"The demo data is incomplete.*make clean-var"):
        call_command(*SEED, stdout=StringIO())
    assert User.objects.count() == (1 if stopped_after == "a person" else 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "DEBUG is off: the demo data includes a superuser with a published password."),
        (("--fans", "-5", "--force"), "--fans is 0 or more; --posters is 0 to 50."),
        (("--posters", "51", "--force"), "--fans is 0 or more; --posters is 0 to 50."),
    ],
)
def test_seed_demo_refuses_production_and_bad_counts_and_writes_nothing(args, message):
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", *args, stdout=StringIO())

    assert str(refused.value).startswith(message)
    assert User.objects.count() == 0
