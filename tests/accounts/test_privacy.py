"""Every graph endpoint x every relationship of the viewer to the owner, public and private."""

import pytest

from accounts.models import FollowRequest
from accounts.services.graph import _following_add, block_create

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)

RELATIONSHIPS = ["self", "follower", "pending", "stranger", "blocked", "blocking", "anonymous"]


@pytest.fixture
def scene(make_user, client_for, settle, redis_client):
    def build(relationship: str, *, private: bool):
        owner = make_user("owner", shard="shard_1", private=private)
        other = make_user("other", shard="shard_0")
        viewer = owner if relationship == "self" else make_user("viewer", shard="shard_0")
        # The owner follows someone and is followed by someone, so lists have content.
        _following_add(owner.id, other.id)
        _following_add(other.id, owner.id)
        if relationship == "follower":
            _following_add(viewer.id, owner.id)
        elif relationship == "pending":
            FollowRequest.objects.using("shard_1").create(
                target_id=owner.id, requester_id=viewer.id
            )
        elif relationship == "blocked":
            block_create(blocker=owner, blocked_id=viewer.id)
        elif relationship == "blocking":
            block_create(blocker=viewer, blocked_id=owner.id)
        settle()
        client = client_for(None if relationship == "anonymous" else viewer)
        return owner, client

    return build


PROFILE = {"self": 200, "follower": 200, "pending": 200, "stranger": 200, "blocked": 404,
           "blocking": 200, "anonymous": 200}  # fmt: skip
LISTS_PUBLIC = {"self": 200, "follower": 200, "pending": 200, "stranger": 200, "blocked": 404,
                "blocking": 404, "anonymous": 200}  # fmt: skip
LISTS_PRIVATE = {"self": 200, "follower": 200, "pending": 404, "stranger": 404, "blocked": 404,
                 "blocking": 404, "anonymous": 404}  # fmt: skip
FOLLOW = {"self": 400, "follower": 200, "pending": 200, "stranger": 200, "blocked": 404,
          "blocking": 404, "anonymous": 401}  # fmt: skip
CLOSE_FRIEND = {"self": 400, "follower": 204, "pending": 204, "stranger": 204, "blocked": 404,
                "blocking": 404, "anonymous": 401}  # fmt: skip

CASES = (
    [("profile", private, rel, PROFILE[rel]) for private in (False, True) for rel in RELATIONSHIPS]
    + [("followers", False, rel, LISTS_PUBLIC[rel]) for rel in RELATIONSHIPS]
    + [("following", False, rel, LISTS_PUBLIC[rel]) for rel in RELATIONSHIPS]
    + [("followers", True, rel, LISTS_PRIVATE[rel]) for rel in RELATIONSHIPS]
    + [("following", True, rel, LISTS_PRIVATE[rel]) for rel in RELATIONSHIPS]
    + [("follow", private, rel, FOLLOW[rel]) for private in (False, True) for rel in RELATIONSHIPS]
    + [("close_friend", True, rel, CLOSE_FRIEND[rel]) for rel in RELATIONSHIPS]
)


@pytest.mark.parametrize(("endpoint", "private", "relationship", "status"), CASES)
def test_privacy_matrix(scene, endpoint, private, relationship, status):
    owner, client = scene(relationship, private=private)

    if endpoint == "profile":
        response = client.get(f"/api/v1/users/{owner.username}")
    elif endpoint in ("followers", "following"):
        response = client.get(f"/api/v1/users/{owner.id}/{endpoint}")
    else:
        response = client.post(f"/api/v1/users/{owner.id}/{endpoint}")

    assert response.status_code == status
    if status == 404:
        assert response.json() == {"error": {"code": "not_found", "message": "User not found."}}
    if endpoint in ("followers", "following") and status == 200:
        listed = (
            ["viewer", "other"]
            if (endpoint, relationship) == ("followers", "follower")
            else ["other"]
        )
        assert [u["username"] for u in response.json()["users"]] == listed


@pytest.mark.parametrize(
    ("relationship", "flags"),
    [
        ("follower", (True, False, False)),
        ("pending", (False, True, False)),
        ("blocking", (False, False, True)),
        ("stranger", (False, False, False)),
        ("anonymous", (False, False, False)),
    ],
)
def test_profile_flags_by_relationship(scene, relationship, flags):
    owner, client = scene(relationship, private=True)

    body = client.get(f"/api/v1/users/{owner.id}").json()

    assert (
        body["followed_by_viewer"],
        body["follow_requested_by_viewer"],
        body["is_blocked_by_viewer"],
    ) == flags
    assert (body["follower_count"], body["following_count"], body["post_count"]) == (
        2 if relationship == "follower" else 1,
        1,
        0,
    )


def test_lists_leave_out_users_who_blocked_the_viewer(make_user, client_for, settle, redis_client):
    star = make_user("star", shard="shard_1")
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(3)]
    viewer = make_user("viewer", shard="shard_0")
    for fan in fans:
        client_for(fan).post(f"/api/v1/users/{star.id}/follow")
    client_for(fans[1]).post(f"/api/v1/users/{viewer.id}/block")
    client_for(viewer).post(f"/api/v1/users/{fans[2].id}/block")
    settle()

    body = client_for(viewer).get(f"/api/v1/users/{star.id}/followers").json()

    assert [u["username"] for u in body["users"]] == ["fan0"]
