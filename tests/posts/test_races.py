"""Overlapping writes, interleaved deterministically: a second connection holds a lock until
every request under test is waiting for a lock, then lets them all go at once."""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.db import connections

from accounts.models import UserCounters
from posts.models import LikedPost, Location, Post, PostHashtag, PostMention
from tests.locks import lock_waiters, own_connections

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL, transaction=True)


@contextmanager
def _held(alias: str, sql: str, params: list | None = None) -> Iterator[None]:
    """The lock `sql` takes, held by a connection of its own until the block ends."""
    holder = connections.create_connection(alias)
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute(sql, params or [])
        yield
    finally:
        holder.rollback()
        holder.close()


def _wait_for_lock_waiters(alias: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while (waiting := lock_waiters(alias)) < count:
        assert time.monotonic() < deadline, f"{waiting} sessions wait for a lock, not {count}"
        time.sleep(0.02)


def _post_row_lock(post_id: int) -> str:
    return f"SELECT 1 FROM {Post._meta.db_table} WHERE id = {int(post_id)} FOR UPDATE"


_INDEXED = {  # caption: (hashtag rows, mentioned usernames)
    "#sunset with @ben": (["sunset"], ["ben"]),
    "#sunset with @cat": (["sunset"], ["cat"]),
    "hello @ben": ([], ["ben"]),
    "hello @ben and @cat": ([], ["ben", "cat"]),
}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("#sunset with @ben", "#sunset with @cat"),  # one tag inserted twice: a unique violation
        ("hello @ben", "hello @ben and @cat"),  # mentions have no constraint to catch a double
    ],
)
def test_overlapping_edits_leave_one_set_of_index_rows(
    make_user, client_for, post_for, redis_client, first, second
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_0")
    cat = make_user("cat", shard="shard_1")
    post_id = post_for(ann, caption="hello")

    def edit(caption: str) -> Callable:
        return own_connections(
            lambda: client_for(ann).patch(
                f"/api/v1/posts/{post_id}", {"caption": caption}, format="json"
            )
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        with _held("shard_0", _post_row_lock(post_id)):
            edits = [pool.submit(edit(first)), pool.submit(edit(second))]
            _wait_for_lock_waiters("shard_0", 2)
        statuses = [future.result(timeout=60).status_code for future in edits]

    post = Post.objects.using("shard_0").get(id=post_id)
    tags = list(PostHashtag.objects.using("shard_0").values_list("tag", flat=True))
    mentioned = PostMention.objects.using("shard_0").values_list("user_id", flat=True)
    names = {ben.id: "ben", cat.id: "cat"}
    assert statuses == [200, 200]
    assert post.caption in (first, second)
    assert (tags, sorted(names[user_id] for user_id in mentioned)) == _INDEXED[post.caption]
    assert (post.hashtags, [m["username"] for m in post.mentions]) == _INDEXED[post.caption]


def test_an_edit_waiting_for_a_delete_is_a_404_and_indexes_nothing(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann", shard="shard_0")
    post_id = post_for(ann, caption="#old words")

    with ThreadPoolExecutor(max_workers=2) as pool:
        with _held("shard_0", _post_row_lock(post_id)):
            delete = pool.submit(
                own_connections(lambda: client_for(ann).delete(f"/api/v1/posts/{post_id}"))
            )
            _wait_for_lock_waiters("shard_0", 1)
            edit = pool.submit(
                own_connections(
                    lambda: client_for(ann).patch(
                        f"/api/v1/posts/{post_id}", {"caption": "#new words"}, format="json"
                    )
                )
            )
            _wait_for_lock_waiters("shard_0", 2)
        deleted, edited = delete.result(timeout=60), edit.result(timeout=60)

    post = Post.objects.using("shard_0").get(id=post_id)
    assert (deleted.status_code, edited.status_code) == (204, 404)
    assert edited.json()["error"]["code"] == "not_found"
    assert post.deleted_at is not None
    assert (post.caption, post.hashtags) == ("#old words", ["old"])
    assert PostHashtag.objects.using("shard_0").count() == 0


def test_deleting_a_post_the_media_worker_is_publishing_keeps_post_count_exact(
    make_user, client_for, media_for, redis_client
):
    from media.services.processing import media_process

    ann = make_user("ann", shard="shard_0")
    media_ids = media_for(ann, 1, process=False)
    created = client_for(ann).post(
        "/api/v1/posts", {"media_ids": [str(media_ids[0])]}, format="json"
    )
    post_id = int(created.json()["post_id"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        with _held("shard_0", _post_row_lock(post_id)):
            # The worker's publish is queued on the post's row first, so it commits first.
            worker: Future = pool.submit(
                own_connections(lambda: media_process(media_id=media_ids[0]))
            )
            _wait_for_lock_waiters("shard_0", 1)
            delete = pool.submit(
                own_connections(lambda: client_for(ann).delete(f"/api/v1/posts/{post_id}"))
            )
            _wait_for_lock_waiters("shard_0", 2)
        worker.result(timeout=60)
        deleted = delete.result(timeout=60)

    post = Post.objects.using("shard_0").get(id=post_id)
    assert created.status_code == 201
    assert deleted.status_code == 204
    assert post.published_at is not None
    assert post.deleted_at is not None
    assert UserCounters.objects.using("shard_0").get(user_id=ann.id).post_count == 0
    assert client_for(ann).get(f"/api/v1/users/{ann.id}").json()["post_count"] == 0


def test_overlapping_creates_of_the_same_location_make_one_row(make_user, client_for):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")

    def create(user, name: str, lat: float) -> Callable:
        return own_connections(
            lambda: client_for(user).post(
                "/api/v1/locations", {"name": name, "lat": lat, "lng": 16.3655}, format="json"
            )
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        # Lets both read and then holds their inserts, so both have looked before either writes.
        with _held("default", f"LOCK TABLE {Location._meta.db_table} IN SHARE MODE"):
            creates = [
                pool.submit(create(ann, "Café Central", 48.2104)),
                pool.submit(create(ben, "  café  central ", 48.2105)),
            ]
            _wait_for_lock_waiters("default", 2)
        answers = [future.result(timeout=60) for future in creates]

    places = list(Location.objects.values_list("id", "name", "name_normalized"))
    assert sorted(answer.status_code for answer in answers) == [200, 201]
    assert len(places) == 1
    assert [answer.json()["location_id"] for answer in answers] == [str(places[0][0])] * 2
    assert places[0][2] == "café central"


def test_a_reply_and_its_comment_deleted_at_once_both_go_and_keep_the_counts(
    make_user, client_for, post_for, redis_client
):
    """Each delete locks the post first (it changes the post's count either way): a reply's
    delete locked the reply, then its comment, and the comment's the comment, then its replies,
    so the two could deadlock."""
    from posts.models import Comment

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann)
    api = client_for(ann)
    top = api.post(f"/api/v1/posts/{post_id}/comments", {"text": "top"}, format="json").json()
    reply = (
        client_for(ben)
        .post(
            f"/api/v1/posts/{post_id}/comments",
            {"text": "reply", "parent_id": top["comment_id"]},
            format="json",
        )
        .json()
    )

    with ThreadPoolExecutor(max_workers=2) as pool:
        with _held("shard_0", _post_row_lock(post_id)):
            first = pool.submit(
                own_connections(
                    lambda: client_for(ben).delete(f"/api/v1/comments/{reply['comment_id']}")
                )
            )
            _wait_for_lock_waiters("shard_0", 1)
            second = pool.submit(
                own_connections(lambda: api.delete(f"/api/v1/comments/{top['comment_id']}"))
            )
            _wait_for_lock_waiters("shard_0", 2)
        statuses = [first.result(timeout=60).status_code, second.result(timeout=60).status_code]

    assert statuses == [204, 204]
    assert Post.objects.using("shard_0").get(id=post_id).comment_count == 0
    assert Comment.objects.using("shard_0").filter(deleted_at__isnull=True).count() == 0
    assert Comment.objects.using("shard_0").get(id=int(top["comment_id"])).reply_count == 0


def test_two_creates_at_once_do_not_pass_the_daily_limit_together(
    make_user, client_for, media_for, settings, redis_client
):
    from posts.models import Hashtag

    settings.POSTS_PER_DAY = 1
    ann = make_user("ann", shard="shard_0")
    media = [[str(i) for i in media_for(ann, 1)] for _ in range(2)]

    def create(media_ids) -> Callable:
        return own_connections(
            lambda: client_for(ann).post(
                "/api/v1/posts", {"media_ids": media_ids, "caption": "#race"}, format="json"
            )
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        # Another session writing the same new hashtag holds both once past the first check of
        # the limit, and lets them on together, as two taps a moment apart.
        new_tag = f"INSERT INTO {Hashtag._meta.db_table} (name, created_at) VALUES ('race', now())"
        with _held("default", new_tag):
            creates = [pool.submit(create(ids)) for ids in media]
            _wait_for_lock_waiters("default", 2)
        answers = sorted((f.result(timeout=60) for f in creates), key=lambda a: a.status_code)

    assert [answer.status_code for answer in answers] == [201, 429]
    assert answers[1].json()["error"]["code"] == "rate_limited"
    assert Post.objects.using("shard_0").filter(author_id=ann.id).count() == 1


def test_a_reply_posted_while_its_comment_is_deleted_is_not_a_500(
    make_user, client_for, post_for, redis_client
):
    """A delete locks the post, then the comment; a reply locked the comment (its parent), then
    the post (its count): overlapping, the two locked in opposite orders and deadlocked."""
    from posts.models import Comment

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann)
    top = (
        client_for(ann)
        .post(f"/api/v1/posts/{post_id}/comments", {"text": "top"}, format="json")
        .json()
    )
    host, replier = client_for(ann), client_for(ben)
    host.raise_request_exception = replier.raise_request_exception = False  # answer as served

    with ThreadPoolExecutor(max_workers=2) as pool:
        with _held("shard_0", _post_row_lock(post_id)):
            delete = pool.submit(
                own_connections(lambda: host.delete(f"/api/v1/comments/{top['comment_id']}"))
            )
            _wait_for_lock_waiters("shard_0", 1)
            reply = pool.submit(
                own_connections(
                    lambda: replier.post(
                        f"/api/v1/posts/{post_id}/comments",
                        {"text": "reply", "parent_id": top["comment_id"]},
                        format="json",
                    )
                )
            )
            _wait_for_lock_waiters("shard_0", 2)
        statuses = [delete.result(timeout=60).status_code, reply.result(timeout=60).status_code]

    assert statuses == [204, 400]  # the delete waited first: the reply finds its parent gone
    live = Comment.objects.using("shard_0").filter(post_id=post_id, deleted_at__isnull=True)
    assert Post.objects.using("shard_0").get(id=post_id).comment_count == live.count() == 0


@pytest.fixture
def relay_at_once(monkeypatch):
    """Relayed outbox events applied at commit, as a worker would apply them at once."""
    from instagram import tasks
    from instagram.outbox import outbox_event_process

    monkeypatch.setattr(
        tasks.outbox_relay_task,
        "apply_async",
        lambda args, **kwargs: outbox_event_process(using=args[0], event_id=args[1]),
    )


def _counts(post_id: int) -> tuple[int, int]:
    return (
        Post.objects.using("shard_0").filter(id=post_id).values_list("like_count", "comment_count")
    ).get()


def test_a_like_in_flight_when_the_block_commits_is_taken_off_too(
    make_user, post_for, settle, redis_client, relay_at_once, monkeypatch
):
    from accounts.services.graph import block_create
    from posts.services import likes

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann)
    checked, go = threading.Event(), threading.Event()
    real_check = likes._visible_post_or_404

    def visible_then_wait(user, post_id):
        post = real_check(user, post_id)
        checked.set()
        assert go.wait(15)
        return post

    monkeypatch.setattr(likes, "_visible_post_or_404", visible_then_wait)
    with ThreadPoolExecutor(max_workers=1) as pool:
        like = pool.submit(own_connections(lambda: likes.post_like(user=ben, post_id=post_id)))
        assert checked.wait(15)
        block_create(blocker=ann, blocked_id=ben.id)  # its first removal runs now, at commit
        go.set()
        like.result(timeout=30)
    after_first = _counts(post_id)
    settle()  # the net, applied once NET_GRACE has passed

    assert after_first == (1, 0)
    assert _counts(post_id) == (0, 0)
    assert not LikedPost.objects.using("shard_1").filter(user_id=ben.id).exists()


def test_two_blocks_by_one_user_at_once_do_not_deadlock(
    make_user, post_for, redis_client, relay_at_once, monkeypatch
):
    from accounts.services.graph import block_create
    from instagram.models import OutboxEvent
    from posts.services import blocking
    from posts.services.comments import comment_create
    from posts.services.likes import post_like

    ann = make_user("ann", shard="shard_0")
    ben, dan = make_user("ben", shard="shard_1"), make_user("dan", shard="shard_1")
    p1, p3 = post_for(ann), post_for(ann)
    post_like(user=ben, post_id=p1)
    comment_create(author=ben, post_id=p3, text="b")
    post_like(user=dan, post_id=p3)
    comment_create(author=dan, post_id=p1, text="d")
    both_liked, real, seen = threading.Barrier(2, timeout=15), blocking.comment_soft_delete, set()

    def soft_delete(comment):  # each removal waits at its first comment for the other's likes
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            try:
                both_liked.wait()
            except threading.BrokenBarrierError:
                pass
        return real(comment)

    monkeypatch.setattr(blocking, "comment_soft_delete", soft_delete)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(own_connections(lambda u=u: block_create(blocker=ann, blocked_id=u.id)))
            for u in (ben, dan)
        ]
        for run in runs:
            run.result(timeout=60)

    failed = OutboxEvent.objects.using("shard_0").exclude(last_error="")
    assert list(failed.values_list("kind", "last_error")) == []
    assert [_counts(p) for p in (p1, p3)] == [(0, 0), (0, 0)]
