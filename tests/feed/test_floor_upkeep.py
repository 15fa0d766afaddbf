"""Floors of sets written before floors were kept, and floors that must not send warm first
pages to the database."""

import pytest

from accounts.services.graph import _following_remove
from feed import services, timelines
from feed.services import post_fanout, timeline_follow_merge, timeline_follow_remove
from instagram.redis import get_redis
from tests.feed.test_deep_pages import _every_page
from tests.feed.test_feed import _feed, _ids

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)

# The add script of the version before floors: a cut put back the bare sentinel.
BEFORE_FLOORS_ADD_LUA = """
local call = redis.call
local length = tonumber(ARGV[1])
local limit = length + math.floor(length / 20)
for i = 1, #KEYS do
  local key = KEYS[i]
  local size = call('ZCARD', key)
  if size > 0 then
    for j = 2, #ARGV do
      size = size + call('ZADD', key, 0, ARGV[j])
    end
    if size > limit then
      call('ZREMRANGEBYRANK', key, 0, -length - 1)
      call('ZADD', key, 0, '0000000000000000000')
    end
  end
end
return 0
"""


def _add_before_floors(key: str, post_id: int, length: int) -> None:
    get_redis().eval(BEFORE_FLOORS_ADD_LUA, 1, key, length, timelines.member(post_id))


def _database_pulls(monkeypatch) -> list:
    """The feed's reads below a floor (its only calls of recent_post_ids)."""
    calls = []
    real = services.recent_post_ids

    def counted(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "recent_post_ids", counted)
    return calls


def test_a_timeline_cut_before_floors_were_kept_skips_nothing(
    make_user, follow, publish, client_for, settings, redis_client
):
    settings.FEED_TIMELINE_LENGTH = 8
    viewer = make_user("viewer", shard="shard_0")
    author = make_user("author", shard="shard_1")
    follow(viewer, author)
    _feed(client_for(viewer))
    key = timelines.timeline_key(viewer.id)
    get_redis().delete(key)
    get_redis().zadd(key, {timelines.LEGACY_SENTINEL: 0})  # as the earlier version built it
    posts = []
    for n in range(20):
        posts.append(publish(author, f"post {n}"))
        _add_before_floors(key, posts[-1], 8)

    assert _every_page(client_for(viewer), 5) == posts[::-1]


def test_a_celebrity_list_cut_before_floors_were_kept_skips_nothing(
    make_user, follow, publish, client_for, settings, redis_client
):
    settings.FEED_CELEBRITY_POSTS = 3
    settings.FEED_FANOUT_THRESHOLD = 1
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    follow(viewer, star)
    posts = [publish(star, f"post {n}") for n in range(6)]
    # As the earlier version rebuilt it (the newest 3, no sentinel), then cut it.
    get_redis().sadd(timelines.CELEBRITIES, str(star.id))
    get_redis().zadd(timelines.celebrity_key(star.id), timelines.entries(posts[-3:]))
    posts.append(publish(star, "one more"))
    _add_before_floors(timelines.celebrity_key(star.id), posts[-1], 3)

    assert _every_page(client_for(viewer), 2) == posts[::-1]


def test_a_list_from_before_floors_is_not_floored_lower_by_an_older_post_added_to_it(
    make_user, follow, publish, client_for, settings, redis_client
):
    settings.FEED_CELEBRITY_POSTS = 20
    settings.POSTS_PER_DAY = 100
    settings.FEED_FANOUT_THRESHOLD = 1
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    friend = make_user("friend", shard="shard_1")
    follow(viewer, star, friend)
    posts = [publish(star, "post 0")]
    theirs = [publish(friend, f"friend {n}") for n in range(12)]
    posts += [publish(star, "post 1"), publish(star, "post 2")]
    theirs += [publish(friend, f"friend {n}") for n in range(12, 24)]
    posts += [publish(star, f"post {n}") for n in range(3, 23)]
    # As the earlier version rebuilt it: the newest 20, no sentinel (floored at posts[3]).
    get_redis().sadd(timelines.CELEBRITIES, str(star.id))
    get_redis().zadd(timelines.celebrity_key(star.id), timelines.entries(posts[3:]))
    assert timelines.celebrity_lists([star.id], before_id=None, count=30)[star.id][1] == posts[3]

    post_fanout(post_id=posts[0])  # its oldest post fanned out again (restored, say)

    key = timelines.celebrity_key(star.id)
    assert get_redis().zrange(key, 0, 0) == [timelines.sentinel(posts[3]).encode()]
    assert _every_page(client_for(viewer), 5) == sorted(posts + theirs, reverse=True)


def test_the_merge_of_an_account_unfollowed_since_leaves_first_pages_to_redis(
    make_user, follow, publish, client_for, settings, redis_client, monkeypatch
):
    """A follow's merge reads the account's posts down to the timeline's floor, so it leaves
    the floor where it was: a floor raised to the account's oldest merged post would outlive
    an unfollow and send every page, the first too, to the database."""
    settings.FEED_TIMELINE_LENGTH = 20
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    prolific = make_user("prolific", shard="shard_0")
    follow(viewer, friend)
    older = [publish(friend, f"friend {n}") for n in range(12)]
    client = client_for(viewer)
    _feed(client)  # rebuilt: all 12, so no floor
    assert timelines.timeline_floor(viewer.id) == 0
    [publish(prolific, f"prolific {n}") for n in range(6)]
    follow(viewer, prolific)
    assert timeline_follow_merge(follower_id=viewer.id, followee_id=prolific.id) == 6
    assert timelines.timeline_floor(viewer.id) == 0
    _following_remove(viewer.id, prolific.id)
    assert timeline_follow_remove(follower_id=viewer.id, followee_id=prolific.id) == 6
    pulls = _database_pulls(monkeypatch)

    assert _ids(_feed(client, limit=20)) == older[::-1]
    assert pulls == []


def test_a_ranked_first_page_of_a_warm_feed_reads_no_database_below_a_list(
    make_user, follow, publish, client_for, settings, redis_client, monkeypatch
):
    settings.FEED_CELEBRITY_POSTS = 9  # the window's 5 and 4 more (what start-up requires)
    settings.FEED_RANKED_WINDOW = 5
    settings.FEED_FANOUT_THRESHOLD = 1
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    follow(viewer, star)
    posts = [publish(star, f"post {n}") for n in range(12)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    client = client_for(viewer)
    _feed(client)  # the star's list is built: its newest 9, floored
    pulls = _database_pulls(monkeypatch)

    body = _feed(client, ranked=1, limit=5)

    assert sorted(_ids(body)) == sorted(posts[-5:])
    assert pulls == []


def test_a_timeline_from_before_floors_cut_then_emptied_by_an_unfollow_shows_older_posts(
    make_user, follow, publish, client_for, settings, redis_client
):
    settings.FEED_TIMELINE_LENGTH = 8
    settings.POSTS_PER_DAY = 100
    viewer = make_user("viewer", shard="shard_0")
    quiet = make_user("quiet", shard="shard_1")
    loud = make_user("loud", shard="shard_1")
    follow(viewer, quiet, loud)
    older = [publish(quiet, f"quiet {n}") for n in range(3)]
    _feed(client_for(viewer))
    key = timelines.timeline_key(viewer.id)
    get_redis().delete(key)  # as the earlier version built and cut it
    get_redis().zadd(key, {timelines.LEGACY_SENTINEL: 0, **timelines.entries(older)})
    for n in range(12):
        _add_before_floors(key, publish(loud, f"loud {n}"), 8)
    assert get_redis().zrange(key, 0, 0) == [timelines.LEGACY_SENTINEL.encode()]  # cut
    _following_remove(viewer.id, loud.id)
    timeline_follow_remove(follower_id=viewer.id, followee_id=loud.id)
    assert get_redis().zrange(key, 0, -1) == [timelines.LEGACY_SENTINEL.encode()]
    assert timelines.timeline_floor(viewer.id) is None  # nothing tells its floor: rebuild it

    assert _every_page(client_for(viewer), 5) == older[::-1]
    post_fanout(post_id=publish(quiet, "new"))  # an add drops such a set, for a rebuild
    assert get_redis().exists(key) == 0


def test_a_cut_timeline_emptied_by_an_unfollow_is_rebuilt_and_first_pages_stay_in_redis(
    make_user, follow, publish, client_for, settings, redis_client, monkeypatch
):
    settings.FEED_TIMELINE_LENGTH = 8
    settings.POSTS_PER_DAY = 100
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    loud = make_user("loud", shard="shard_1")
    follow(viewer, friend, loud)
    older = [publish(friend, f"friend {n}") for n in range(3)]
    client = client_for(viewer)
    _feed(client)
    for n in range(12):
        post_fanout(post_id=publish(loud, f"loud {n}"))
    assert timelines.timeline_floor(viewer.id) > older[-1]
    _following_remove(viewer.id, loud.id)
    timeline_follow_remove(follower_id=viewer.id, followee_id=loud.id)
    pulls = _database_pulls(monkeypatch)

    assert _ids(_feed(client, limit=3)) == older[::-1]  # pulled below the floor, set dropped
    assert len(pulls) == 1
    assert _ids(_feed(client, limit=3)) == older[::-1]  # rebuilt
    assert timelines.timeline_floor(viewer.id) == 0
    pulls.clear()
    for _ in range(3):
        assert _ids(_feed(client, limit=3)) == older[::-1]
    assert pulls == []


def test_a_list_another_follower_rebuilt_since_the_read_looked_is_not_dropped(
    make_user, follow, publish, client_for, settings, redis_client, monkeypatch
):
    settings.FEED_CELEBRITY_POSTS = 6
    settings.FEED_FANOUT_THRESHOLD = 1
    settings.POSTS_PER_DAY = 100
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    follow(viewer, star)
    _feed(client_for(viewer), limit=1)
    posts = [publish(star, f"p{n}") for n in range(10)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    key = timelines.celebrity_key(star.id)
    services.celebrity_lists_rebuild([star.id])
    timelines.celebrity_remove(star.id, posts[-4:])  # 2 posts left above its floor
    real = services.celebrity_lists_rebuild

    def another_follower_rebuilds_it_first(author_ids):
        real([star.id])  # after this read's script, before its pull
        return real(author_ids)

    monkeypatch.setattr(services, "celebrity_lists_rebuild", another_follower_rebuilds_it_first)
    assert _ids(_feed(client_for(viewer), limit=1)) == [posts[-1]]

    assert timelines.celebrity_lists([star.id], before_id=None, count=99)[star.id] == (
        posts[:3:-1],
        posts[4],
    )
    assert get_redis().exists(key) == 1
