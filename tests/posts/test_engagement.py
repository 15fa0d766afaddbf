import threading

import pytest
from django.db import connections
from django.utils import timezone

from accounts.services.graph import _following_add, block_create
from instagram.sharding import alias_for_id
from posts.models import Comment, Like, LikedPost, Post, PostMention, Save
from posts.selectors import REPLIES_PER_COMMENT
from posts.services.comments import comment_create

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_like_is_idempotent_and_indexed_for_the_liker(
    make_user, client_for, post_for, settle, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann)

    first = client_for(ben).post(f"/api/v1/posts/{post_id}/like")
    second = client_for(ben).post(f"/api/v1/posts/{post_id}/like")
    settle()
    liked = list(LikedPost.objects.using("shard_1").values_list("user_id", "post_id"))
    likers = client_for(ann).get(f"/api/v1/posts/{post_id}/likers").json()
    detail = client_for(ben).get(f"/api/v1/posts/{post_id}").json()
    undone = client_for(ben).delete(f"/api/v1/posts/{post_id}/like")
    undone_again = client_for(ben).delete(f"/api/v1/posts/{post_id}/like")
    settle()

    assert first.json() == second.json() == {"like_count": 1, "viewer_has_liked": True}
    assert liked == [(ben.id, post_id)]
    assert [u["username"] for u in likers["users"]] == ["ben"]
    assert (detail["like_count"], detail["viewer_has_liked"]) == (1, True)
    assert undone.json() == undone_again.json() == {"like_count": 0, "viewer_has_liked": False}
    assert LikedPost.objects.using("shard_1").count() == 0
    assert Like.objects.using("shard_0").count() == 0


def test_liking_a_deleted_post_is_a_404(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    post_id = post_for(ann)
    client_for(ann).delete(f"/api/v1/posts/{post_id}")

    response = client_for(ann).post(f"/api/v1/posts/{post_id}/like")

    assert response.status_code == 404
    assert Like.objects.using("shard_0").count() == 0


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_100_concurrent_likes_count_exactly_100(make_user, post_for, redis_client):
    from posts.services.likes import post_like

    author = make_user("author", shard="shard_0")
    post_id = post_for(author)
    likers = [make_user(f"liker{n}", shard=f"shard_{n % 2}") for n in range(100)]
    errors = []
    barrier = threading.Barrier(10)

    def like_all(batch):
        try:
            barrier.wait()
            for user in batch:
                post_like(user=user, post_id=post_id)
                post_like(user=user, post_id=post_id)  # a retry must not count twice
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=like_all, args=(likers[n::10],)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert Post.objects.using("shard_0").get(id=post_id).like_count == 100
    assert Like.objects.using("shard_0").filter(post_id=post_id).count() == 100


def test_comments_replies_and_counts(make_user, client_for, post_for, redis_client):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    post_id = post_for(ann)
    api = client_for(ben)

    top = api.post(f"/api/v1/posts/{post_id}/comments", {"text": "nice @ann"}, format="json")
    top_id = top.json()["comment_id"]
    reply = client_for(ann).post(
        f"/api/v1/posts/{post_id}/comments", {"text": "thanks", "parent_id": top_id}, format="json"
    )
    second = api.post(f"/api/v1/posts/{post_id}/comments", {"text": "again"}, format="json")
    nested = api.post(
        f"/api/v1/posts/{post_id}/comments",
        {"text": "deeper", "parent_id": reply.json()["comment_id"]},
        format="json",
    )
    listing = client_for(None).get(f"/api/v1/posts/{post_id}/comments").json()
    detail = client_for(None).get(f"/api/v1/posts/{post_id}").json()

    assert top.status_code == reply.status_code == second.status_code == 201
    assert top.json()["author"]["username"] == "ben"
    assert reply.json()["parent_id"] == top_id
    assert nested.status_code == 400
    assert nested.json()["error"]["code"] == "invalid_parent"
    assert [(c["text"], c["parent_id"]) for c in listing["comments"]] == [
        ("nice @ann", None),
        ("thanks", top_id),
        ("again", None),
    ]
    assert listing["comments"][0]["reply_count"] == 1
    assert detail["comment_count"] == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"text": ""}, "empty_comment"),
        ({"text": "   "}, "empty_comment"),
        ({"text": "x" * 2201}, "comment_too_long"),
        ({"text": "nul\x00"}, "invalid"),
        ({"text": "hi", "parent_id": "123"}, "invalid_parent"),
        ({}, "invalid"),
    ],
)
def test_bad_comments_are_a_400_and_change_nothing(
    make_user, client_for, post_for, redis_client, body, code
):
    ann = make_user("ann")
    post_id = post_for(ann)

    response = client_for(ann).post(f"/api/v1/posts/{post_id}/comments", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert Comment.objects.using("shard_0").count() == 0
    assert Post.objects.using("shard_0").get().comment_count == 0


def test_a_comment_links_no_user_blocked_either_way_nor_an_unknown_name(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    cat = make_user("cat", shard="shard_1")
    dan = make_user("dan", shard="shard_0")
    eve = make_user("eve", shard="shard_0")
    post_id = post_for(ann)
    client_for(ben).post(f"/api/v1/users/{cat.id}/block")
    client_for(cat).post(f"/api/v1/users/{eve.id}/block")

    response = client_for(cat).post(
        f"/api/v1/posts/{post_id}/comments",
        {"text": "hi @dan, @ben, @eve and @ghost"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["text"] == "hi @dan, @ben, @eve and @ghost"
    assert Post.objects.using("shard_0").get().comment_count == 1
    mentioned = PostMention.objects.using("shard_0").values_list("user_id", flat=True)
    assert list(mentioned) == [dan.id]


def test_comment_delete_by_author_post_author_or_nobody_else(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    cat = make_user("cat", shard="shard_1")
    post_id = post_for(ann)

    def comment(user, text, parent=None):
        body = {"text": text, **({"parent_id": parent} if parent else {})}
        return client_for(user).post(f"/api/v1/posts/{post_id}/comments", body, format="json")

    c1 = comment(ben, "one").json()["comment_id"]
    comment(cat, "reply", c1)
    c2 = comment(cat, "two").json()["comment_id"]

    by_stranger = client_for(ben).delete(f"/api/v1/comments/{c2}")
    by_post_author = client_for(ann).delete(f"/api/v1/comments/{c1}")
    by_comment_author = client_for(cat).delete(f"/api/v1/comments/{c2}")
    again = client_for(cat).delete(f"/api/v1/comments/{c2}")

    assert by_stranger.status_code == 403
    assert by_post_author.status_code == by_comment_author.status_code == 204
    assert again.status_code == 404
    assert Post.objects.using("shard_0").get().comment_count == 0
    assert client_for(None).get(f"/api/v1/posts/{post_id}/comments").json()["comments"] == []


def test_comment_likes(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    post_id = post_for(ann)
    cid = (
        client_for(ann)
        .post(f"/api/v1/posts/{post_id}/comments", {"text": "hello"}, format="json")
        .json()["comment_id"]
    )

    liked = client_for(ann).post(f"/api/v1/comments/{cid}/like")
    again = client_for(ann).post(f"/api/v1/comments/{cid}/like")
    listing = client_for(ann).get(f"/api/v1/posts/{post_id}/comments").json()
    unliked = client_for(ann).delete(f"/api/v1/comments/{cid}/like")
    missing = client_for(ann).post("/api/v1/comments/12345/like")

    assert liked.json() == again.json() == {"like_count": 1, "viewer_has_liked": True}
    assert (listing["comments"][0]["like_count"], listing["comments"][0]["viewer_has_liked"]) == (
        1,
        True,
    )
    assert unliked.json() == {"like_count": 0, "viewer_has_liked": False}
    assert missing.status_code == 404


def test_save_unsave_and_saved_list(make_user, client_for, post_for, redis_client):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    p1, p2 = post_for(ann), post_for(ann)

    assert client_for(ben).post(f"/api/v1/posts/{p1}/save").status_code == 204
    assert client_for(ben).post(f"/api/v1/posts/{p2}/save").status_code == 204
    assert client_for(ben).post(f"/api/v1/posts/{p2}/save").status_code == 204
    saved = client_for(ben).get("/api/v1/accounts/me/saved?limit=1").json()
    rest = client_for(ben).get(f"/api/v1/accounts/me/saved?cursor={saved['next_cursor']}").json()
    client_for(ben).delete(f"/api/v1/posts/{p1}/save")

    assert [int(p["post_id"]) for p in saved["posts"]] == [p2]
    assert saved["posts"][0]["viewer_has_saved"] is True
    assert [int(p["post_id"]) for p in rest["posts"]] == [p1]
    assert list(Save.objects.using("shard_1").values_list("post_id", flat=True)) == [p2]


def _lose_access(how, ann, ben, client_for):
    if how == "author_went_private":
        client_for(ann).patch("/api/v1/accounts/me", {"is_private": True}, format="json")
    elif how == "author_blocked_saver":
        block_create(blocker=ann, blocked_id=ben.id)
    else:
        client_for(ben).delete(f"/api/v1/users/{ann.id}/follow")


def _regain_access(how, ann, ben, client_for):
    if how == "author_went_private":
        client_for(ann).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    elif how == "author_blocked_saver":
        client_for(ann).delete(f"/api/v1/users/{ben.id}/block")
    else:
        client_for(ann).patch("/api/v1/accounts/me", {"is_private": False}, format="json")


@pytest.mark.parametrize(
    "how", ["author_went_private", "author_blocked_saver", "saver_unfollowed_private_author"]
)
def test_a_saver_who_lost_access_can_still_unsave_and_it_stays_unsaved(
    make_user, client_for, post_for, settle, redis_client, how
):
    private = how == "saver_unfollowed_private_author"
    ann = make_user("ann", shard="shard_0", private=private)
    ben = make_user("ben", shard="shard_1")
    if private:
        _following_add(ben.id, ann.id)
        settle()
    post_id = post_for(ann)
    assert client_for(ben).post(f"/api/v1/posts/{post_id}/save").status_code == 204
    _lose_access(how, ann, ben, client_for)
    settle()

    hidden = client_for(ben).get("/api/v1/accounts/me/saved").json()["posts"]
    unsave = client_for(ben).delete(f"/api/v1/posts/{post_id}/save")
    _regain_access(how, ann, ben, client_for)
    settle()
    after = client_for(ben).get("/api/v1/accounts/me/saved").json()["posts"]

    assert hidden == []
    assert unsave.status_code == 204
    assert list(Save.objects.using("shard_1").filter(user_id=ben.id)) == []
    assert after == []


def test_unsaving_a_post_that_does_not_exist_answers_as_any_unsave(
    make_user, client_for, redis_client
):
    ben = make_user("ben", shard="shard_1")

    assert client_for(ben).delete("/api/v1/posts/1830566972669041668/save").status_code == 204


def test_every_reply_of_a_long_thread_can_be_read_a_page_at_a_time(
    make_user, client_for, post_for, redis_client
):
    ann, ben = make_user("ann"), make_user("ben", shard="shard_1")
    post_id = post_for(ann)
    top = comment_create(author=ann, post_id=post_id, text="top")
    replies = [
        comment_create(author=ben, post_id=post_id, text=f"r{n}", parent_id=top.id).id
        for n in range(REPLIES_PER_COMMENT + 5)
    ]
    stranger = client_for(None)

    listing = stranger.get(f"/api/v1/posts/{post_id}/comments").json()
    assert listing["comments"][0]["reply_count"] == REPLIES_PER_COMMENT + 5
    assert len(listing["comments"]) == 1 + REPLIES_PER_COMMENT
    pages, cursor = [], ""
    while True:
        body = stranger.get(f"/api/v1/comments/{top.id}/replies?limit=20{cursor}").json()
        pages.append([int(c["comment_id"]) for c in body["comments"]])
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert [len(p) for p in pages] == [20, 20, 15]
    assert [c for page in pages for c in page] == replies
    assert {c["parent_id"] for c in body["comments"]} == {str(top.id)}

    # A reply has none; what the viewer may not see is a 404, like the comment itself.
    last = client_for(None).get(f"/api/v1/comments/{replies[0]}/replies").json()
    assert (last["comments"], last["has_more"]) == ([], False)
    block_create(blocker=ann, blocked_id=ben.id)
    for path in (f"/api/v1/comments/{top.id}/replies", f"/api/v1/comments/{replies[0]}/replies"):
        response = client_for(ben).get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert client_for(None).get("/api/v1/comments/abc/replies").status_code == 404
    bad = client_for(None).get(f"/api/v1/comments/{top.id}/replies?cursor=nope")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")


def _live_comments(post_id: int) -> list[tuple[str, int]]:
    return list(
        Comment.objects.using(alias_for_id(post_id))
        .filter(post_id=post_id, deleted_at__isnull=True)
        .order_by("id")
        .values_list("text", "reply_count")
    )


def _counts(post_id: int) -> tuple[int, int]:
    return (
        Post.objects.using(alias_for_id(post_id))
        .filter(id=post_id)
        .values_list("like_count", "comment_count")
        .get()
    )


@pytest.fixture
def ben_on_anns_posts(make_user, post_for, settle):
    """ann's posts p1 and p2 and carl's c1; ben likes all three and comments on p1 (and replies
    to carl's comment there) and on c1; carl likes and comments on p1."""
    from posts.services.likes import post_like

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    carl = make_user("carl", shard="shard_1")
    p1, p2, c1 = post_for(ann), post_for(ann), post_for(carl)
    for post_id in (p1, p2, c1):
        post_like(user=ben, post_id=post_id)
    post_like(user=carl, post_id=p1)
    comment_create(author=ben, post_id=p1, text="hi")
    yo = comment_create(author=carl, post_id=p1, text="yo")
    comment_create(author=ben, post_id=p1, text="re", parent_id=yo.id)
    comment_create(author=ben, post_id=c1, text="nice")
    settle()
    return ann, ben, carl, (p1, p2, c1)


def test_a_block_takes_the_blocked_users_likes_and_comments_off_the_blockers_posts(
    ben_on_anns_posts, client_for, settle, redis_client
):
    ann, ben, carl, (p1, p2, c1) = ben_on_anns_posts
    before = [_counts(p) for p in (p1, p2, c1)]

    block_create(blocker=ann, blocked_id=ben.id)
    settle()
    seen_by_carl = client_for(carl).get(f"/api/v1/posts/{p1}").json()
    client_for(ann).delete(f"/api/v1/users/{ben.id}/block")
    settle()

    assert before == [(2, 3), (1, 0), (1, 1)]
    assert [_counts(p) for p in (p1, p2, c1)] == [(1, 1), (0, 0), (1, 1)]
    assert (seen_by_carl["like_count"], seen_by_carl["comment_count"]) == (1, 1)
    assert _live_comments(p1) == [("yo", 0)]
    assert _live_comments(c1) == [("nice", 0)]  # not ann's post: kept
    assert list(Like.objects.using("shard_0").values_list("post_id", "user_id")) == [(p1, carl.id)]
    assert list(
        LikedPost.objects.using("shard_1").filter(user_id=ben.id).values_list("post_id", flat=True)
    ) == [c1]


def test_a_block_lifted_before_its_removal_ran_removes_nothing(
    ben_on_anns_posts, client_for, settle, redis_client
):
    ann, ben, _, (p1, p2, c1) = ben_on_anns_posts

    block_create(blocker=ann, blocked_id=ben.id)  # its hooks wait for the outbox (settle)
    client_for(ann).delete(f"/api/v1/users/{ben.id}/block")
    settle()

    assert [_counts(p) for p in (p1, p2, c1)] == [(2, 3), (1, 0), (1, 1)]


def test_the_removal_run_again_or_in_small_batches_removes_each_once(
    ben_on_anns_posts, settle, redis_client, monkeypatch
):
    from posts.services import blocking

    ann, ben, _, (p1, p2, c1) = ben_on_anns_posts
    monkeypatch.setattr(blocking, "BATCH", 1)
    block_create(blocker=ann, blocked_id=ben.id)
    settle()

    blocking.block_interactions_remove(blocker_id=ann.id, blocked_id=ben.id)
    settle()

    assert [_counts(p) for p in (p1, p2, c1)] == [(1, 1), (0, 0), (1, 1)]
    assert _live_comments(p1) == [("yo", 0)]


def test_a_removal_cut_short_keeps_the_steps_it_committed(
    make_user, post_for, settle, redis_client, monkeypatch
):
    from instagram.models import OutboxEvent
    from posts.services import blocking
    from posts.services.likes import post_like

    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    p1, p2 = post_for(ann), post_for(ann)
    post_like(user=ben, post_id=p1)
    post_like(user=ben, post_id=p2)
    comment_create(author=ben, post_id=p1, text="hi")
    settle()
    monkeypatch.setattr(blocking, "BATCH", 1)

    def killed(comment):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(blocking, "comment_soft_delete", killed)
    block_create(blocker=ann, blocked_id=ben.id)
    settle()
    failing = OutboxEvent.objects.using("shard_0").filter(
        kind="graph.block_started", status="pending"
    )

    assert [_counts(p) for p in (p1, p2)] == [(0, 1), (0, 0)]
    assert [e.last_error for e in failing] == ["RuntimeError: worker killed"] * 2
    monkeypatch.undo()
    failing.update(available_at=timezone.now())
    settle()
    assert [_counts(p) for p in (p1, p2)] == [(0, 0), (0, 0)]
