"""`manage.py rebuild_timelines`: what it rebuilds, and that it makes no idle user active."""

import io

import pytest
from django.core.management import call_command

from feed import timelines

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _timeline(client, user) -> list[int]:
    members = client.zrevrangebylex(timelines.timeline_key(user.id), "+", timelines.ABOVE_SENTINEL)
    return [int(m) for m in members]


@pytest.fixture
def readers(make_user, follow, publish, settings, redis_client):
    """An author, a star over the fan-out threshold, and their posts; a reader of both whose
    timeline is live but out of date, with an hour of life left; a dormant follower of the star
    (no timeline: they have not read the feed for FEED_ACTIVE_DAYS)."""
    settings.FEED_FANOUT_THRESHOLD = 2
    author = make_user("author", shard="shard_1")
    star = make_user("star", shard="shard_0")
    active = make_user("active", shard="shard_0")
    dormant = make_user("dormant", shard="shard_1")
    follow(active, author, star)
    follow(dormant, star)
    posts = [publish(author), publish(star), publish(author)]
    timelines.timeline_replace(active.id, [posts[0], posts[1] + 1])  # one missing, one unknown
    redis_client.expire(timelines.timeline_key(active.id), 3600)
    return author, star, active, dormant, posts


def test_without_users_named_only_the_timelines_that_exist_are_rebuilt_keeping_their_expiry(
    readers, redis_client
):
    author, star, active, dormant, posts = readers
    key = timelines.timeline_key(active.id)
    expiry = redis_client.pexpiretime(key)
    out = io.StringIO()

    call_command("rebuild_timelines", stdout=out)

    for idle in (dormant, author, star):
        assert redis_client.exists(timelines.timeline_key(idle.id)) == 0
    assert _timeline(redis_client, active) == [posts[2], posts[0]]  # the star's is merged at read
    assert redis_client.pexpiretime(key) == expiry
    assert redis_client.smembers(timelines.CELEBRITIES) == {str(star.id).encode()}
    assert redis_client.zrange(timelines.celebrity_key(star.id), 0, -1) == [
        timelines.SENTINEL.encode(),
        b"%019d" % posts[1],
    ]
    assert out.getvalue() == "rebuilt 1 timelines and 1 celebrity lists\n"


def test_users_named_are_rebuilt_whether_their_timeline_exists_or_not(
    readers, redis_client, settings
):
    author, _, active, dormant, posts = readers
    expiry = redis_client.pexpiretime(timelines.timeline_key(active.id))
    out = io.StringIO()

    call_command("rebuild_timelines", str(active.id), str(dormant.id), stdout=out)

    assert _timeline(redis_client, active) == [posts[2], posts[0]]
    assert redis_client.pexpiretime(timelines.timeline_key(active.id)) == expiry
    assert _timeline(redis_client, dormant) == []  # follows only the star: merged at read
    window = settings.FEED_ACTIVE_DAYS * 86400
    assert redis_client.ttl(timelines.timeline_key(dormant.id)) in (window, window - 1)
    assert redis_client.exists(timelines.timeline_key(author.id)) == 0
    assert out.getvalue() == "rebuilt 2 timelines and 1 celebrity lists\n"


@pytest.mark.parametrize("bad", ["99999999999999999999", "-1", "abc", "0"])
def test_an_argument_that_is_no_user_id_is_a_usage_error(bad):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="is not a user ID"):
        call_command("rebuild_timelines", bad, stdout=io.StringIO())


def test_a_user_id_of_no_active_user_is_refused_and_nothing_rebuilt(make_user, redis_client):
    from django.core.management.base import CommandError

    ann = make_user("ann")
    gone = make_user("gone")
    gone.is_active = False
    gone.save(update_fields=["is_active"])

    with pytest.raises(CommandError) as refused:
        call_command("rebuild_timelines", str(ann.id), str(gone.id), "123", stdout=io.StringIO())

    assert str(refused.value) == f"No active user with ID 123, {gone.id}; nothing rebuilt."
    assert redis_client.exists(timelines.timeline_key(ann.id)) == 0
