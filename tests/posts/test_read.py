import pytest

from accounts.services.graph import _following_add, block_create
from posts.models import Location

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_user_posts_newest_first_and_paginated(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    ids = [post_for(ann, caption=f"p{n}") for n in range(3)]

    first = client_for(None).get(f"/api/v1/users/{ann.id}/posts?limit=2").json()
    second = (
        client_for(None)
        .get(f"/api/v1/users/{ann.id}/posts?limit=2&cursor={first['next_cursor']}")
        .json()
    )

    assert [p["caption"] for p in first["posts"]] == ["p2", "p1"]
    assert [p["caption"] for p in second["posts"]] == ["p0"]
    assert (first["has_more"], second["has_more"], second["next_cursor"]) == (True, False, None)
    assert [int(p["post_id"]) for p in first["posts"] + second["posts"]] == ids[::-1]


def test_tag_page_merges_shards_newest_first(make_user, client_for, post_for, redis_client):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    a1 = post_for(ann, caption="#Beach day")
    b1 = post_for(ben, caption="more #beach")
    post_for(ben, caption="#mountain")
    a2 = post_for(ann, caption="#beach again")

    page = client_for(None).get("/api/v1/tags/BEACH/posts?limit=2").json()
    rest = client_for(None).get(f"/api/v1/tags/beach/posts?cursor={page['next_cursor']}").json()

    assert [int(p["post_id"]) for p in page["posts"]] == [a2, b1]
    assert [int(p["post_id"]) for p in rest["posts"]] == [a1]
    assert rest["has_more"] is False


def test_location_page(make_user, client_for, post_for, redis_client):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    place = Location.objects.create(name="Oslo", name_normalized="oslo", lat=59.9, lng=10.7)
    a = post_for(ann, location_id=str(place.id))
    b = post_for(ben, location_id=str(place.id))
    post_for(ben)

    body = client_for(None).get(f"/api/v1/locations/{place.id}/posts").json()

    assert [int(p["post_id"]) for p in body["posts"]] == [b, a]


def test_locations_search_and_create_dedupes_nearby(make_user, client_for):
    ann = make_user("ann")

    made = client_for(ann).post(
        "/api/v1/locations", {"name": "Café Central", "lat": 48.2104, "lng": 16.3655}, format="json"
    )
    again = client_for(ann).post(
        "/api/v1/locations",
        {"name": "café  central", "lat": 48.2106, "lng": 16.3656},
        format="json",
    )
    far = client_for(ann).post(
        "/api/v1/locations", {"name": "Café Central", "lat": 48.22, "lng": 16.3655}, format="json"
    )
    bad = client_for(ann).post(
        "/api/v1/locations", {"name": "x", "lat": 91, "lng": 0}, format="json"
    )
    found = client_for(None).get("/api/v1/locations?q=CAF").json()

    assert (made.status_code, again.status_code, far.status_code) == (201, 200, 201)
    assert again.json()["location_id"] == made.json()["location_id"]
    assert far.json()["location_id"] != made.json()["location_id"]
    assert bad.status_code == 400
    assert [loc["location_id"] for loc in found["locations"]] == sorted(
        [made.json()["location_id"], far.json()["location_id"]], key=int
    )


RELATIONSHIPS = ["self", "follower", "stranger", "blocked", "blocking", "anonymous"]
VISIBLE_PRIVATE = {"self", "follower"}
VISIBLE_PUBLIC = {"self", "follower", "stranger", "anonymous"}


@pytest.fixture
def post_scene(make_user, client_for, post_for, settle, redis_client):
    def build(relationship: str, *, private: bool):
        owner = make_user("owner", shard="shard_1", private=private)
        post_id = post_for(owner, caption="#secret hello")
        viewer = owner if relationship == "self" else make_user("viewer", shard="shard_0")
        if relationship == "follower":
            _following_add(viewer.id, owner.id)
        elif relationship == "blocked":
            block_create(blocker=owner, blocked_id=viewer.id)
        elif relationship == "blocking":
            block_create(blocker=viewer, blocked_id=owner.id)
        settle()
        return owner, post_id, client_for(None if relationship == "anonymous" else viewer)

    return build


@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("relationship", RELATIONSHIPS)
def test_post_visibility_matrix(post_scene, relationship, private):
    owner, post_id, client = post_scene(relationship, private=private)
    visible = relationship in (VISIBLE_PRIVATE if private else VISIBLE_PUBLIC)
    authenticated = relationship != "anonymous"

    detail = client.get(f"/api/v1/posts/{post_id}")
    listing = client.get(f"/api/v1/users/{owner.id}/posts")
    tag = client.get("/api/v1/tags/secret/posts")
    likers = client.get(f"/api/v1/posts/{post_id}/likers")
    comments = client.get(f"/api/v1/posts/{post_id}/comments")

    assert detail.status_code == (200 if visible else 404)
    assert listing.status_code == (200 if visible else 404)
    assert likers.status_code == comments.status_code == (200 if visible else 404)
    assert [p["post_id"] for p in tag.json()["posts"]] == ([str(post_id)] if visible else [])
    if authenticated and relationship != "self":
        like = client.post(f"/api/v1/posts/{post_id}/like")
        comment = client.post(f"/api/v1/posts/{post_id}/comments", {"text": "hi"}, format="json")
        save = client.post(f"/api/v1/posts/{post_id}/save")
        assert like.status_code == (200 if visible else 404)
        assert comment.status_code == (201 if visible else 404)
        assert save.status_code == (204 if visible else 404)
        if not visible:
            assert like.json() == {"error": {"code": "not_found", "message": "Post not found."}}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/abc",
        "/api/v1/posts/99999999999999999999",
        "/api/v1/posts/0",
        "/api/v1/posts/123/likers",
        "/api/v1/users/abc/posts",
        "/api/v1/locations/x/posts",
        "/api/v1/locations/99999999999/posts",
        "/api/v1/tags/bad-tag!/posts",
    ],
)
def test_bad_ids_are_a_404(client_for, path):
    response = client_for(None).get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_tag_whose_folded_form_is_not_all_word_characters_has_its_page(
    make_user, client_for, post_for, redis_client
):
    ann = make_user("ann")
    istanbul = post_for(ann, caption="#İstanbul by night")
    half = post_for(ann, caption="#a½ marathon")
    cafe = post_for(ann, caption="#café")

    shown = client_for(None).get(f"/api/v1/posts/{istanbul}").json()["hashtags"]
    assert shown == ["i\u0307stanbul"]  # "İ" folds to "i" and a combining dot
    for name, post_id in (
        ("İstanbul", istanbul),
        ("%23İstanbul", istanbul),
        ("i\u0307stanbul", istanbul),
        ("a½", half),
        ("a1\u20442", half),
        ("I\u0307stanbul", istanbul),  # decomposed: another normal form of the same tag
        ("cafe\u0301", cafe),
        ("CAFÉ", cafe),
    ):
        body = client_for(None).get(f"/api/v1/tags/{name}/posts").json()
        assert [int(p["post_id"]) for p in body["posts"]] == [post_id], name
    for name in ("a%23b", "a.b", "foo%20bar", "1"):
        response = client_for(None).get(f"/api/v1/tags/{name}/posts")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_a_tag_page_that_ends_on_hidden_posts_tells_nothing_of_them(
    make_user, client_for, redis_client
):
    import base64
    import struct

    from django.utils import timezone

    from posts.models import Post, PostHashtag

    secret = make_user("secret", shard="shard_1", private=True)
    stranger = make_user("stranger", shard="shard_0")
    now = timezone.now()
    hidden = []
    for _ in range(70):  # more than one page's rounds examine, every one hidden
        post = Post.objects.using("shard_1").create(
            author_id=secret.id, caption="#party", hashtags=["party"], created_at=now,
            updated_at=now, published_at=now,
        )  # fmt: skip
        PostHashtag.objects.using("shard_1").create(post_id=post.id, tag="party")
        hidden.append(post.id)

    pages, cursor = [], ""
    while True:
        body = client_for(stranger).get(f"/api/v1/tags/party/posts?limit=1{cursor}").json()
        pages.append(body)
        if not body["has_more"]:
            break
        raw = base64.urlsafe_b64decode(body["next_cursor"] + "==")
        named = [i for i in hidden if str(i).encode() in raw or struct.pack(">Q", i) in raw]
        assert named == []
        cursor = f"&cursor={body['next_cursor']}"

    assert [body["posts"] for body in pages] == [[]] * len(pages)
    assert len(pages) == 2  # the bounded scan resumed once, then found the end


@pytest.mark.parametrize(
    "name",
    ["Bar\u0002", "Caf\u202ee", "\u2066x\u2069", "a\nb", "x\u200f", "x\u061c", "a\u2028b",
     "a\u2029b", "zero\u200bwidth"],
)  # fmt: skip
def test_a_place_name_with_control_or_reordering_marks_is_refused(make_user, client_for, name):
    import json

    from posts.models import Location

    body = json.dumps({"name": name, "lat": 1, "lng": 1})  # \ud800 as JSON writes it
    response = client_for(make_user("ann")).post(
        "/api/v1/locations", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "name: Names cannot hold control or reordering marks."
    )
    assert Location.objects.count() == 0


def test_replies_of_a_comment_that_is_gone_say_so(make_user, client_for, post_for, redis_client):
    ann = make_user("ann")
    post_id = post_for(ann)
    comment = client_for(ann).post(f"/api/v1/posts/{post_id}/comments", {"text": "hi"})
    comment_id = comment.json()["comment_id"]
    client_for(ann).delete(f"/api/v1/comments/{comment_id}")

    answers = [
        client_for(ann).get(f"/api/v1/comments/{c}/replies") for c in (comment_id, "x", "99")
    ]

    assert [(r.status_code, r.json()["error"]["message"]) for r in answers] == [
        (404, "Comment not found.")
    ] * 3


def test_a_cursor_is_taken_only_on_the_path_that_issued_it(
    make_user, post_for, client_for, redis_client
):
    viewer = make_user("viewer", shard="shard_0")
    ann = make_user("ann", shard="shard_1")
    for _ in range(2):
        post_for(ann, caption="#one #two")
    first = client_for(viewer).get("/api/v1/tags/one/posts?limit=1").json()
    cursor = first["next_cursor"]

    again = client_for(viewer).get(f"/api/v1/tags/one/posts?limit=1&cursor={cursor}")
    replayed = client_for(viewer).get(f"/api/v1/tags/two/posts?limit=1&cursor={cursor}")

    assert (again.status_code, len(again.json()["posts"])) == (200, 1)
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (400, "invalid_cursor")


def test_a_place_name_written_with_joiners_is_fine(make_user, client_for):
    name = "Dev \U0001f469\u200d\U0001f4bb Caf\u00e9 \u0915\u094d\u200d\u0937"

    response = client_for(make_user("ann")).post(
        "/api/v1/locations", {"name": name, "lat": 1, "lng": 1}, format="json"
    )

    assert (response.status_code, response.json()["name"]) == (201, name)
