"""Inputs and situations found in review: each answers a 4xx or hides what it must."""

import base64

import orjson
import pytest

from accounts.services.graph import _following_add, block_create
from posts.models import Comment, CommentLike

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/feed?limit=%C2%B2", 400),
        ("get", "/api/v1/users/%C2%B2", 404),
        ("get", "/api/v1/posts/%C2%B2", 404),
        ("get", "/api/v1/media/%C2%B2", 404),
        ("post", "/api/v1/comments/%C2%B2/like", 404),
        ("post", "/api/v1/users/%C2%B2/follow", 404),
        ("get", "/api/v1/users/ab%00c", 404),
        ("get", "/api/v1/locations?q=a%00b", 200),
    ],
)
def test_odd_characters_never_reach_the_database(make_user, client_for, method, path, status):
    ann = make_user("ann")

    response = getattr(client_for(ann), method)(path)

    assert response.status_code == status


@pytest.mark.parametrize("ts", [9_000_000_000_000_000_000, -1, 10**17])
def test_cursor_with_an_impossible_position_is_a_400(make_user, client_for, ts):
    ann = make_user("ann")
    raw = orjson.dumps({"v": 1, "ts": ts, "id": "5"})
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    for path in ("/api/v1/accounts/me/saved", f"/api/v1/users/{ann.id}/followers"):
        response = client_for(ann).get(f"{path}?cursor={cursor}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_cursor"


def test_hashtag_longer_than_stored_after_normalising_is_not_a_tag(
    make_user, client_for, media_for, redis_client
):
    ann = make_user("ann")
    media_ids = [str(i) for i in media_for(ann, 1)]

    response = client_for(ann).post(
        "/api/v1/posts",
        {"media_ids": media_ids, "caption": "#" + "ß" * 100 + " #ok"},
        format="json",
    )

    assert response.status_code == 201
    detail = client_for(ann).get(f"/api/v1/posts/{response.json()['post_id']}").json()
    assert detail["hashtags"] == ["ok"]


def test_nan_coordinates_are_refused(make_user, client_for):
    ann = make_user("ann")

    response = client_for(ann).post(
        "/api/v1/locations", {"name": "Nowhere", "lat": "nan", "lng": 0}, format="json"
    )

    assert response.status_code == 400


@pytest.mark.parametrize("lat, lng", [(True, 0), (0, False)])
def test_boolean_coordinates_are_refused_and_create_nothing(make_user, client_for, lat, lng):
    from posts.models import Location

    ann = make_user("ann")

    response = client_for(ann).post(
        "/api/v1/locations", {"name": "Nowhere", "lat": lat, "lng": lng}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert Location.objects.filter(name="Nowhere").count() == 0


def test_tag_page_cursor_never_points_at_a_hidden_post(
    make_user, client_for, post_for, redis_client
):
    public = make_user("public", shard="shard_0")
    private = make_user("private", shard="shard_1", private=True)
    stranger = make_user("stranger", shard="shard_0")
    first = post_for(public, caption="#secret old")
    hidden = [post_for(private, caption="#secret") for _ in range(2)]

    page = client_for(stranger).get("/api/v1/tags/secret/posts?limit=1").json()

    assert [p["post_id"] for p in page["posts"]] == [str(first)]
    assert (page["has_more"], page["next_cursor"]) == (False, None)
    assert all(str(h) not in str(page) for h in hidden)


def _comment_on(client, post_id: int, text: str = "hi") -> str:
    response = client.post(f"/api/v1/posts/{post_id}/comments", {"text": text}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["comment_id"]


def test_blocked_users_cannot_like_or_answer_each_others_comments(
    make_user, client_for, post_for, redis_client
):
    host = make_user("host", shard="shard_0")
    pub = make_user("pub", shard="shard_1")
    stranger = make_user("stranger", shard="shard_0")
    post_id = post_for(host)
    cid = _comment_on(client_for(stranger), post_id)
    block_create(blocker=pub, blocked_id=stranger.id)

    like = client_for(pub).post(f"/api/v1/comments/{cid}/like")
    reply = client_for(pub).post(
        f"/api/v1/posts/{post_id}/comments", {"text": "re", "parent_id": cid}, format="json"
    )

    assert like.status_code == 404
    assert reply.status_code == 400
    assert CommentLike.objects.using("shard_0").count() == 0
    assert Comment.objects.using("shard_0").count() == 1


@pytest.mark.parametrize("commenter_blocks", [True, False])
def test_deleting_a_comment_hidden_by_a_block_answers_404_like_a_missing_one(
    make_user, client_for, post_for, redis_client, commenter_blocks
):
    host = make_user("host", shard="shard_0")
    commenter = make_user("commenter", shard="shard_1")
    viewer = make_user("viewer", shard="shard_0")
    post_id = post_for(host)
    cid = _comment_on(client_for(commenter), post_id)
    if commenter_blocks:
        block_create(blocker=commenter, blocked_id=viewer.id)
    else:
        block_create(blocker=viewer, blocked_id=commenter.id)

    hidden = client_for(viewer).delete(f"/api/v1/comments/{cid}")
    missing = client_for(viewer).delete(f"/api/v1/comments/{int(cid) + 1}")

    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
    assert hidden.json() == {"error": {"code": "not_found", "message": "Comment not found."}}
    assert Comment.objects.using("shard_0").get().deleted_at is None
    assert client_for(host).delete(f"/api/v1/comments/{cid}").status_code == 204


def test_post_count_counts_published_posts_only(make_user, client_for, media_for, redis_client):
    ann = make_user("ann")
    viewer = make_user("viewer", shard="shard_1")
    media_ids = [str(i) for i in media_for(ann, 1, process=False)]

    client_for(ann).post("/api/v1/posts", {"media_ids": media_ids}, format="json")

    assert client_for(viewer).get(f"/api/v1/users/{ann.id}").json()["post_count"] == 0
    assert client_for(viewer).get(f"/api/v1/users/{ann.id}/posts").json()["posts"] == []


def test_feed_keeps_paging_past_a_long_run_of_hidden_entries(
    make_user, client_for, post_for, settle, redis_client
):
    from feed import timelines

    viewer = make_user("viewer", shard="shard_0")
    kept = make_user("kept", shard="shard_1")
    gone = make_user("gone", shard="shard_1")
    for author in (kept, gone):
        _following_add(viewer.id, author.id)
    settle()
    old = post_for(kept)
    client_for(viewer).get("/api/v1/feed")
    ghost_ids = [post_for(gone) for _ in range(3)]
    timelines.timeline_add(viewer.id, [old, *ghost_ids])
    client_for(viewer).delete(f"/api/v1/users/{gone.id}/follow")

    seen, cursor = [], ""
    for _ in range(10):
        page = client_for(viewer).get(f"/api/v1/feed?limit=1{cursor}").json()
        seen += [int(p["post_id"]) for p in page["posts"]]
        if not page["has_more"]:
            break
        cursor = f"&cursor={page['next_cursor']}"

    assert seen == [old]


def test_alt_text_a_text_column_cannot_hold_is_a_400_and_changes_nothing(
    make_user, client_for, post_for, redis_client
):
    from posts.models import Hashtag, PostMedia

    ann = make_user("ann")
    post_id = post_for(ann, caption="first")
    # A form in UTF-7 decodes "+2AA-" to a lone surrogate (the server's entry refuses such a
    # charset; a form decoded otherwise must still not get one through).
    response = client_for(ann).patch(
        f"/api/v1/posts/{post_id}",
        "alt_text=%2B2AA-&caption=%23fresh",
        content_type="application/x-www-form-urlencoded; charset=utf-7",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not Hashtag.objects.filter(name="fresh").exists()
    assert [m.alt_text for m in PostMedia.objects.using(ann.shard_alias())] == [""]


@pytest.mark.parametrize(
    ("tag", "stored"),
    [
        ("हिन्दी", "हिन्दी"),
        ("தமிழ்", "தமிழ்"),
        ("বাংলা", "বাংলা"),
        ("cafe\u0301", "café"),  # the accent typed apart
    ],
)
def test_a_hashtag_with_combining_marks_is_filed_whole(
    make_user, client_for, post_for, redis_client, tag, stored
):
    from posts.models import PostHashtag

    ann = make_user("ann")
    post_id = post_for(ann, caption=f"#{tag} today")

    detail = client_for(None).get(f"/api/v1/posts/{post_id}").json()
    page = client_for(None).get(f"/api/v1/tags/{tag}/posts").json()

    assert detail["hashtags"] == [stored]
    assert list(PostHashtag.objects.using("shard_0").values_list("tag", flat=True)) == [stored]
    assert [int(p["post_id"]) for p in page["posts"]] == [post_id]


def test_a_name_or_tag_longer_than_allowed_links_and_files_nothing(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann")
    longest = make_user("a" * 30)  # the longest username there can be
    caption = "hi @" + "a" * 30 + "b and #" + "x" * 100 + "y, but @" + "a" * 30 + ". #" + "z" * 100
    post_id = post_for(ann, caption=caption)

    detail = client_for(None).get(f"/api/v1/posts/{post_id}").json()

    assert [m["user_id"] for m in detail["mentions"]] == [str(longest.id)]
    assert detail["hashtags"] == ["z" * 100]


@pytest.mark.parametrize(
    ("caption", "tags"),
    [
        ("#a#b abc#c &#39; #d_1 #1 #日本", ["a", "d_1", "日本"]),
        ("#Ünïcode, #ünicode! (#x)", ["ünïcode", "ünicode", "x"]),
        ("tail #", []),
        ("❤️#love ☀️#summer ✌️#peace 1️⃣#first", ["love", "summer", "peace", "first"]),
        ("#\u0301abc", []),  # a tag starts with a letter, digit or _, not a mark
    ],
)
def test_hashtags_are_found_where_they_start_a_word(caption, tags):
    from posts.parsing import hashtags_in

    assert hashtags_in(caption) == tags
