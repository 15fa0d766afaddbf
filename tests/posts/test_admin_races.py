"""The admin edits posts through the services and never saves a whole row read with its form:
a like, a reply or a delete committed meanwhile survives the save."""

import threading

import pytest
from django.contrib.admin.models import LogEntry

from accounts.models import UserCounters
from posts.admin import PostAdmin
from posts.models import Comment, Like, Post, PostHashtag
from tests.locks import own_connections

ALL = "__all__"


def _meanwhile(monkeypatch, request):
    """Run `request` (another client's, on its own connection) after the admin read the row
    and before it saves."""
    original = PostAdmin.save_model

    def then_save(self, *args):
        done = threading.Thread(target=own_connections(request))
        done.start()
        done.join(30)
        return original(self, *args)

    monkeypatch.setattr(PostAdmin, "save_model", then_save)


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_like_committed_while_the_admin_edits_keeps_its_count(
    make_user, post_for, client_for, admin_client_all, redis_client, monkeypatch
):
    ann = make_user("ann", shard="shard_1")
    ben = make_user("ben", shard="shard_0")
    post_id = post_for(ann, caption="before")
    _meanwhile(monkeypatch, lambda: client_for(ben).post(f"/api/v1/posts/{post_id}/like"))

    saved = admin_client_all.post(
        f"/admin/posts/post/{post_id}/change/", {"caption": "after", "location_id": ""}
    )

    post = Post.objects.using("shard_1").get(id=post_id)
    assert saved.status_code == 302
    assert (post.caption, post.like_count) == ("after", 1)
    assert Like.objects.using("shard_1").filter(post_id=post_id).count() == 1


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_delete_committed_while_the_admin_edits_is_not_undone(
    make_user, post_for, client_for, admin_client_all, redis_client, monkeypatch
):
    ann = make_user("ann", shard="shard_1")
    post_id = post_for(ann, caption="before")
    statuses = []
    _meanwhile(
        monkeypatch,
        lambda: statuses.append(client_for(ann).delete(f"/api/v1/posts/{post_id}").status_code),
    )

    saved = admin_client_all.post(
        f"/admin/posts/post/{post_id}/change/", {"caption": "x", "location_id": ""}, follow=True
    )

    post = Post.objects.using("shard_1").get(id=post_id)
    counters = UserCounters.objects.using("shard_1").get(user_id=ann.id)
    assert statuses == [204]
    assert [str(m) for m in saved.context["messages"]] == ["Not saved: Post not found."]
    assert (post.deleted_at is not None, post.caption, counters.post_count) == (True, "before", 0)
    assert LogEntry.objects.filter(object_id=str(post_id)).count() == 0  # no "changed" entry


@pytest.mark.django_db(databases=ALL)
def test_an_admin_caption_edit_reindexes_hashtags_and_checks_like_the_api(
    make_user, post_for, admin_client_all, redis_client
):
    ann = make_user("ann", shard="shard_1")
    make_user("ben", shard="shard_0")
    post_id = post_for(ann, caption="#old")
    url = f"/admin/posts/post/{post_id}/change/"

    saved = admin_client_all.post(url, {"caption": "#new with @ben", "location_id": ""})
    many = " ".join(f"#t{n}" for n in range(31))
    refused = admin_client_all.post(url, {"caption": many, "location_id": ""})
    unknown_place = admin_client_all.post(url, {"caption": "#new with @ben", "location_id": "7"})

    post = Post.objects.using("shard_1").get(id=post_id)
    tags = list(PostHashtag.objects.using("shard_1").filter(post_id=post_id).values_list("tag"))
    assert saved.status_code == 302
    assert (post.caption, post.hashtags, tags) == ("#new with @ben", ["new"], [("new",)])
    assert [m["username"] for m in post.mentions] == ["ben"]
    assert (refused.status_code, unknown_place.status_code) == (200, 200)  # the form, with errors
    assert refused.context["adminform"].form.errors == {
        "caption": ["At most 30 hashtags per post."]
    }
    assert unknown_place.context["adminform"].form.errors == {"location_id": ["Unknown location."]}


@pytest.mark.django_db(databases=ALL)
def test_comments_are_soft_deleted_in_the_admin_never_edited(
    make_user, post_for, client_for, admin_client_all, redis_client
):
    ann = make_user("ann", shard="shard_1")
    post_id = post_for(ann)
    comments = f"/api/v1/posts/{post_id}/comments"
    top = client_for(ann).post(comments, {"text": "top"}, format="json").json()["comment_id"]
    client_for(ann).post(comments, {"text": "re", "parent_id": top}, format="json")
    url = f"/admin/posts/comment/{top}/change/"

    edited = admin_client_all.post(url, {"text": "edited", "reply_count": "0"})
    deleted = admin_client_all.post(
        "/admin/posts/comment/?shard=shard_1",
        {"action": "soft_delete", "_selected_action": [top]},
    )

    rows = Comment.objects.using("shard_1").filter(post_id=post_id).order_by("id")
    post = Post.objects.using("shard_1").get(id=post_id)
    assert edited.status_code == 403
    assert deleted.status_code == 302
    assert [(c.text, c.deleted_at is not None) for c in rows] == [("top", True), ("re", True)]
    assert post.comment_count == 0
    assert client_for(ann).get(comments).json()["comments"] == []


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_caption_saved_before_the_location_failed_is_said_and_in_the_history(
    make_user, post_for, admin_client_all, redis_client, monkeypatch
):
    from posts import admin as posts_admin
    from posts.models import Location

    ann = make_user("ann", shard="shard_1")
    post_id = post_for(ann, caption="before")
    place = Location.objects.create(name="Gone soon", lat=1.0, lng=2.0)
    real_update = posts_admin.post_update

    def update_then_the_location_goes(**kwargs):
        result = real_update(**kwargs)
        Location.objects.filter(pk=place.pk).delete()
        return result

    monkeypatch.setattr(posts_admin, "post_update", update_then_the_location_goes)
    saved = admin_client_all.post(
        f"/admin/posts/post/{post_id}/change/",
        {"caption": "after", "location_id": str(place.pk)},
        follow=True,
    )

    post = Post.objects.using("shard_1").get(id=post_id)
    assert (post.caption, post.location_id) == ("after", None)
    assert [str(m) for m in saved.context["messages"]] == [
        "The caption was saved, the location was not: Unknown location."
    ]
    entries = LogEntry.objects.filter(object_id=str(post_id))
    assert [entry.get_change_message() for entry in entries] == ["Changed Caption."]
