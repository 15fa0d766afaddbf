"""A post's `mentions` leave out the users its viewer may not see (deactivated, or blocked
either way), in every answer that shows the post; the caption stays as its author wrote it."""

import pytest

from accounts.models import User
from accounts.services.graph import _following_add, block_create
from feed.services import post_fanout

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


@pytest.fixture
def mentioning(make_user, post_for, settle, redis_client):
    author = make_user("author", shard="shard_0")
    named = make_user("named", shard="shard_1")
    other = make_user("other", shard="shard_0")
    viewer = make_user("viewer", shard="shard_1")
    _following_add(viewer.id, author.id)
    settle()
    post_id = post_for(author, caption="with @named and @other")
    post_fanout(post_id=post_id)
    return author, named, other, viewer, post_id


def _everywhere(client_for, viewer, author, post_id) -> list[list[str]]:
    """The mentioned usernames of the post in its detail, its author's grid and the feed."""
    api = client_for(viewer)
    answers = [
        api.get(f"/api/v1/posts/{post_id}").json(),
        api.get(f"/api/v1/users/{author.id}/posts").json()["posts"][0],
        api.get("/api/v1/feed").json()["posts"][0],
    ]
    assert [a["post_id"] for a in answers] == [str(post_id)] * 3
    return [[m["username"] for m in a["mentions"]] for a in answers]


@pytest.mark.parametrize("hidden_by", ["deactivated", "blocks_viewer", "blocked_by_viewer"])
def test_a_mention_of_someone_the_viewer_may_not_see_is_left_out_everywhere(
    mentioning, client_for, hidden_by
):
    author, named, _, viewer, post_id = mentioning
    assert _everywhere(client_for, viewer, author, post_id) == [["named", "other"]] * 3

    if hidden_by == "deactivated":
        User.objects.filter(pk=named.pk).update(is_active=False)
    elif hidden_by == "blocks_viewer":
        block_create(blocker=named, blocked_id=viewer.id)
    else:
        block_create(blocker=viewer, blocked_id=named.id)

    assert _everywhere(client_for, viewer, author, post_id) == [["other"]] * 3
    body = client_for(viewer).get(f"/api/v1/posts/{post_id}").json()
    assert body["caption"] == "with @named and @other"


def test_a_block_hides_the_mention_from_the_blocked_viewer_only(mentioning, client_for):
    _, named, other, viewer, post_id = mentioning
    block_create(blocker=named, blocked_id=viewer.id)

    shown = client_for(other).get(f"/api/v1/posts/{post_id}").json()["mentions"]

    assert [m["username"] for m in shown] == ["named", "other"]
