"""A block racing a follow, a follow request or a close-friend add, and a block lifted before
its effects were applied: nothing crosses a block, and lifting one hands nothing back.

Each race puts the block (applied on both sides) between the action's first check and its
write, by running it from the function the action calls in between."""

import pytest

from accounts.models import CloseFriend, Follower, Following, FollowRequest, UserCounters
from accounts.selectors import blocked_either_way, is_following
from accounts.services import graph
from accounts.services.profile import profile_update

pytestmark = pytest.mark.django_db(databases="__all__")


def _counts(user) -> tuple[int, int]:
    row = UserCounters.objects.using(user.shard_alias()).get(user_id=user.id)
    return row.follower_count, row.following_count


def _meanwhile(monkeypatch, name, action):
    """Run `action` when the graph service calls `name` (after its first checks)."""
    real = getattr(graph, name)

    def then(*args, **kwargs):
        answer = real(*args, **kwargs)
        action()
        return answer

    monkeypatch.setattr(graph, name, then)


def test_a_follow_racing_a_block_is_refused_and_leaves_no_edge(
    make_user, settle, redis_client, monkeypatch
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    _meanwhile(monkeypatch, "rate_limit_enforce",
               lambda: (graph.block_create(blocker=ben, blocked_id=ann.id), settle()))  # fmt: skip

    with pytest.raises(graph.ApiError) as refused:
        graph.follow_create(follower=ann, followee_id=ben.id)
    settle()

    assert (refused.value.status_code, refused.value.error_code) == (404, "not_found")
    assert blocked_either_way(ann.id, ben.id) is True
    assert is_following(ann.id, ben.id) is False
    assert Following.objects.using("shard_0").filter(follower_id=ann.id).count() == 0
    assert Follower.objects.using("shard_1").filter(followee_id=ben.id).count() == 0
    assert (_counts(ann), _counts(ben)) == ((0, 0), (0, 0))


def test_a_follow_request_racing_a_block_leaves_no_request(
    make_user, settle, redis_client, monkeypatch
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1", private=True)
    _meanwhile(monkeypatch, "rate_limit_enforce",
               lambda: (graph.block_create(blocker=ben, blocked_id=ann.id), settle()))  # fmt: skip

    with pytest.raises(graph.ApiError) as refused:
        graph.follow_create(follower=ann, followee_id=ben.id)
    settle()

    assert (refused.value.status_code, refused.value.error_code) == (404, "not_found")
    assert FollowRequest.objects.using("shard_1").filter(target_id=ben.id).count() == 0


def test_a_follow_request_racing_the_switch_to_public_becomes_a_follow(
    make_user, settle, redis_client, monkeypatch
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1", private=True)
    _meanwhile(monkeypatch, "rate_limit_enforce",
               lambda: (profile_update(user=ben, is_private=False), settle()))  # fmt: skip

    status = graph.follow_create(follower=ann, followee_id=ben.id)
    settle()

    assert status == graph.FollowStatus.FOLLOWING
    assert FollowRequest.objects.using("shard_1").filter(target_id=ben.id).count() == 0
    assert is_following(ann.id, ben.id) is True
    assert (_counts(ann), _counts(ben)) == ((0, 1), (1, 0))


def test_a_close_friend_add_racing_a_block_is_refused(make_user, settle, redis_client, monkeypatch):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    _meanwhile(monkeypatch, "_target_for",
               lambda: (graph.block_create(blocker=ben, blocked_id=ann.id), settle()))  # fmt: skip

    with pytest.raises(graph.ApiError) as refused:
        graph.close_friend_add(owner=ann, friend_id=ben.id)

    assert (refused.value.status_code, refused.value.error_code) == (404, "not_found")
    assert CloseFriend.objects.using("shard_0").filter(owner_id=ann.id).count() == 0


def test_a_block_lifted_before_its_effects_were_applied_hands_no_follow_back(
    make_user, client_for, post_for, redis_client, settle, django_capture_on_commit_callbacks
):
    """The block's process died before applying the blocked side (left to the sweep), then the
    block is lifted: the follow the block ended stays ended."""
    owner = make_user("owner", shard="shard_1", private=True)
    fan = make_user("fan", shard="shard_0")
    assert client_for(fan).post(f"/api/v1/users/{owner.id}/follow").json()["status"] == "requested"
    client_for(owner).post(f"/api/v1/accounts/me/follow_requests/{fan.id}/approve")
    settle()
    post_id = post_for(owner)
    assert client_for(fan).get(f"/api/v1/posts/{post_id}").status_code == 200

    with django_capture_on_commit_callbacks(using="shard_1", execute=False):
        graph.block_create(blocker=owner, blocked_id=fan.id)  # its after-commit step never runs
    assert is_following(fan.id, owner.id) is True  # the blocked side is not applied yet
    graph.block_delete(blocker=owner, blocked_id=fan.id)

    assert is_following(fan.id, owner.id) is False
    assert client_for(fan).get(f"/api/v1/posts/{post_id}").status_code == 404
    assert _counts(fan) == (0, 0)
    settle()
    assert (_counts(fan), _counts(owner)) == ((0, 0), (0, 0))


def test_a_block_applies_the_blocked_side_at_once(
    make_user, client_for, redis_client, settle, django_capture_on_commit_callbacks
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    settle()

    with django_capture_on_commit_callbacks(using="shard_1", execute=True):
        graph.block_create(blocker=ben, blocked_id=ann.id)

    assert is_following(ann.id, ben.id) is False  # no relay or sweep ran
    assert (_counts(ann), _counts(ben)) == ((0, 0), (0, 0))


def test_unblocking_someone_never_blocked_ends_nothing_of_theirs(
    make_user, client_for, redis_client, settle
):
    owner = make_user("owner", shard="shard_1")
    fan = make_user("fan", shard="shard_0")
    assert client_for(fan).post(f"/api/v1/users/{owner.id}/follow").json()["status"] == "following"
    assert client_for(fan).post(f"/api/v1/users/{owner.id}/close_friend").status_code == 204
    settle()

    response = client_for(owner).delete(f"/api/v1/users/{fan.id}/block")  # never blocked
    settle()

    assert response.status_code == 204
    assert is_following(fan.id, owner.id) is True
    assert (_counts(fan), _counts(owner)) == ((0, 1), (1, 0))
    assert CloseFriend.objects.using("shard_0").filter(owner_id=fan.id).count() == 1


def test_a_follow_made_after_the_unblock_survives_the_blocks_late_event(
    make_user, client_for, redis_client, settle, django_capture_on_commit_callbacks
):
    owner = make_user("owner", shard="shard_1")
    fan = make_user("fan", shard="shard_0")
    client_for(fan).post(f"/api/v1/users/{owner.id}/follow")
    settle()
    with django_capture_on_commit_callbacks(using="shard_1", execute=False):
        graph.block_create(blocker=owner, blocked_id=fan.id)  # its after-commit step never runs
    graph.block_delete(blocker=owner, blocked_id=fan.id)
    assert client_for(fan).post(f"/api/v1/users/{owner.id}/follow").json()["status"] == "following"

    settle()  # the sweep applies the block's event, still pending

    assert is_following(fan.id, owner.id) is True
    assert (_counts(fan), _counts(owner)) == ((0, 1), (1, 0))
