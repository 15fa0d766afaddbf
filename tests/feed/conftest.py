import pytest

from accounts.services.graph import _following_add
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
