"""graph_recount: counts recomputed from the graph rows, a batch at a time, safe while users
follow (interleaved deterministically through the counter's row lock)."""

import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from accounts.models import Follower, UserCounters
from accounts.services import graph
from accounts.services.graph import counters_recount, graph_bulk_import
from tests.locks import lock_waiters, own_connections

ALL = "__all__"


def _counts(user) -> tuple[int, int]:
    row = UserCounters.objects.using(user.shard_alias()).get(user_id=user.id)
    return row.follower_count, row.following_count


@pytest.mark.django_db(databases=ALL)
def test_recount_corrects_only_wrong_counts_a_batch_at_a_time(make_user, monkeypatch):
    ann, ben = make_user("ann", shard="shard_0"), make_user("ben", shard="shard_1")
    cat, dan = make_user("cat", shard="shard_0"), make_user("dan", shard="shard_1")
    graph_bulk_import(edges=[(ann.id, ben.id), (cat.id, ben.id), (dan.id, ann.id)])
    for user in (ann, ben):  # drifted, as after a crash in some earlier release
        UserCounters.objects.using(user.shard_alias()).filter(user_id=user.id).update(
            follower_count=7, following_count=9
        )
    monkeypatch.setattr(graph, "RECOUNT_BATCH", 1)
    out = StringIO()

    call_command("graph_recount", stdout=out)

    assert out.getvalue() == "corrected the counts of 2 users\n"
    assert [_counts(u) for u in (ann, ben, cat, dan)] == [(1, 1), (2, 0), (0, 1), (0, 1)]
    assert counters_recount() == 0
    assert counters_recount(user_ids=[ben.id, ann.id, ben.id]) == 0


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_follow_committing_while_its_counter_is_recounted_is_counted_once(make_user):
    ann, ben = make_user("ann", shard="shard_0"), make_user("ben", shard="shard_1")
    alias = ben.shard_alias()
    # A follow's side on ben's shard: its edge and its counter, in one transaction, not yet
    # committed when the recount reaches ben.
    follow = connections.create_connection(alias)
    follow.set_autocommit(False)
    try:
        with follow.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_follower (followee_id, follower_id, created_at) "
                "VALUES (%s, %s, %s)",
                [ben.id, ann.id, timezone.now()],
            )
            cursor.execute(
                "UPDATE accounts_usercounters SET follower_count = follower_count + 1 "
                "WHERE user_id = %s",
                [ben.id],
            )
        with ThreadPoolExecutor(1) as pool:
            recount = pool.submit(own_connections(lambda: counters_recount(user_ids=[ben.id])))
            deadline = time.monotonic() + 30
            while lock_waiters(alias) < 1:
                assert time.monotonic() < deadline, "the recount never waited for the counter"
                time.sleep(0.02)
            follow.commit()
            assert recount.result() == 0  # the count was right: nothing to correct
    finally:
        follow.close()

    assert Follower.objects.using(alias).filter(followee_id=ben.id).count() == 1
    assert _counts(ben) == (1, 0)


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_batch_ended_by_a_deadlock_is_recounted_again(make_user):
    first, second = sorted(
        (make_user("ann", shard="shard_0"), make_user("ben", shard="shard_0")),
        key=lambda user: user.id,
    )
    alias = first.shard_alias()
    lock = "SELECT 1 FROM accounts_usercounters WHERE user_id = %s FOR UPDATE"
    # A handler that locks two counter rows of the batch in the other order than the recount.
    handler = connections.create_connection(alias)
    handler.set_autocommit(False)
    try:
        with handler.cursor() as cursor:
            cursor.execute(lock, [second.id])
            with ThreadPoolExecutor(1) as pool:
                ids = [first.id, second.id]
                recount = pool.submit(own_connections(lambda: counters_recount(user_ids=ids)))
                deadline = time.monotonic() + 30
                while lock_waiters(alias) < 1:  # the recount holds `first`, waits for `second`
                    assert time.monotonic() < deadline, "the recount never waited"
                    time.sleep(0.02)
                # Now a cycle: PostgreSQL ends the recount's transaction (it waited first).
                cursor.execute(lock, [first.id])
                handler.commit()
                assert recount.result() == 0
    finally:
        handler.close()

    assert (_counts(first), _counts(second)) == ((0, 0), (0, 0))


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_an_approval_applied_while_the_request_is_withdrawn_makes_no_follow(make_user, client_for):
    from accounts.models import Following, FollowRequest
    from instagram.models import OutboxEvent
    from instagram.outbox import outbox_event_process

    pia = make_user("pia", shard="shard_1", private=True)
    ann = make_user("ann", shard="shard_0")
    assert client_for(ann).post(f"/api/v1/users/{pia.id}/follow").json() == {"status": "requested"}
    FollowRequest.objects.using("shard_1").filter(requester_id=ann.id).update(
        approved_at=timezone.now()
    )
    from django.db import transaction

    from accounts.services.graph import _follow_approved_enqueue

    with transaction.atomic(using="shard_1"):
        _follow_approved_enqueue(pia.id, ann.id)
    event = OutboxEvent.objects.using("shard_1").get(kind="graph.follow_approved")
    # The withdrawal holds ann's counter lock while it deletes the request.
    withdrawal = connections.create_connection("shard_0")
    withdrawal.set_autocommit(False)
    try:
        with withdrawal.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM accounts_usercounters WHERE user_id = %s FOR UPDATE", [ann.id]
            )
        with ThreadPoolExecutor(1) as pool:
            applied = pool.submit(
                own_connections(lambda: outbox_event_process(using="shard_1", event_id=event.id))
            )
            deadline = time.monotonic() + 30
            while lock_waiters("shard_0") < 1:
                assert time.monotonic() < deadline, "the handler never waited"
                time.sleep(0.02)
            FollowRequest.objects.using("shard_1").filter(requester_id=ann.id).delete()
            withdrawal.commit()
            applied.result()
    finally:
        withdrawal.close()

    assert not Following.objects.using("shard_0").filter(follower_id=ann.id).exists()
    assert _counts(ann) == (0, 0)


@pytest.mark.django_db(databases=ALL)
def test_an_approval_does_not_take_a_user_past_the_following_limit(
    make_user, client_for, settle, settings
):
    from accounts.models import Following

    settings.FOLLOWING_LIMIT = 1
    pia = make_user("pia", shard="shard_1", private=True)
    ann, bob = make_user("ann", shard="shard_0"), make_user("bob", shard="shard_1")
    client_for(ann).post(f"/api/v1/users/{pia.id}/follow")
    assert client_for(ann).post(f"/api/v1/users/{bob.id}/follow").json() == {"status": "following"}
    client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{ann.id}/approve")
    settle()

    assert _counts(ann) == (0, 1)
    assert list(
        Following.objects.using("shard_0")
        .filter(follower_id=ann.id)
        .values_list("followee_id", flat=True)
    ) == [bob.id]
