"""Deleted and restored posts in the lists every follower reads, and a read's cleanup racing
a follow made again."""

import pytest

from accounts.services.graph import follow_delete
from feed import selectors, timelines
from feed.services import post_fanout, timeline_follow_merge
from instagram.models import OutboxEvent, OutboxStatus
from posts.services.posts import PostEvent, post_delete, post_restore
from tests.feed.test_feed import _feed, _ids, _timeline

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


@pytest.fixture
def star_and_viewer(make_user, follow, client_for, settings, redis_client):
    """A celebrity (two followers, over a threshold of 2) and a follower who read the feed."""
    settings.FEED_FANOUT_THRESHOLD = 2
    viewer = make_user("viewer", shard="shard_0")
    star = make_user("star", shard="shard_1")
    follow(viewer, star)
    follow(make_user("fan", shard="shard_0"), star)
    _feed(client_for(viewer))
    return star, viewer


@pytest.fixture
def followed_post(make_user, follow, publish, client_for, redis_client):
    """A viewer with a timeline, following an author whose post was fanned out to it."""
    viewer = make_user("viewer", shard="shard_0")
    author = make_user("author", shard="shard_1")
    follow(viewer, author)
    _feed(client_for(viewer))
    post_id = publish(author, "kept")
    post_fanout(post_id=post_id)
    return viewer, author, post_id


def test_a_celebritys_deleted_posts_leave_its_list_and_no_first_page_empty(
    star_and_viewer, publish, client_for, redis_client, django_capture_on_commit_callbacks
):
    star, viewer = star_and_viewer
    kept = publish(star, "kept")
    post_fanout(post_id=kept)
    assert _ids(_feed(client_for(viewer))) == [kept]  # the star's list is built
    gone = [publish(star, f"gone {n}") for n in range(21)]
    for post_id in gone:
        post_fanout(post_id=post_id)

    with django_capture_on_commit_callbacks(using="shard_1", execute=True):
        for post_id in gone:
            post_delete(author=star, post_id=post_id)

    listed = timelines.celebrity_posts([star.id], before_id=None, count=50)[star.id]
    assert listed == [kept]
    assert _ids(_feed(client_for(viewer), limit=1)) == [kept]


def test_a_read_drops_a_deleted_post_from_the_celebrity_list_it_read(
    star_and_viewer, publish, client_for, redis_client
):
    star, viewer = star_and_viewer
    kept, gone = publish(star, "kept"), publish(star, "gone")
    for post_id in (kept, gone):
        post_fanout(post_id=post_id)
    _feed(client_for(viewer))
    post_delete(author=star, post_id=gone)  # its after-commit hook never ran (a test transaction)
    assert timelines.celebrity_posts([star.id], before_id=None, count=5)[star.id] == [gone, kept]

    assert _ids(_feed(client_for(viewer))) == [kept]
    assert timelines.celebrity_posts([star.id], before_id=None, count=5)[star.id] == [kept]


def test_a_restored_post_is_back_in_its_followers_feeds(
    followed_post, client_for, redis_client, django_capture_on_commit_callbacks
):
    viewer, author, post_id = followed_post
    post_delete(author=author, post_id=post_id)
    assert _ids(_feed(client_for(viewer))) == []  # and dropped from the timeline

    events = OutboxEvent.objects.using("shard_1").filter(kind=PostEvent.PUBLISHED)
    before = set(events.values_list("id", flat=True))
    with django_capture_on_commit_callbacks(using="shard_1", execute=False) as restored:
        assert post_restore(post_id=post_id) is True
    made = events.exclude(id__in=before)
    assert [(e.payload, e.status) for e in made] == [({"post_id": post_id}, OutboxStatus.PENDING)]
    for callback in restored:  # applied right after commit: the hook sends the fan-out task
        callback()
    assert [e.status for e in events.exclude(id__in=before)] == [OutboxStatus.DONE]
    post_fanout(post_id=post_id)  # the fan-out task, as the worker runs it

    assert _ids(_feed(client_for(viewer))) == [post_id]


def test_a_reads_cleanup_racing_a_follow_made_again_keeps_its_posts(
    followed_post, follow, client_for, redis_client, monkeypatch
):
    viewer, author, post_id = followed_post
    follow_delete(follower=viewer, followee_id=author.id)  # its removal task has not run yet
    real_cleanup = selectors._stale_remove

    def follow_again_meanwhile(*args, **kwargs):
        monkeypatch.setattr(selectors, "_stale_remove", real_cleanup)
        follow(viewer, author)  # between this read's graph read and its cleanup
        timeline_follow_merge(follower_id=viewer.id, followee_id=author.id)
        return real_cleanup(*args, **kwargs)

    monkeypatch.setattr(selectors, "_stale_remove", follow_again_meanwhile)
    assert _ids(_feed(client_for(viewer))) == []  # not followed when it was read

    assert _ids(_feed(client_for(viewer))) == [post_id]


def test_missing_celebrity_lists_are_rebuilt_in_the_same_queries_however_many(
    make_user, follow, publish, client_for, settings, redis_client
):
    from contextlib import ExitStack

    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    settings.FEED_FANOUT_THRESHOLD = 1
    viewer = make_user("viewer", shard="shard_0")
    stars = [make_user(f"star{n}", shard=f"shard_{n % 2}") for n in range(6)]
    follow(viewer, *stars)
    posts = [publish(star) for star in stars]
    for post_id in posts:
        post_fanout(post_id=post_id)
    _feed(client_for(viewer))

    def read_with_missing(n):
        for star in stars[:n]:
            redis_client.delete(timelines.celebrity_key(star.id))
        with ExitStack() as stack:
            caught = [
                stack.enter_context(CaptureQueriesContext(connections[a])) for a in connections
            ]
            page = _ids(_feed(client_for(viewer)))
        return page, sum(len(c.captured_queries) for c in caught)

    answers = [read_with_missing(n) for n in (0, 1, 6)]

    assert [page for page, _ in answers] == [sorted(posts, reverse=True)] * 3
    base = answers[0][1]
    # Two queries (the lists, the late re-read) per shard holding a missing list: 1 list on one
    # shard, then 6 on both.
    assert [count for _, count in answers] == [base, base + 2, base + 4]


def test_posts_of_an_unfollowed_account_written_back_by_a_late_merge_leave_at_the_next_read(
    make_user, follow, publish, client_for, redis_client, settings, monkeypatch
):
    from feed import services
    from feed.services import timeline_follow_remove

    settings.POSTS_PER_DAY = 1000
    viewer = make_user("viewer", shard="shard_0")
    kept = make_user("kept", shard="shard_1")
    gone = make_user("gone", shard="shard_1")
    follow(viewer, kept, gone)
    _feed(client_for(viewer))
    old = publish(kept, "still followed")
    post_fanout(post_id=old)
    for n in range(25):  # more than a page's rounds examine at limit=2
        post_fanout(post_id=publish(gone, f"gone {n}"))
    follow_delete(follower=viewer, followee_id=gone.id)
    timeline_follow_remove(follower_id=viewer.id, followee_id=gone.id)
    monkeypatch.setattr(services, "is_following", lambda *a: True)  # checked before the unfollow
    timeline_follow_merge(follower_id=viewer.id, followee_id=gone.id)  # writes after it
    monkeypatch.undo()

    pages = [_ids(_feed(client_for(viewer), limit=2)) for _ in range(3)]

    assert pages[1:] == [[old], [old]]  # the first read spent its rounds dropping them


def test_a_delete_during_a_celebritys_fanout_leaves_no_post_in_its_list(
    star_and_viewer, publish, client_for, redis_client, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    star, viewer = star_and_viewer
    kept = publish(star, "kept")
    post_fanout(post_id=kept)
    assert _ids(_feed(client_for(viewer))) == [kept]  # the star's list is built
    gone = publish(star, "gone")
    real_add = timelines.celebrity_add

    def delete_meanwhile(author_id, post_id):
        with django_capture_on_commit_callbacks(using="shard_1", execute=True):
            post_delete(author=star, post_id=post_id)  # its hook runs before the add
        real_add(author_id, post_id)

    monkeypatch.setattr(timelines, "celebrity_add", delete_meanwhile)
    post_fanout(post_id=gone)

    assert timelines.celebrity_posts([star.id], before_id=None, count=5)[star.id] == [kept]


def test_a_reads_cleanup_racing_a_restore_puts_the_post_back(
    star_and_viewer, publish, client_for, redis_client, monkeypatch
):
    star, viewer = star_and_viewer
    kept, back = publish(star, "kept"), publish(star, "back")
    for post_id in (kept, back):
        post_fanout(post_id=post_id)
    assert _ids(_feed(client_for(viewer))) == [back, kept]  # the star's list is built
    post_delete(author=star, post_id=back)  # its hook did not reach the list
    real_hydrate = selectors.posts_hydrate

    def restore_meanwhile(*args, **kwargs):
        monkeypatch.setattr(selectors, "posts_hydrate", real_hydrate)
        assert post_restore(post_id=back) is True
        post_fanout(post_id=back)  # finds it still in the list
        return real_hydrate(*args, **kwargs)

    monkeypatch.setattr(selectors, "posts_hydrate", restore_meanwhile)
    assert _ids(_feed(client_for(viewer))) == [kept]  # read while it was deleted

    assert timelines.celebrity_posts([star.id], before_id=None, count=5)[star.id] == [back, kept]
    assert _ids(_feed(client_for(viewer))) == [back, kept]


def test_a_cleanup_that_fails_on_the_database_fails_no_page_and_loses_no_post(
    followed_post, follow, client_for, redis_client, monkeypatch
):
    from django.db import OperationalError

    viewer, author, post_id = followed_post
    follow_delete(follower=viewer, followee_id=author.id)  # the read sees it unfollowed
    real_cleanup = selectors._stale_remove

    def follow_again_meanwhile(*args, **kwargs):
        monkeypatch.setattr(selectors, "_stale_remove", real_cleanup)
        follow(viewer, author)  # between this read's graph read and its cleanup
        return real_cleanup(*args, **kwargs)

    def down(*args):
        raise OperationalError("the shard went away")

    monkeypatch.setattr(selectors, "_stale_remove", follow_again_meanwhile)
    monkeypatch.setattr(selectors, "following_ids_among", down)  # the cleanup's re-check
    answer = client_for(viewer).get("/api/v1/feed")
    monkeypatch.undo()

    assert (answer.status_code, _ids(answer.json())) == (200, [])
    assert _ids(_feed(client_for(viewer))) == [post_id]


def test_an_unfollows_removal_racing_a_follow_made_again_keeps_the_posts(
    followed_post, follow, client_for, redis_client, monkeypatch
):
    from feed import services
    from feed.services import timeline_follow_remove

    viewer, author, post_id = followed_post
    follow_delete(follower=viewer, followee_id=author.id)
    real_remove = timelines.timeline_remove

    def follow_again_meanwhile(user_id, post_ids):
        # Between the removal's check and its write: followed again, and that follow merged.
        follow(viewer, author)
        assert timeline_follow_merge(follower_id=viewer.id, followee_id=author.id) == 1
        real_remove(user_id, post_ids)

    monkeypatch.setattr(services.timelines, "timeline_remove", follow_again_meanwhile)
    assert timeline_follow_remove(follower_id=viewer.id, followee_id=author.id) == 0
    monkeypatch.undo()

    assert _timeline(viewer) == [post_id]
    assert _ids(_feed(client_for(viewer))) == [post_id]
