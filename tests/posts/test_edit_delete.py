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


def test_an_edit_does_not_link_a_user_who_blocked_the_author(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann, caption="#old words")
    client_for(ben).post(f"/api/v1/users/{ann.id}/block")

    response = client_for(ann).patch(
        f"/api/v1/posts/{post_id}", {"caption": "#new with @ben"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["caption"], response.json()["mentions"]) == ("#new with @ben", [])
    post = Post.objects.using("shard_0").get()
    assert (post.caption, post.hashtags, post.mentions) == ("#new with @ben", ["new"], [])
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

    assert [(r.status_code, r.json()["error"]["code"]) for r in (edit, delete)] == [
        (403, "permission_denied")
    ] * 2
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "caption_too_long"
    assert Post.objects.using("shard_0").get().caption == "mine"


def test_someone_elses_post_they_may_not_see_is_a_404_to_edit_or_delete(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann", private=True)
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann, caption="mine")

    edit = client_for(ben).patch(f"/api/v1/posts/{post_id}", {"caption": "x"}, format="json")
    delete = client_for(ben).delete(f"/api/v1/posts/{post_id}")

    assert [(r.status_code, r.json()["error"]["code"]) for r in (edit, delete)] == [
        (404, "not_found")
    ] * 2
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


def test_a_restored_post_whose_media_finished_while_it_was_deleted_is_published(
    make_user, client_for, media_for, settle, redis_client
):
    from media.services.processing import media_process
    from posts.services.posts import post_restore

    ann = make_user("ann", shard="shard_0")
    [media_id] = media_for(ann, 1, process=False)
    created = client_for(ann).post("/api/v1/posts", {"media_ids": [str(media_id)]}, format="json")
    post_id = int(created.json()["post_id"])
    assert client_for(ann).delete(f"/api/v1/posts/{post_id}").status_code == 204
    media_process(media_id=media_id)  # ready now; a deleted post is not published
    settle()  # the media's hooks have run
    assert Post.objects.using("shard_0").get(id=post_id).published_at is None

    assert post_restore(post_id=post_id) is True
    assert post_restore(post_id=post_id) is False  # restored once
    settle()

    post = Post.objects.using("shard_0").get(id=post_id)
    counters = UserCounters.objects.using("shard_0").get(user_id=ann.id)
    assert (post.deleted_at, post.published_at is not None) == (None, True)
    assert counters.post_count == 1
    assert client_for(None).get(f"/api/v1/posts/{post_id}").status_code == 200
