import random

import pytest

from accounts.services.graph import _following_add
from feed import timelines
from feed.services import post_fanout, timeline_follow_merge
from posts.services.posts import post_publish_if_ready


@pytest.fixture
def follow(settle):
    def run(follower, *followees):
        for followee in followees:
            _following_add(follower.id, followee.id)
        settle()

    return run


@pytest.fixture
def publish(media_for, make_user):
    """A published post without going through HTTP (fan-out is called by the test)."""
    from posts.services.posts import post_create

    def run(author, caption: str = "") -> int:
        post = post_create(author=author, media_ids=media_for(author, 1), caption=caption)
        assert post_publish_if_ready(post=post)
        return post.id

    return run


@pytest.fixture
def deep_feed(make_user, follow, publish, client_for, settings, redis_client):
    """A viewer whose timeline (8) and star's list (3) have been cut, with an account followed
    late merged down to the timeline's floor, among 40 posts of five sources, oldest first."""
    settings.FEED_TIMELINE_LENGTH = 8
    settings.FEED_CELEBRITY_POSTS = 3
    settings.FEED_FANOUT_THRESHOLD = 2

    def build():
        rng = random.Random(5)
        viewer = make_user("viewer", shard="shard_0")
        regular = [make_user(f"a{n}", shard=f"shard_{n % 2}") for n in range(2)]
        star = make_user("star", shard="shard_1")
        late = make_user("late", shard="shard_0")
        follow(viewer, *regular, star)
        follow(make_user("fan", shard="shard_0"), star)  # two followers: over the threshold
        client_for(viewer).get("/api/v1/feed")  # builds the timeline
        posts = []
        for n in range(40):
            author = rng.choice([viewer, star, late, *regular])
            post_id = publish(author, f"post {n}")
            post_fanout(post_id=post_id)
            posts.append((post_id, author.username))
        follow(viewer, late)
        floor = timelines.timeline_floor(viewer.id)
        merged = [p for p, author in posts if author == "late" and p >= floor]
        assert timeline_follow_merge(follower_id=viewer.id, followee_id=late.id) == len(merged)
        return viewer, posts

    return build
