import time

import pytest

from feed import timelines
from instagram.celery import app as celery_app
from instagram.models import OutboxEvent, OutboxStatus
from instagram.redis import get_redis

ALL = "__all__"


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_real_worker_fans_a_new_post_out_after_commit(
    make_user, client_for, media_for, settle, redis_client
):
    from celery.contrib.testing.worker import start_worker

    author = make_user("author", shard="shard_1")
    fan = make_user("fan", shard="shard_0")
    client_for(fan).post(f"/api/v1/users/{author.id}/follow")
    settle()
    assert client_for(fan).get("/api/v1/feed").json()["posts"] == []  # builds the timeline
    media_ids = [str(i) for i in media_for(author, 1)]
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()

    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, queues=["fanout"], shutdown_timeout=30
    ):
        created = client_for(author).post("/api/v1/posts", {"media_ids": media_ids}, format="json")
        post_id = int(created.json()["post_id"])
        deadline = time.monotonic() + 20
        key = timelines.timeline_key(fan.id)
        while time.monotonic() < deadline and get_redis().zcard(key) < 2:
            time.sleep(0.1)

    assert get_redis().zrange(key, 0, -1) == [timelines.SENTINEL.encode(), b"%019d" % post_id]
    feed = client_for(fan).get("/api/v1/feed").json()
    assert [int(p["post_id"]) for p in feed["posts"]] == [post_id]


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_post_made_while_the_broker_is_down_is_fanned_out_once_it_is_back(
    make_user, client_for, media_for, settle, redis_client, broker_refusing
):
    """The fan-out waits in the outbox, not in a lost message: the sweep hands it to a real
    worker later, and followers' timelines get the post."""
    from celery.contrib.testing.worker import start_worker

    from feed.tasks import fanout_post_task

    author = make_user("author", shard="shard_1")
    fan = make_user("fan", shard="shard_0")
    client_for(fan).post(f"/api/v1/users/{author.id}/follow")
    settle()
    assert client_for(fan).get("/api/v1/feed").json()["posts"] == []  # builds the timeline
    media_ids = [str(i) for i in media_for(author, 1)]  # rendered here: drop their messages
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    with broker_refusing(fanout_post_task):
        created = client_for(author).post("/api/v1/posts", {"media_ids": media_ids}, format="json")
    post_id = int(created.json()["post_id"])
    event = OutboxEvent.objects.using("shard_1").get(kind="post.published")
    waiting = (event.payload, event.status, event.attempts)
    key = timelines.timeline_key(fan.id)
    before = get_redis().zrange(key, 0, -1)

    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, queues=["fanout"], shutdown_timeout=30
    ):
        settle()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and get_redis().zcard(key) < 2:
            time.sleep(0.1)

    event.refresh_from_db()
    assert created.status_code == 201
    assert waiting == ({"post_id": post_id}, OutboxStatus.PENDING, 1)
    assert before == [timelines.SENTINEL.encode()]
    assert (event.status, event.attempts) == (OutboxStatus.DONE, 2)
    assert get_redis().zrange(key, 0, -1) == [timelines.SENTINEL.encode(), b"%019d" % post_id]
    feed = client_for(fan).get("/api/v1/feed").json()
    assert [int(p["post_id"]) for p in feed["posts"]] == [post_id]


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_follow_made_while_the_broker_is_down_is_merged_once_it_is_back(
    make_user, client_for, media_for, settle, redis_client, broker_refusing
):
    """The followee's recent posts join the follower's live timeline when the broker returns:
    the merge waits in the outbox, not in a lost message."""
    from celery.contrib.testing.worker import start_worker

    from feed.tasks import follow_merge_task

    author = make_user("author", shard="shard_1")
    fan = make_user("fan", shard="shard_0")
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, queues=["fanout"], shutdown_timeout=30
    ):
        media_ids = [str(i) for i in media_for(author, 1)]
        post_id = int(
            client_for(author)
            .post("/api/v1/posts", {"media_ids": media_ids}, format="json")
            .json()["post_id"]
        )
        assert client_for(fan).get("/api/v1/feed").json()["posts"] == []  # builds the timeline
        with broker_refusing(follow_merge_task):
            followed = client_for(fan).post(f"/api/v1/users/{author.id}/follow")
        event = OutboxEvent.objects.using("shard_1").get(kind="graph.follow_started")
        waiting = (event.status, event.attempts)
        key = timelines.timeline_key(fan.id)
        before = get_redis().zrange(key, 0, -1)
        settle()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and get_redis().zcard(key) < 2:
            time.sleep(0.1)

    event.refresh_from_db()
    assert followed.json() == {"status": "following"}
    assert waiting == (OutboxStatus.PENDING, 1)
    assert before == [timelines.SENTINEL.encode()]
    assert (event.status, event.attempts) == (OutboxStatus.DONE, 2)
    assert get_redis().zrange(key, 0, -1) == [timelines.SENTINEL.encode(), b"%019d" % post_id]
