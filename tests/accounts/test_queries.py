"""Hot read paths cost a fixed number of queries, whatever the page holds."""

import pytest

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


@pytest.fixture
def graph(make_user, client_for, settle, redis_client):
    star = make_user("star", shard="shard_1")
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(8)]
    for fan in fans:
        client_for(fan).post(f"/api/v1/users/{star.id}/follow")
    settle()
    return star, fans


def test_profile_queries(graph, client_for, queries):
    star, fans = graph
    viewer, anonymous = client_for(fans[0]), client_for(None)

    # The viewer's token was checked by the fixture's requests: it comes from the token cache.
    with queries(3):  # profile user, owner's shard, viewer's shard
        assert viewer.get(f"/api/v1/users/{star.username}").status_code == 200
    with queries(2):  # profile user, owner's shard
        assert anonymous.get(f"/api/v1/users/{star.id}").status_code == 200
    with queries(2):  # the user's row (first use of a field beyond the cached ones), counters
        assert viewer.get("/api/v1/accounts/me").status_code == 200


@pytest.mark.parametrize("limit", [2, 8])
def test_follower_list_queries_do_not_grow_with_the_page(graph, client_for, queries, limit):
    star, fans = graph

    # owner, owner's shard, viewer's shard, edges, users, blocks on each shard (2); the token
    # comes from the cache
    with queries(7):
        response = client_for(fans[0]).get(f"/api/v1/users/{star.id}/followers?limit={limit}")

    assert len(response.json()["users"]) == limit


def test_anonymous_list_queries(graph, client_for, queries):
    star, _ = graph

    with queries(4):  # owner, owner's shard, edges, users
        response = client_for(None).get(f"/api/v1/users/{star.id}/followers")

    assert len(response.json()["users"]) == 8
