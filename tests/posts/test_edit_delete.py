import pytest

from accounts.models import UserCounters
from media.models import Media
from posts.models import Post, PostMedia, PostMention

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_author_edits_caption_and_alt_text(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    make_user("ben")
    post_id = post_for(ann, caption="#old words", media=2)

    response = client_for(ann).patch(
        f"/api/v1/posts/{post_id}",
        {"caption": "#new words with @ben", "alt_text": ["a", "b"]},
        format="json",
    )
    old_tag = client_for(None).get("/api/v1/tags/old/posts").json()["posts"]
    new_tag = client_for(None).get("/api/v1/tags/new/posts").json()["posts"]

    assert response.status_code == 200
    assert response.json()["caption"] == "#new words with @ben"
    assert response.json()["hashtags"] == ["new"]
    assert [m["username"] for m in response.json()["mentions"]] == ["ben"]
    assert [m["alt_text"] for m in response.json()["media"]] == ["a", "b"]
    assert old_tag == []
    assert [p["post_id"] for p in new_tag] == [str(post_id)]


def test_an_edit_cannot_mention_a_user_who_blocked_the_author(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann, caption="#old words")
    client_for(ben).post(f"/api/v1/users/{ann.id}/block")

    response = client_for(ann).patch(
        f"/api/v1/posts/{post_id}", {"caption": "#new with @ben"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mentioned_user_blocked"
    post = Post.objects.using("shard_0").get()
    assert (post.caption, post.hashtags, post.mentions) == ("#old words", ["old"], [])
    assert list(PostMention.objects.using("shard_0").values_list("user_id", flat=True)) == []


def test_only_the_author_edits_or_deletes(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    ben = make_user("ben")
    post_id = post_for(ann, caption="mine")

    edit = client_for(ben).patch(f"/api/v1/posts/{post_id}", {"caption": "x"}, format="json")
    delete = client_for(ben).delete(f"/api/v1/posts/{post_id}")
    too_long = client_for(ann).patch(
        f"/api/v1/posts/{post_id}", {"caption": "x" * 2201}, format="json"
    )

    assert edit.status_code == delete.status_code == 404
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "caption_too_long"
    assert Post.objects.using("shard_0").get().caption == "mine"


def test_delete_removes_the_post_everywhere_at_once(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    ben = make_user("ben", shard="shard_1")
    keep = post_for(ann, caption="#tag keep")
    gone = post_for(ann, caption="#tag gone")
    client_for(ben).post(f"/api/v1/posts/{gone}/save")
    media_ids = list(
        PostMedia.objects.using("shard_0").filter(post_id=gone).values_list("media_id", flat=True)
    )

    response = client_for(ann).delete(f"/api/v1/posts/{gone}")
    again = client_for(ann).delete(f"/api/v1/posts/{gone}")

    assert response.status_code == 204
    assert again.status_code == 404
    assert client_for(ben).get(f"/api/v1/posts/{gone}").status_code == 404
    assert client_for(ann).get(f"/api/v1/posts/{gone}").status_code == 404
    user_posts = client_for(ben).get(f"/api/v1/users/{ann.id}/posts").json()["posts"]
    tag_posts = client_for(ben).get("/api/v1/tags/tag/posts").json()["posts"]
    saved = client_for(ben).get("/api/v1/accounts/me/saved").json()["posts"]
    assert [p["post_id"] for p in user_posts] == [str(keep)]
    assert [p["post_id"] for p in tag_posts] == [str(keep)]
    assert saved == []
    assert client_for(ben).get(f"/api/v1/users/{ann.id}").json()["post_count"] == 1
    assert UserCounters.objects.using("shard_0").get(user_id=ann.id).post_count == 1
    released = Media.objects.using("shard_0").filter(id__in=media_ids)
    assert all(m.attached_at is None and m.expires_at is not None for m in released)
