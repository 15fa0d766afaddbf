import threading
import time

import pytest
from django.db import DatabaseError, connections, transaction

from accounts.models import (
    Block,
    CloseFriend,
    Follower,
    Following,
    FollowRequest,
    User,
    UserCounters,
)
from accounts.selectors import (
    blocked_among,
    blocked_either_way,
    can_view_profile_content,
    follower_ids_batched,
    following_ids,
    is_following,
)
from accounts.services.graph import follow_edge_sync
from instagram.models import OutboxEvent
from instagram.sharding import alias_for_id

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _counts(user) -> tuple[int, int]:
    row = UserCounters.objects.using(user.shard_alias()).get(user_id=user.id)
    return row.follower_count, row.following_count


def _rows(user) -> tuple[int, int]:
    alias = user.shard_alias()
    followers = Follower.objects.using(alias).filter(followee_id=user.id).count()
    following = Following.objects.using(alias).filter(follower_id=user.id).count()
    return followers, following


@pytest.fixture
def pair(make_user):
    return make_user("ann", shard="shard_0"), make_user("ben", shard="shard_1")


def test_follow_public_account_then_counts_match_rows(pair, client_for, settle, redis_client):
    ann, ben = pair

    response = client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    settle()

    assert response.status_code == 200
    assert response.json() == {"status": "following"}
    assert is_following(ann.id, ben.id)
    assert _counts(ann) == _rows(ann) == (0, 1)
    assert _counts(ben) == _rows(ben) == (1, 0)


def test_follow_is_idempotent(pair, client_for, settle, redis_client):
    ann, ben = pair

    first = client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    second = client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    settle()

    assert first.json() == second.json() == {"status": "following"}
    assert _counts(ben) == _rows(ben) == (1, 0)
    assert list(OutboxEvent.objects.using(ann.shard_alias()).values_list("kind", flat=True)) == [
        "graph.follow_sync"
    ]
    # The hooks (timelines) are told once the followee's copy of the edge exists, from its shard.
    assert list(OutboxEvent.objects.using(ben.shard_alias()).values_list("kind", flat=True)) == [
        "graph.follow_started"
    ]


def test_follow_private_account_creates_a_request_until_approved(
    make_user, client_for, settle, redis_client
):
    ann = make_user("ann", shard="shard_0")
    cat = make_user("cat", shard="shard_1", private=True)

    asked = client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    again = client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    pending = client_for(cat).get("/api/v1/accounts/me/follow_requests")
    approved = client_for(cat).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    settle()

    assert asked.json() == again.json() == {"status": "requested"}
    assert [u["username"] for u in pending.json()["users"]] == ["ann"]
    assert approved.status_code == 204
    assert is_following(ann.id, cat.id)
    assert FollowRequest.objects.using("shard_1").count() == 0
    assert _counts(cat) == _rows(cat) == (1, 0)
    assert _counts(ann) == _rows(ann) == (0, 1)
    assert client_for(ann).post(f"/api/v1/users/{cat.id}/follow").json() == {"status": "following"}


def test_deny_and_unknown_request(make_user, client_for, settle, redis_client):
    ann = make_user("ann", shard="shard_0")
    cat = make_user("cat", shard="shard_1", private=True)
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")

    denied = client_for(cat).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/deny")
    again = client_for(cat).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    settle()

    assert denied.status_code == 204
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "request_not_found"
    assert not is_following(ann.id, cat.id)
    assert _counts(cat) == (0, 0)


def test_unfollow_withdraws_a_pending_request(make_user, client_for, redis_client):
    ann = make_user("ann", shard="shard_0")
    cat = make_user("cat", shard="shard_1", private=True)
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")

    response = client_for(ann).delete(f"/api/v1/users/{cat.id}/follow")

    assert response.status_code == 204
    assert FollowRequest.objects.using("shard_1").count() == 0


def test_unfollow_removes_both_sides(pair, client_for, settle, redis_client):
    ann, ben = pair
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    settle()

    response = client_for(ann).delete(f"/api/v1/users/{ben.id}/follow")
    repeat = client_for(ann).delete(f"/api/v1/users/{ben.id}/follow")
    settle()

    assert response.status_code == repeat.status_code == 204
    assert _counts(ann) == _rows(ann) == (0, 0)
    assert _counts(ben) == _rows(ben) == (0, 0)


def test_going_public_approves_pending_requests(make_user, client_for, settle, redis_client):
    ann = make_user("ann", shard="shard_0")
    cat = make_user("cat", shard="shard_1", private=True)
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")

    response = client_for(cat).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    events = OutboxEvent.objects.using("shard_1").filter(kind="graph.requests_approve_all")
    # A worker applies the first of the chain at once (the relay; the sweep within 10 s), and
    # the net no sooner than 5 minutes later.
    due = sorted(round((e.available_at - e.created_at).total_seconds()) for e in events)
    settle()

    assert due == [10, 300]
    assert response.json()["is_private"] is False
    assert is_following(ann.id, cat.id)
    assert _counts(cat) == (1, 0)


def _blocking(using: str) -> int:
    """How many other sessions wait on a lock this connection holds (pg_locks is live)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted"
            " AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(databases=ALL, transaction=True)
@pytest.mark.parametrize(("meanwhile", "followers"), [("withdrawn", 3), ("approved", 4)])
def test_going_public_skips_a_request_handled_meanwhile_and_approves_the_rest(
    make_user, client_for, settle, redis_client, meanwhile, followers
):
    from accounts.services.graph import follow_delete, follow_request_approve

    cat = make_user("cat", shard="shard_1", private=True)
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(4)]
    for fan in fans:
        assert client_for(fan).post(f"/api/v1/users/{cat.id}/follow").json()["status"] == (
            "requested"
        )
    quitter = fans[1]  # neither first nor last: the approvals must go on past it
    handled, waited_on = threading.Event(), threading.Event()

    def handle_and_commit_once_the_switch_waits_on_it():
        try:
            with transaction.atomic(using="shard_1"):
                if meanwhile == "withdrawn":
                    follow_delete(follower=quitter, followee_id=cat.id)
                else:
                    follow_request_approve(target=cat, requester_id=quitter.id)
                handled.set()
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if _blocking("shard_1"):
                        waited_on.set()
                        break
                    time.sleep(0.01)
        finally:
            connections.close_all()

    response = client_for(cat).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    other = threading.Thread(target=handle_and_commit_once_the_switch_waits_on_it)
    other.start()
    assert handled.wait(10)
    settle()  # the outbox approves them, batch by batch
    other.join(timeout=30)
    settle()

    assert waited_on.is_set()  # the approvals did overlap the change
    assert response.status_code == 200
    assert response.json()["is_private"] is False
    expected = [fan for fan in fans if meanwhile == "approved" or fan is not quitter]
    assert [fan.username for fan in fans if is_following(fan.id, cat.id)] == [
        fan.username for fan in expected
    ]
    assert _counts(cat) == _rows(cat) == (followers, 0)
    assert [_counts(fan) for fan in fans] == [_rows(fan) for fan in fans]
    assert [_counts(fan)[1] for fan in fans] == [int(fan in expected) for fan in fans]
    assert FollowRequest.objects.using("shard_1").filter(target_id=cat.id).count() == 0


def test_a_crash_right_after_the_switch_to_public_commits_still_approves_the_requests(
    make_user, client_for, settle, redis_client, monkeypatch
):
    from accounts.services import graph, profile

    cat = make_user("cat", shard="shard_1", private=True)
    ann = make_user("ann", shard="shard_0")
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    enqueue = graph.follow_requests_approve_all_later

    def die_once_switched(*, target_id, net=False):
        if not net:
            raise SystemExit("killed")  # the process dies once the switch has committed
        enqueue(target_id=target_id, net=net)

    monkeypatch.setattr(profile, "follow_requests_approve_all_later", die_once_switched)
    with pytest.raises(SystemExit):
        profile.profile_update(user=User.objects.get(pk=cat.pk), is_private=False)
    monkeypatch.undo()
    assert User.objects.get(pk=cat.pk).is_private is False
    net = OutboxEvent.objects.using("shard_1").get(kind="graph.requests_approve_all")
    assert round((net.available_at - net.created_at).total_seconds()) == 300  # not before

    settle()  # the sweep, once the net's grace has passed

    assert is_following(ann.id, cat.id)
    assert _counts(cat) == _rows(cat) == (1, 0)


def test_a_switch_to_public_that_never_commits_approves_nothing(
    make_user, client_for, settle, redis_client, monkeypatch
):
    from accounts.services import profile

    cat = make_user("cat", shard="shard_1", private=True)
    ann = make_user("ann", shard="shard_0")
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")

    def fail(*args, **kwargs):
        raise DatabaseError("the default database went away")

    monkeypatch.setattr(User, "save", fail)
    with pytest.raises(DatabaseError):
        profile.profile_update(user=User.objects.get(pk=cat.pk), is_private=False)
    monkeypatch.undo()

    assert settle() == 1  # the net was written, and found the account still private
    assert not is_following(ann.id, cat.id)
    assert FollowRequest.objects.using("shard_1").filter(target_id=cat.id).count() == 1


def _pending(target) -> int:
    return (
        FollowRequest.objects.using(alias_for_id(target.id))
        .filter(target_id=target.id, approved_at__isnull=True)
        .count()
    )


def test_a_switch_to_public_undone_meanwhile_approves_no_further_batch(
    make_user, client_for, settle, redis_client, monkeypatch
):
    from accounts.services import graph

    cat = make_user("cat", shard="shard_1", private=True)
    fans = [make_user(f"fan{n}", shard="shard_0") for n in range(3)]
    for fan in fans:
        client_for(fan).post(f"/api/v1/users/{cat.id}/follow")
    monkeypatch.setattr(graph, "APPROVE_BATCH", 1)  # a chain of three events
    real_batch = graph._follow_requests_approve_batch

    def batch_then_private_again(target_id, batch_size, **kwargs):
        approved = real_batch(target_id, batch_size, **kwargs)
        User.objects.filter(pk=target_id).update(is_private=True)  # before the next batch
        return approved

    monkeypatch.setattr(graph, "_follow_requests_approve_batch", batch_then_private_again)
    User.objects.filter(pk=cat.pk).update(is_private=False)
    graph.follow_requests_approve_all_later(target_id=cat.id)
    settle()

    assert _pending(cat) == 2  # only the batch that ran before it was private again
    assert [is_following(fan.id, cat.id) for fan in fans] == [True, False, False]


def test_a_batch_that_fails_is_tried_again_until_the_requests_are_approved(
    make_user, client_for, settle, redis_client, monkeypatch
):
    from django.db import InterfaceError

    from accounts.services import graph

    cat = make_user("cat", shard="shard_1", private=True)
    ann = make_user("ann", shard="shard_0")
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    real_batch = graph._follow_requests_approve_batch
    failures = []

    def fails_once(target_id, batch_size, **kwargs):
        if not failures:
            failures.append(1)
            raise InterfaceError("connection already closed")
        return real_batch(target_id, batch_size, **kwargs)

    monkeypatch.setattr(graph, "_follow_requests_approve_batch", fails_once)
    client_for(cat).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    settle()

    assert failures == [1]
    assert is_following(ann.id, cat.id)
    assert _pending(cat) == 0


@pytest.mark.parametrize("pending", [2, 12])
def test_going_public_costs_the_same_queries_however_many_requests_are_pending(
    make_user,
    client_for,
    settle,
    queries,
    redis_client,
    pending,
    django_capture_on_commit_callbacks,
):
    cat = make_user("cat", shard="shard_1", private=True)
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(pending)]
    for fan in fans:
        client_for(fan).post(f"/api/v1/users/{cat.id}/follow")
    api = client_for(cat)
    api.get("/api/v1/accounts/me")  # the token is cached

    # the switch (3, with its savepoint), the user read back, two outbox events (3 each: the
    # net, and the first of the chain a worker applies), the counts answered
    with queries(11), django_capture_on_commit_callbacks(using="shard_1", execute=True) as hooks:
        response = api.patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    assert len(hooks) == 1  # the first event sent to the relay, which a worker runs
    settle()

    assert response.status_code == 200
    assert [is_following(fan.id, cat.id) for fan in fans] == [True] * pending


def test_repeating_the_switch_to_public_approves_what_an_earlier_one_left_pending(
    make_user, client_for, settle, redis_client
):
    cat = make_user("cat", shard="shard_1", private=True)
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    client_for(ben).post(f"/api/v1/users/{cat.id}/follow")
    # The first switch committed, then its approvals never ran (the process died in between).
    User.objects.filter(pk=cat.pk).update(is_private=False)

    response = client_for(cat).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    settle()

    assert response.status_code == 200
    assert is_following(ann.id, cat.id) and is_following(ben.id, cat.id)
    assert _counts(cat) == _rows(cat) == (2, 0)
    assert _counts(ann) == _rows(ann) == (0, 1)
    assert _counts(ben) == _rows(ben) == (0, 1)
    assert FollowRequest.objects.using("shard_1").count() == 0


def test_block_removes_follows_both_ways_and_pending_requests(
    make_user, client_for, settle, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1", private=True)
    dan = make_user("dan", shard="shard_1")
    client_for(ben).post(f"/api/v1/users/{ann.id}/follow")  # ben follows ann
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")  # ann asks ben (private)
    client_for(ann).post(f"/api/v1/users/{dan.id}/follow")
    client_for(ben).post(f"/api/v1/users/{ann.id}/close_friend")
    settle()

    response = client_for(ben).post(f"/api/v1/users/{ann.id}/block")
    settle()

    assert response.status_code == 204
    assert blocked_either_way(ann.id, ben.id)
    assert not is_following(ben.id, ann.id)
    assert FollowRequest.objects.using("shard_1").filter(requester_id=ann.id).count() == 0
    assert CloseFriend.objects.using("shard_1").count() == 0
    assert _counts(ann) == _rows(ann) == (0, 1)  # still follows dan
    assert _counts(ben) == _rows(ben) == (0, 0)
    assert is_following(ann.id, dan.id)


@pytest.mark.parametrize("who_blocks", ["target", "actor"])
def test_following_across_a_block_is_a_404_and_changes_nothing(
    pair, client_for, redis_client, who_blocks
):
    ann, ben = pair
    if who_blocks == "target":
        client_for(ben).post(f"/api/v1/users/{ann.id}/block")
    else:
        client_for(ann).post(f"/api/v1/users/{ben.id}/block")

    response = client_for(ann).post(f"/api/v1/users/{ben.id}/follow")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "User not found."}}
    assert Following.objects.using("shard_0").count() == 0


def test_blocking_one_who_blocked_you_answers_as_for_no_one_and_unblocking_always_answers(
    pair, client_for, settle, redis_client
):
    ann, ben = pair
    client_for(ben).post(f"/api/v1/users/{ann.id}/block")
    settle()
    unknown = ben.id + 1

    blocks = [client_for(ann).post(f"/api/v1/users/{u}/block") for u in (ben.id, unknown)]
    unblocks = [client_for(ann).delete(f"/api/v1/users/{u}/block") for u in (ben.id, unknown)]

    assert [r.status_code for r in blocks] == [404, 404]
    assert blocks[0].json() == blocks[1].json()
    assert [r.status_code for r in unblocks] == [204, 204]
    assert list(Block.objects.using("shard_0").values_list("blocker_id", "blocked_id")) == []
    assert list(Block.objects.using("shard_1").values_list("blocker_id", "blocked_id")) == [
        (ben.id, ann.id)
    ]
    assert not UserCounters.objects.using(alias_for_id(unknown)).filter(user_id=unknown).exists()


def test_a_block_of_a_user_deactivated_since_can_be_lifted(pair, client_for, settle, redis_client):
    ann, ben = pair
    client_for(ann).post(f"/api/v1/users/{ben.id}/block")
    settle()
    User.objects.filter(pk=ben.pk).update(is_active=False)

    lifted = client_for(ann).delete(f"/api/v1/users/{ben.id}/block")

    assert lifted.status_code == 204
    assert not Block.objects.using("shard_0").exists()


@pytest.mark.parametrize("answer", ["approve", "deny"])
def test_a_request_the_list_hides_answers_as_a_missing_one_and_stays(
    make_user, client_for, settle, redis_client, answer
):
    cat = make_user("cat", shard="shard_0", private=True)
    bob = make_user("bob", shard="shard_1")
    client_for(bob).post(f"/api/v1/users/{cat.id}/follow")
    User.objects.filter(pk=bob.pk).update(is_active=False)

    listed = client_for(cat).get("/api/v1/accounts/me/follow_requests").json()["users"]
    response = client_for(cat).post(f"/api/v1/accounts/me/follow_requests/{bob.id}/{answer}")
    settle()

    assert listed == []
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request_not_found"
    assert _requested(bob, cat) == [False]  # back when bob is


def test_following_yourself_is_a_400(pair, client_for):
    ann, _ = pair

    response = client_for(ann).post(f"/api/v1/users/{ann.id}/follow")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "cannot_follow_self"
    assert Following.objects.using("shard_0").count() == 0


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/users/abc/follow", "post"),
        ("/api/v1/users/12ab/followers", "get"),
        ("/api/v1/users/99999999999999999999999/follow", "post"),
        ("/api/v1/users/0/block", "post"),
        ("/api/v1/users/4611686018427387904/follow", "post"),
        ("/api/v1/accounts/me/follow_requests/xyz/approve", "post"),
    ],
)
def test_bad_or_unknown_user_ids_are_a_404(pair, client_for, path, method):
    ann, _ = pair

    response = getattr(client_for(ann), method)(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("not_found", "request_not_found")


def test_following_cap(make_user, client_for, settings, settle, redis_client):
    settings.FOLLOWING_LIMIT = 2
    ann = make_user("ann")
    others = [make_user(f"u{n}", shard="shard_1") for n in range(3)]

    statuses = [
        client_for(ann).post(f"/api/v1/users/{other.id}/follow").status_code for other in others
    ]
    last = client_for(ann).post(f"/api/v1/users/{others[2].id}/follow")

    assert statuses == [200, 200, 400]
    assert last.json()["error"]["code"] == "following_limit_reached"
    assert _counts(ann)[1] == 2


def test_follow_rate_limit(make_user, client_for, settings, redis_client):
    settings.FOLLOWS_PER_HOUR = 2
    ann = make_user("ann")
    others = [make_user(f"u{n}", shard="shard_1") for n in range(3)]

    responses = [client_for(ann).post(f"/api/v1/users/{o.id}/follow") for o in others]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].json()["error"]["code"] == "rate_limited"
    assert 1 <= int(responses[2]["Retry-After"]) <= 3600
    assert not is_following(ann.id, others[2].id)


def test_lists_are_newest_first_and_paginated(make_user, client_for, settle, redis_client):
    star = make_user("star", shard="shard_1")
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(5)]
    for fan in fans:
        client_for(fan).post(f"/api/v1/users/{star.id}/follow")
    settle()
    viewer = client_for(fans[0])

    first = viewer.get(f"/api/v1/users/{star.id}/followers?limit=2").json()
    second = viewer.get(
        f"/api/v1/users/{star.id}/followers?limit=2&cursor={first['next_cursor']}"
    ).json()
    third = viewer.get(
        f"/api/v1/users/{star.id}/followers?limit=2&cursor={second['next_cursor']}"
    ).json()
    following = viewer.get(f"/api/v1/users/{fans[0].id}/following").json()

    names = [u["username"] for page in (first, second, third) for u in page["users"]]
    assert names == ["fan4", "fan3", "fan2", "fan1", "fan0"]
    assert (first["has_more"], second["has_more"], third["has_more"]) == (True, True, False)
    assert third["next_cursor"] is None
    assert following["users"] == [
        {
            "user_id": str(star.id),
            "username": "star",
            "full_name": "",
            "profile_pic_url": None,
            "is_verified": False,
            "is_private": False,
        }
    ]


@pytest.mark.parametrize(
    ("query", "code"),
    [("limit=51", "invalid_limit"), ("limit=0", "invalid_limit"), ("cursor=%%%", "invalid_cursor")],
)
def test_bad_page_parameters_are_a_400(pair, client_for, query, code):
    ann, ben = pair

    response = client_for(ann).get(f"/api/v1/users/{ben.id}/followers?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_crash_between_the_two_sides_is_repaired_by_the_sweep(
    pair, client_for, settle, django_capture_on_commit_callbacks, redis_client
):
    ann, ben = pair
    with django_capture_on_commit_callbacks(using="shard_0", execute=False):
        client_for(ann).post(f"/api/v1/users/{ben.id}/follow")  # relay never runs

    assert _rows(ben) == (0, 0)
    applied = settle()

    assert applied == 2  # the followers copy, and the hooks told (timelines)
    assert _counts(ben) == _rows(ben) == (1, 0)
    assert _counts(ann) == _rows(ann) == (0, 1)


def test_sync_applied_late_and_out_of_order_converges(pair, client_for, settle, redis_client):
    ann, ben = pair
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    client_for(ann).delete(f"/api/v1/users/{ben.id}/follow")
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")

    # An old event re-applied after everything settled must not undo the latest state.
    settle()
    follow_edge_sync(follower_id=ann.id, followee_id=ben.id)
    follow_edge_sync(follower_id=ann.id, followee_id=ben.id)

    assert _counts(ben) == _rows(ben) == (1, 0)
    assert _counts(ann) == _rows(ann) == (0, 1)


def test_selectors(make_user, client_for, settle, redis_client):
    ann = make_user("ann", shard="shard_0")
    fans = [make_user(f"f{n}", shard=f"shard_{n % 2}") for n in range(5)]
    priv = make_user("priv", shard="shard_1", private=True)
    for fan in fans:
        client_for(fan).post(f"/api/v1/users/{ann.id}/follow")
        client_for(ann).post(f"/api/v1/users/{fan.id}/follow")
    client_for(fans[1]).post(f"/api/v1/users/{ann.id}/block")
    client_for(ann).post(f"/api/v1/users/{fans[2].id}/block")
    settle()

    batches = list(follower_ids_batched(ann.id, batch_size=2))

    assert sorted(following_ids(ann.id)) == sorted(f.id for f in fans if f not in fans[1:3])
    assert [len(b) for b in batches] == [2, 1]
    assert sorted(i for b in batches for i in b) == sorted([fans[0].id, fans[3].id, fans[4].id])
    assert blocked_among(ann.id, [f.id for f in fans]) == {fans[1].id, fans[2].id}
    assert can_view_profile_content(None, ann) is True
    assert can_view_profile_content(fans[1].id, ann) is False
    assert can_view_profile_content(ann.id, priv) is False
    assert can_view_profile_content(priv.id, priv) is True
    assert can_view_profile_content(None, priv) is False


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_concurrent_follows_and_unfollows_keep_counts_exact(make_user, settle, redis_client):
    from accounts.services.graph import follow_create, follow_delete

    star = make_user("star", shard="shard_1")
    fans = [make_user(f"fan{n}", shard=f"shard_{n % 2}") for n in range(12)]
    errors = []

    def churn(fan, rounds):
        try:
            for _ in range(rounds):
                follow_create(follower=fan, followee_id=star.id)
                follow_delete(follower=fan, followee_id=star.id)
            follow_create(follower=fan, followee_id=star.id)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=churn, args=(fan, 3)) for fan in fans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    settle()

    assert errors == []
    assert _counts(star) == _rows(star) == (12, 0)
    assert all(_counts(fan) == _rows(fan) == (0, 1) for fan in fans)
    assert Block.objects.using("shard_1").count() == 0


def test_following_again_before_an_approval_is_applied_answers_following(
    make_user, client_for, settle, redis_client
):
    ann = make_user("ann", shard="shard_0")
    cat = make_user("cat", shard="shard_1", private=True)
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    client_for(cat).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")

    again = client_for(ann).post(f"/api/v1/users/{cat.id}/follow")  # before the relay
    pending = client_for(cat).get("/api/v1/accounts/me/follow_requests").json()["users"]
    settle()
    profile = client_for(ann).get(f"/api/v1/users/{cat.id}").json()

    assert again.json() == {"status": "following"}
    assert pending == []
    assert (profile["followed_by_viewer"], profile["follow_requested_by_viewer"]) == (True, False)
    assert FollowRequest.objects.using("shard_1").count() == 0
    assert _counts(cat) == _rows(cat) == (1, 0)


def test_withdrawing_before_an_approval_is_applied_wins(
    make_user, client_for, settle, redis_client
):
    ann = make_user("ann", shard="shard_0")
    cat = make_user("cat", shard="shard_1", private=True)
    client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
    client_for(cat).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")

    client_for(ann).delete(f"/api/v1/users/{cat.id}/follow")  # before the relay
    settle()

    assert not is_following(ann.id, cat.id)
    assert _counts(cat) == _rows(cat) == (0, 0)
    assert _counts(ann) == _rows(ann) == (0, 0)


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_no_approval_commits_after_the_switch_to_private_does(
    client_for, redis_client, switch_during_an_approval_batch
):
    """A batch checks the account is public and commits under a lock the switch to private
    takes too: the switch waits for a batch in flight, so when it answers, every approval
    made while the account was public is committed, and none comes after."""
    response, approved_when_answered, cat = switch_during_an_approval_batch(
        lambda cat: client_for(cat).patch(
            "/api/v1/accounts/me", {"is_private": True}, format="json"
        )
    )

    assert (response.json()["is_private"], approved_when_answered) == (True, 1)
    assert User.objects.get(pk=cat.pk).is_private is True


def _requested(requester, target) -> list:
    """The requester's request to the target as (approved?), or [] if there is none."""
    return [
        approved_at is not None
        for approved_at in FollowRequest.objects.using(alias_for_id(target.id))
        .filter(target_id=target.id, requester_id=requester.id)
        .values_list("approved_at", flat=True)
    ]


@pytest.fixture
def limit_of_one(make_user, client_for, settings):
    """FOLLOWING_LIMIT is 1 and ann has asked to follow private pia; a follow of bob fills
    ann's limit."""
    settings.FOLLOWING_LIMIT = 1
    pia = make_user("pia", shard="shard_1", private=True)
    ann, bob = make_user("ann", shard="shard_0"), make_user("bob", shard="shard_1")
    client_for(ann).post(f"/api/v1/users/{pia.id}/follow")
    return pia, ann, bob


def test_approving_a_requester_at_the_following_limit_is_a_409_and_the_request_stays(
    limit_of_one, client_for, settle, redis_client
):
    pia, ann, bob = limit_of_one
    client_for(ann).post(f"/api/v1/users/{bob.id}/follow")  # at the limit now

    refused = client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    settle()
    profile = client_for(ann).get(f"/api/v1/users/{pia.id}").json()
    listed = client_for(pia).get("/api/v1/accounts/me/follow_requests").json()["users"]
    client_for(ann).delete(f"/api/v1/users/{bob.id}/follow")  # room again
    approved = client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    settle()

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "requester_at_following_limit"
    assert (profile["follow_requested_by_viewer"], profile["followed_by_viewer"]) == (True, False)
    assert [u["user_id"] for u in listed] == [str(ann.id)]
    assert approved.status_code == 204
    assert is_following(ann.id, pia.id)
    assert _requested(ann, pia) == []


def test_a_requester_who_reached_the_limit_after_the_approval_is_requested_again(
    limit_of_one, client_for, settle, redis_client
):
    from accounts.services.graph import _following_add

    pia, ann, bob = limit_of_one
    approved = client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    approved_before = _requested(ann, pia)
    _following_add(ann.id, bob.id)  # before the approval's follow is made
    settle()

    assert (approved.status_code, approved_before) == (204, [True])
    assert not is_following(ann.id, pia.id)
    assert _requested(ann, pia) == [False]
    assert _counts(ann) == (0, 1)


def test_the_handler_run_again_after_it_made_the_follow_does_not_put_the_request_back(
    limit_of_one, client_for, settle, redis_client
):
    from accounts.services.graph import _following_add, apply_follow_approved

    pia, ann, _ = limit_of_one
    client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    _following_add(ann.id, pia.id)  # the handler's first run, cut short before the request went

    apply_follow_approved({"follower_id": ann.id, "followee_id": pia.id})
    settle()

    assert is_following(ann.id, pia.id)
    assert _requested(ann, pia) == []
    assert _counts(ann) == (0, 1)


def test_going_public_keeps_the_requests_it_cannot_make_follows_and_the_chain_ends(
    make_user, client_for, settle, settings, redis_client, monkeypatch
):
    from accounts.services import graph

    settings.FOLLOWING_LIMIT = 1
    monkeypatch.setattr(graph, "APPROVE_BATCH", 1)  # a batch per request
    real_batch, batches = graph._follow_requests_approve_batch, []

    def counted(*args, **kwargs):
        batches.append(kwargs.get("after_id", 0))
        assert len(batches) < 20, "the chain goes round the same requests"
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(graph, "_follow_requests_approve_batch", counted)
    pia = make_user("pia", shard="shard_1", private=True)
    bob = make_user("bob", shard="shard_1")
    full = [make_user(f"full{n}", shard="shard_0") for n in range(2)]
    room = make_user("room", shard="shard_0")
    for fan in [*full, room]:
        client_for(fan).post(f"/api/v1/users/{pia.id}/follow")
    for fan in full:
        client_for(fan).post(f"/api/v1/users/{bob.id}/follow")  # at the limit

    made_public = client_for(pia).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    settle()

    assert made_public.status_code == 200
    assert [is_following(fan.id, pia.id) for fan in [*full, room]] == [False, False, True]
    assert [_requested(fan, pia) for fan in [*full, room]] == [[False], [False], []]
    # Both chains (the relayed one and the net) start at 0 and go up the IDs, each batch above
    # the last one approved, so neither takes a request put back to pending again: 5 batches
    # in all, where going round them would never end.
    assert len(batches) == 5


def test_a_request_going_public_could_not_turn_into_a_follow_goes_once_they_follow(
    limit_of_one, client_for, settle, redis_client
):
    pia, ann, bob = limit_of_one
    client_for(ann).post(f"/api/v1/users/{bob.id}/follow")  # at the limit
    client_for(pia).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    settle()
    left_pending = _requested(ann, pia)
    client_for(ann).delete(f"/api/v1/users/{bob.id}/follow")  # room again

    followed = client_for(ann).post(f"/api/v1/users/{pia.id}/follow")
    settle()
    profile = client_for(ann).get(f"/api/v1/users/{pia.id}").json()
    listed = client_for(pia).get("/api/v1/accounts/me/follow_requests").json()["users"]
    client_for(pia).patch("/api/v1/accounts/me", {"is_private": True}, format="json")
    approve = client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")

    assert left_pending == [False]
    assert followed.json() == {"status": "following"}
    assert (profile["followed_by_viewer"], profile["follow_requested_by_viewer"]) == (True, False)
    assert listed == []
    assert approve.status_code == 404
    assert _requested(ann, pia) == []


def test_a_follow_made_while_its_approval_finds_the_limit_leaves_no_request(
    limit_of_one, client_for, settle, redis_client, monkeypatch
):
    from accounts.services import graph

    pia, ann, bob = limit_of_one
    client_for(ann).post(f"/api/v1/users/{bob.id}/follow")  # at the limit
    settle()
    real_sync, done = graph.follow_edge_sync, []

    def sync(*, follower_id, followee_id):
        if (follower_id, followee_id) == (ann.id, pia.id) and not done:
            done.append(1)  # room made, and pia followed, while the approval is applied
            graph.follow_delete(follower=ann, followee_id=bob.id)
            graph.follow_create(follower=ann, followee_id=pia.id)
        return real_sync(follower_id=follower_id, followee_id=followee_id)

    monkeypatch.setattr(graph, "follow_edge_sync", sync)
    client_for(pia).patch("/api/v1/accounts/me", {"is_private": False}, format="json")
    settle()

    assert done == [1]
    assert is_following(ann.id, pia.id)
    assert _requested(ann, pia) == []
