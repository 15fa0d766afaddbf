"""Posts and comments in the admin: opened and saved on the shard their ID names."""

import pytest

from posts.models import Comment, Post

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_editing_a_post_in_the_admin_saves_it_on_its_shard_as_a_new_version(
    make_user, post_for, client_for, admin_client_all, redis_client
):
    ann = make_user("ann", shard="shard_1")
    post_id = post_for(ann, caption="before")
    shown_before = client_for(None).get(f"/api/v1/posts/{post_id}").json()["caption"]
    version = Post.objects.using("shard_1").get(id=post_id).updated_at
    url = f"/admin/posts/post/{post_id}/change/"

    page = admin_client_all.get(url)
    saved = admin_client_all.post(url, {"caption": "after", "location_id": ""})

    post = Post.objects.using("shard_1").get(id=post_id)
    assert page.status_code == 200
    assert saved.status_code == 302
    assert (shown_before, post.caption) == ("before", "after")
    assert post.updated_at > version
    assert client_for(None).get(f"/api/v1/posts/{post_id}").json()["caption"] == "after"


def test_the_sharded_admin_neither_adds_nor_hard_deletes(
    make_user, post_for, client_for, admin_client_all, redis_client
):
    ann = make_user("ann", shard="shard_1")
    post_id = post_for(ann)
    comment = client_for(ann).post(
        f"/api/v1/posts/{post_id}/comments", {"text": "hi"}, format="json"
    )
    comment_id = comment.json()["comment_id"]

    answers = [
        admin_client_all.get("/admin/posts/post/add/").status_code,
        admin_client_all.post(f"/admin/posts/post/{post_id}/delete/", {"post": "yes"}).status_code,
        admin_client_all.post(
            f"/admin/posts/comment/{comment_id}/delete/", {"post": "yes"}
        ).status_code,
    ]
    listed = admin_client_all.get("/admin/posts/post/?shard=shard_1")

    assert answers == [403, 403, 403]
    assert listed.status_code == 200
    assert b'value="delete_selected"' not in listed.content
    assert Post.objects.using("shard_1").filter(id=post_id, deleted_at__isnull=True).count() == 1
    assert Comment.objects.using("shard_1").filter(id=comment_id).count() == 1
