"""Post hydration costs a fixed number of queries, whatever the number of posts."""

import pytest

from accounts.services.graph import _following_add

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


@pytest.fixture
def timeline(make_user, post_for, settle, redis_client):
    viewer = make_user("viewer", shard="shard_0")
    authors = [make_user(f"a{n}", shard=f"shard_{n % 2}", private=n == 3) for n in range(4)]
    for author in authors:
        _following_add(viewer.id, author.id)
    settle()
    posts = [post_for(authors[n % 4], caption=f"#hot {n}", media=1 + n % 2) for n in range(12)]
    return viewer, authors, posts


@pytest.mark.parametrize("limit", [3, 12])
def test_tag_page_queries_do_not_grow_with_the_page(timeline, client_for, queries, limit):
    viewer, _, _ = timeline

    # token; tag index, and posts with media, likes and blocks, on each of 2 shards; authors;
    # follows; blocks by the viewer (on the viewer's shard); saves
    with queries(10):
        body = client_for(viewer).get(f"/api/v1/tags/hot/posts?limit={limit}").json()

    assert len(body["posts"]) == limit


@pytest.mark.parametrize("limit", [2, 6])
def test_user_posts_queries(timeline, client_for, queries, limit):
    viewer, authors, _ = timeline

    # token; owner; blocks; post IDs; posts with media, likes and blocks; saves
    with queries(6):
        body = client_for(viewer).get(f"/api/v1/users/{authors[0].id}/posts?limit={limit}").json()

    assert len(body["posts"]) == min(limit, 3)


def test_post_detail_queries(timeline, client_for, queries):
    viewer, _, posts = timeline

    with queries(5):  # token; post with media, like and blocks; author; blocks; saves
        response = client_for(viewer).get(f"/api/v1/posts/{posts[0]}")

    assert response.status_code == 200


@pytest.mark.parametrize("tagged", [2, 12])
def test_post_create_queries_do_not_grow_with_the_users_tagged(
    make_user, client_for, media_for, queries, redis_client, tagged
):
    author = make_user("author", shard="shard_0")
    people = [str(make_user(f"t{n}", shard=f"shard_{n % 2}").id) for n in range(tagged)]
    api = client_for(author)
    body = {"media_ids": [str(m) for m in media_for(author)], "tagged_users": people}
    api.get("/api/v1/accounts/me")  # the token is cached

    # The same for 2 users tagged as for 12 (three of them count the posts of the day again,
    # under the author's counter lock).
    with queries(25):
        response = api.post("/api/v1/posts", body, format="json")

    assert response.status_code == 201, response.json()
