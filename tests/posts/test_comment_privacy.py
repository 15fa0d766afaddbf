"""A comment the comment list hides from a viewer answers every write path like a missing one."""

import pytest

from accounts.models import User
from accounts.services.graph import block_create
from posts.models import Comment, CommentLike, Post

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)

NOT_FOUND = {"error": {"code": "not_found", "message": "Comment not found."}}


def _comment_on(client, post_id: int, text: str, parent_id: str | None = None) -> str:
    body = {"text": text, **({"parent_id": parent_id} if parent_id else {})}
    response = client.post(f"/api/v1/posts/{post_id}/comments", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["comment_id"]


def _deactivate(user) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


# How the target comes to be hidden from the viewer, and whether it is the top comment or the
# reply under it (the top comment is by `commenter`, the reply by `replier`).
HIDDEN = {
    "author_deactivated": ("top", lambda commenter, viewer: _deactivate(commenter)),
    "parent_author_deactivated": ("reply", lambda commenter, viewer: _deactivate(commenter)),
    "parent_author_blocks_viewer": (
        "reply",
        lambda commenter, viewer: block_create(blocker=commenter, blocked_id=viewer.id),
    ),
    "viewer_blocks_parent_author": (
        "reply",
        lambda commenter, viewer: block_create(blocker=viewer, blocked_id=commenter.id),
    ),
}


@pytest.mark.parametrize("method", ["like", "unlike", "delete", "reply"])
@pytest.mark.parametrize("hidden_by", list(HIDDEN))
def test_a_comment_hidden_from_the_viewer_answers_like_a_missing_one_and_changes_nothing(
    make_user, client_for, post_for, redis_client, hidden_by, method
):
    host = make_user("host", shard="shard_0")
    commenter = make_user("commenter", shard="shard_1")
    replier = make_user("replier", shard="shard_0")
    viewer = make_user("viewer", shard="shard_1")
    post_id = post_for(host)
    top = _comment_on(client_for(commenter), post_id, "top")
    reply = _comment_on(client_for(replier), post_id, "reply", top)
    which, hide = HIDDEN[hidden_by]
    target = top if which == "top" else reply
    assert client_for(viewer).post(f"/api/v1/comments/{target}/like").status_code == 200
    hide(commenter, viewer)
    listed = client_for(viewer).get(f"/api/v1/posts/{post_id}/comments").json()["comments"]
    missing = str(int(reply) + 1)
    api = client_for(viewer)

    def act(comment_id: str):
        if method == "like":
            return api.post(f"/api/v1/comments/{comment_id}/like")
        if method == "unlike":
            return api.delete(f"/api/v1/comments/{comment_id}/like")
        if method == "delete":
            return api.delete(f"/api/v1/comments/{comment_id}")
        body = {"text": "me too", "parent_id": comment_id}
        return api.post(f"/api/v1/posts/{post_id}/comments", body, format="json")

    response = act(target)
    on_missing = act(missing)

    assert target not in [c["comment_id"] for c in listed]  # what the list hides...
    assert (response.status_code, response.json()) == (on_missing.status_code, on_missing.json())
    if method == "reply":
        assert response.status_code == 400
        assert response.json() == {
            "error": {"code": "invalid_parent", "message": "Reply to a comment on this post."}
        }
    else:
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    # ... and nothing changed.
    assert list(CommentLike.objects.using("shard_0").values_list("comment_id", "user_id")) == [
        (int(target), viewer.id)
    ]
    assert Comment.objects.using("shard_0").get(id=target).like_count == 1
    assert list(
        Comment.objects.using("shard_0").order_by("id").values_list("text", "deleted_at")
    ) == [("top", None), ("reply", None)]
    assert Comment.objects.using("shard_0").get(id=top).reply_count == 1
    assert Post.objects.using("shard_0").get(id=post_id).comment_count == 2


def test_a_comment_hidden_from_everyone_is_a_404_even_to_its_post_author_and_a_block_is_not(
    make_user, client_for, post_for, redis_client
):
    host = make_user("host", shard="shard_0")
    gone = make_user("gone", shard="shard_1")
    pest = make_user("pest", shard="shard_1")
    replier = make_user("replier", shard="shard_0")
    stranger = make_user("stranger", shard="shard_1")
    post_id = post_for(host)
    by_gone = _comment_on(client_for(gone), post_id, "by gone")
    under_gone = _comment_on(client_for(replier), post_id, "under gone", by_gone)
    by_pest = _comment_on(client_for(pest), post_id, "by pest")
    under_pest = _comment_on(client_for(replier), post_id, "under pest", by_pest)
    _deactivate(gone)
    block_create(blocker=host, blocked_id=pest.id)
    block_create(blocker=pest, blocked_id=replier.id)

    # The list hides these from everyone: no one learns they exist.
    host_on_gone = client_for(host).delete(f"/api/v1/comments/{by_gone}")
    host_under_gone = client_for(host).delete(f"/api/v1/comments/{under_gone}")
    replier_under_gone = client_for(replier).delete(f"/api/v1/comments/{under_gone}")
    stranger_on_gone = client_for(stranger).delete(f"/api/v1/comments/{by_gone}")
    # A block hides these from the deleter only; others still see them, so the post's author
    # and the comment's author may still remove them.
    replier_under_pest = client_for(replier).delete(f"/api/v1/comments/{under_pest}")
    host_on_pest = client_for(host).delete(f"/api/v1/comments/{by_pest}")

    hidden = (host_on_gone, host_under_gone, replier_under_gone, stranger_on_gone)
    assert [r.status_code for r in hidden] == [404] * 4
    assert [r.json() for r in hidden] == [NOT_FOUND] * 4
    assert (host_on_pest.status_code, replier_under_pest.status_code) == (204, 204)
    kept = {
        text: at is None
        for text, at in Comment.objects.using("shard_0").values_list("text", "deleted_at")
    }
    assert kept == {"by gone": True, "under gone": True, "by pest": False, "under pest": False}
    assert Post.objects.using("shard_0").get(id=post_id).comment_count == 2
