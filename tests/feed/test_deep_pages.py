"""Scrolling past what Redis holds: the timeline keeps FEED_TIMELINE_LENGTH posts and a
celebrity's list FEED_CELEBRITY_POSTS, while the viewer's own posts have no cut. Each capped set
names its floor; a page that goes below a floor pulls from PostgreSQL, so deep pages skip
nothing."""

import pytest

from accounts.services.graph import follow_delete
from feed import timelines
from feed.services import timeline_follow_merge, timeline_follow_remove
from instagram.redis import get_redis

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _every_page(client, limit: int) -> list[int]:
    seen, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(f"/api/v1/feed{query}")
        assert response.status_code == 200, response.json()
        page = response.json()
        seen.extend(int(p["post_id"]) for p in page["posts"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return seen


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_pages_below_every_capped_source_skip_nothing(deep_feed, client_for, limit):
    viewer, posts = deep_feed()
    assert _every_page(client_for(viewer), limit) == sorted((p for p, _ in posts), reverse=True)


def test_pages_below_capped_sets_rebuilt_from_the_database_skip_nothing(deep_feed, client_for):
    viewer, posts = deep_feed()
    get_redis().flushdb()  # every set is rebuilt from PostgreSQL, capped again

    assert _every_page(client_for(viewer), 3) == sorted((p for p, _ in posts), reverse=True)
    # Rebuilt from the newest 8 posts of the accounts followed (not the viewer's own; the star's
    # too, as the emptied Redis no longer says it is merged at read): floored at the oldest.
    followed = sorted(p for p, author in posts if author != "viewer")
    assert timelines.timeline_read(viewer.id, before_id=None, count=20)[2] == followed[-8]


def _members(key: str) -> list[bytes]:
    return get_redis().zrange(key, 0, -1)


def test_a_timeline_cut_to_its_length_names_the_oldest_it_kept_as_its_floor(
    make_user, settings, redis_client
):
    settings.FEED_TIMELINE_LENGTH = 4
    user = make_user("user", shard="shard_0")
    key = timelines.timeline_key(user.id)
    timelines.timeline_replace(user.id, [101])
    assert _members(key) == [timelines.SENTINEL.encode(), b"%019d" % 101]

    timelines.timeline_add(user.id, [102, 103, 104, 105, 106])

    assert _members(key) == [b"0" * 19 + b":%019d" % 103] + [b"%019d" % p for p in range(103, 107)]
    assert timelines.timeline_read(user.id, before_id=None, count=9) == (
        [106, 105, 104, 103],
        [],
        103,
    )


def test_a_merge_from_a_capped_read_raises_the_floor_and_never_lowers_it(
    make_user, settings, redis_client
):
    user = make_user("user", shard="shard_0")
    key = timelines.timeline_key(user.id)
    timelines.timeline_replace(user.id, [300, 400], floor=300)
    assert _members(key)[0] == b"0" * 19 + b":%019d" % 300

    # A floor below the set's changes nothing, and a post below the floor is not added: the
    # set holds no post below its floor, so a read that meets a post has not passed it.
    timelines.timeline_add(user.id, [250, 500], floor=250)
    assert _members(key) == [b"0" * 19 + b":%019d" % 300] + [b"%019d" % p for p in (300, 400, 500)]
    timelines.timeline_add(user.id, [450], floor=450)  # raised: the posts below it leave
    assert _members(key) == [b"0" * 19 + b":%019d" % 450] + [b"%019d" % p for p in (450, 500)]
    assert timelines.timeline_read(user.id, before_id=None, count=1) == ([500], [], 0)
    assert timelines.timeline_read(user.id, before_id=None, count=3) == ([500, 450], [], 450)
    assert timelines.timeline_read(user.id, before_id=450, count=3) == ([], [], 450)


def test_a_full_rebuild_is_floored_and_a_short_one_is_not(make_user, redis_client):
    user = make_user("user", shard="shard_0")
    timelines.timeline_replace(user.id, [7, 8, 9], floor=timelines.capped_floor([7, 8, 9], 3))
    assert timelines.timeline_read(user.id, before_id=None, count=9) == ([9, 8, 7], [], 7)
    timelines.timeline_replace(user.id, [7, 8], floor=timelines.capped_floor([7, 8], 3))
    assert timelines.timeline_read(user.id, before_id=None, count=9) == ([8, 7], [], 0)


def test_a_celebrity_list_written_before_floors_is_taken_as_floored_at_its_oldest(
    make_user, publish, client_for, follow, settings, redis_client
):
    settings.FEED_FANOUT_THRESHOLD = 1
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    follow(viewer, star)
    posts = [publish(star, f"post {n}") for n in range(4)]
    # As the list was written before floors were kept: its newest posts and no sentinel.
    get_redis().sadd(timelines.CELEBRITIES, str(star.id))
    get_redis().zadd(timelines.celebrity_key(star.id), timelines.entries(posts[2:]))

    assert timelines.celebrity_lists([star.id], before_id=None, count=9) == {
        star.id: ([posts[3], posts[2]], posts[2])
    }
    assert timelines.celebrity_lists([star.id], before_id=posts[2], count=9) == {
        star.id: ([], timelines.UNKNOWN_FLOOR)  # nothing known below what it holds
    }
    assert timelines.celebrity_lists([star.id], before_id=None, count=2) == {
        star.id: ([posts[3], posts[2]], 0)  # the read did not run out
    }
    assert _every_page(client_for(viewer), 1) == posts[::-1]


def test_older_posts_of_an_account_followed_later_page_in_order_below_a_cut_timeline(
    make_user, follow, publish, client_for, settings, redis_client
):
    """The merge of an account whose posts are all older than the timeline's floor adds none
    of them (a set holds nothing below its floor, and a merge reads down to it): were they
    added, a read would meet them before the floor and skip the older posts of the accounts
    followed before."""
    settings.FEED_TIMELINE_LENGTH = 20
    settings.POSTS_PER_DAY = 100
    viewer = make_user("viewer", shard="shard_0")
    early, gone = make_user("early", shard="shard_1"), make_user("gone", shard="shard_1")
    later = make_user("later", shard="shard_0")
    old = [publish(later, f"old {n}") for n in range(5)]
    recent, dropped = [], []
    for n in range(30):
        (dropped if n % 3 == 0 else recent).append(publish(gone if n % 3 == 0 else early))
    follow(viewer, early, gone)
    client_for(viewer).get("/api/v1/feed?limit=5")  # built from the newest 20: floored
    follow_delete(follower=viewer, followee_id=gone.id)
    timeline_follow_remove(follower_id=viewer.id, followee_id=gone.id)  # room for more
    follow(viewer, later)
    assert timeline_follow_merge(follower_id=viewer.id, followee_id=later.id) == 0
    floor = sorted(recent + dropped)[-20]
    kept = [p for p in recent[::-1] if p >= floor]
    assert timelines.timeline_read(viewer.id, before_id=None, count=25) == (kept, [], floor)

    assert _every_page(client_for(viewer), 1) == recent[::-1] + old[::-1]
