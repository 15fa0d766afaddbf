"""Follow, follow requests, blocks and close friends.

Each action writes its own shard in one transaction and leaves the other shard to the outbox.
The follower-side handler is a *sync*: it locks the followee's counters row, reads the source of
truth (the `Following` row on the follower's shard) and makes the `Follower` copy match, so
events applied late, twice or out of order still converge, and counts always equal rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from accounts.models import (
    Block,
    CloseFriend,
    Follower,
    Following,
    FollowRequest,
    User,
    UserCounters,
)
from accounts.selectors import blocked_either_way, is_following, user_get_active
from instagram.errors import ApiError
from instagram.outbox import outbox_enqueue, outbox_handler
from instagram.ratelimit import rate_limit_enforce
from instagram.sharding import alias_for_id, group_by_alias, shard_aliases

logger = logging.getLogger(__name__)


class GraphEvent(StrEnum):
    FOLLOW_SYNC = "graph.follow_sync"
    FOLLOW_APPROVED = "graph.follow_approved"
    BLOCK_APPLIED = "graph.block_applied"
    FOLLOW_STARTED = "graph.follow_started"  # tell the hooks (timelines merge the posts)
    FOLLOW_ENDED = "graph.follow_ended"  # tell the hooks (timelines drop the posts)
    REQUESTS_APPROVE_ALL = "graph.requests_approve_all"  # the target went public
    BLOCK_STARTED = "graph.block_started"  # tell the hooks (posts drop the blocked's likes)


class FollowStatus(StrEnum):
    FOLLOWING = "following"
    REQUESTED = "requested"


# Hooks other apps register (the feed merges or drops timelines); called after commit, through
# the outbox (so at least once: they must be idempotent).
follow_started_hooks: list = []
follow_ended_hooks: list = []
# Called with (blocker_id, blocked_id) while the block stands, a step at a time: a hook does a
# bounded step and answers whether there may be more (another event then runs the next step).
block_started_hooks: list = []


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "User not found.")


def _target_for(actor_id: int, target_id: int) -> User:
    """The target user if it exists and no block stands between the two, else a 404."""
    target = user_get_active(user_id=target_id)
    if target is None or blocked_either_way(actor_id, target_id):
        raise _not_found()
    return target


def _counters_locked(using: str, user_id: int) -> UserCounters:
    UserCounters.objects.using(using).bulk_create(
        [UserCounters(user_id=user_id)], ignore_conflicts=True
    )
    return UserCounters.objects.using(using).select_for_update().get(user_id=user_id)


def user_counters_lock(*, user_id: int) -> UserCounters:
    """The user's counter row (made if missing), locked until the caller's transaction on the
    user's shard ends: the lock that serialises whatever counts on it (follows, posts)."""
    return _counters_locked(alias_for_id(user_id), user_id)


def _counter_add(using: str, user_id: int, field: str, delta: int) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"UPDATE accounts_usercounters SET {field} = {field} + %s WHERE user_id = %s",
            [delta, user_id],
        )


def _insert_edge(
    using: str,
    table: str,
    columns: tuple[str, str],
    values: tuple[int, int],
    created_at: dt.datetime | None = None,
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if a row was inserted."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns[0]}, {columns[1]}, created_at) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [*values, created_at or timezone.now()],
        )
        return cursor.fetchone() is not None


def _hooks_tell(
    kind: GraphEvent, follower_id: int, followee_id: int, *, on: int | None = None
) -> None:
    """Tell the hooks after commit, through the outbox (in the open transaction on the shard of
    `on`, the follower's unless given; applied by this process at once): a process that dies
    after the commit, or a broker that is down, delays them and never loses them."""
    outbox_enqueue(
        partition_id=on or follower_id,
        kind=kind,
        payload={"follower_id": follower_id, "followee_id": followee_id},
        apply_here=True,
    )


@outbox_handler(GraphEvent.FOLLOW_STARTED)
def _follow_started_apply(payload: dict) -> None:
    for hook in follow_started_hooks:
        hook(follower_id=payload["follower_id"], followee_id=payload["followee_id"])


@outbox_handler(GraphEvent.FOLLOW_ENDED)
def _follow_ended_apply(payload: dict) -> None:
    for hook in follow_ended_hooks:
        hook(follower_id=payload["follower_id"], followee_id=payload["followee_id"])


def _following_add(follower_id: int, followee_id: int) -> bool:
    """The source-of-truth edge on the follower's shard, with its count and outbox event."""
    using = alias_for_id(follower_id)
    with transaction.atomic(using=using):
        counters = _counters_locked(using, follower_id)
        if (
            Following.objects.using(using)
            .filter(follower_id=follower_id, followee_id=followee_id)
            .exists()
        ):
            return False
        # Checked again under the lock a block's handler takes on this side: a block committed
        # since the caller's check is seen here, and one committed later removes this edge.
        if blocked_either_way(follower_id, followee_id):
            raise _not_found()
        if counters.following_count >= settings.FOLLOWING_LIMIT:
            raise ApiError(
                400,
                "following_limit_reached",
                f"You can follow at most {settings.FOLLOWING_LIMIT} accounts.",
            )
        _insert_edge(using, "accounts_following", ("follower_id", "followee_id"),
                     (follower_id, followee_id))  # fmt: skip
        _counter_add(using, follower_id, "following_count", 1)
        _sync_enqueue(follower_id, followee_id)  # which tells the hooks, once synced
    return True


def _sync_enqueue(follower_id: int, followee_id: int) -> None:
    """The followee's copy of the edge, applied by this process right after commit (the sweep
    covers a process that dies first)."""
    outbox_enqueue(
        partition_id=follower_id,
        kind=GraphEvent.FOLLOW_SYNC,
        payload={"follower_id": follower_id, "followee_id": followee_id},
        apply_here=True,
    )


def _following_remove(follower_id: int, followee_id: int, *, withdraw: bool = False) -> bool:
    """Remove the edge; with `withdraw`, also the request (pending or approved), under the same
    lock as the approval's handler takes, so a withdrawal and an approval being applied take
    turns: the handler either finds the request gone, or made the follow this then removes."""
    using = alias_for_id(follower_id)
    with transaction.atomic(using=using):
        _counters_locked(using, follower_id)
        if withdraw:
            FollowRequest.objects.using(alias_for_id(followee_id)).filter(
                target_id=followee_id, requester_id=follower_id
            ).delete()
        deleted, _ = (
            Following.objects.using(using)
            .filter(follower_id=follower_id, followee_id=followee_id)
            .delete()
        )
        if not deleted:
            return False
        _counter_add(using, follower_id, "following_count", -1)
        _sync_enqueue(follower_id, followee_id)
        _hooks_tell(GraphEvent.FOLLOW_ENDED, follower_id, followee_id)
    return True


def follow_create(*, follower: User, followee_id: int) -> FollowStatus:
    if follower.id == followee_id:
        raise ApiError(400, "cannot_follow_self", "You cannot follow yourself.")
    target = _target_for(follower.id, followee_id)
    if (
        Following.objects.using(alias_for_id(follower.id))
        .filter(follower_id=follower.id, followee_id=followee_id)
        .exists()
    ):
        return FollowStatus.FOLLOWING
    target_alias = alias_for_id(followee_id)
    if target.is_private:
        requests = FollowRequest.objects.using(target_alias)
        pending = (
            requests.filter(target_id=followee_id, requester_id=follower.id)
            .values_list("approved_at", flat=True)
            .first()
        )
        if pending is not None:
            return FollowStatus.FOLLOWING  # approved; the follow is being applied
        if requests.filter(target_id=followee_id, requester_id=follower.id).exists():
            return FollowStatus.REQUESTED
    rate_limit_enforce(
        name=f"follow:{follower.id}",
        limit=settings.FOLLOWS_PER_HOUR,
        window=3600,
        message=f"You can follow at most {settings.FOLLOWS_PER_HOUR} accounts an hour.",
    )
    if target.is_private:
        return _follow_request_add(follower.id, followee_id)
    _following_add(follower.id, followee_id)
    return FollowStatus.FOLLOWING


def _follow_request_add(requester_id: int, target_id: int) -> FollowStatus:
    """A pending request on the target's shard, under the target's counter lock, which a block
    by the target holds while it deletes the requests to it: a block committed first is seen
    here, one committed later deletes this request. A switch to public that committed
    meanwhile approved only what was pending then, so this one is approved here."""
    using = alias_for_id(target_id)
    with transaction.atomic(using=using):
        _counters_locked(using, target_id)
        if blocked_either_way(requester_id, target_id):
            raise _not_found()
        FollowRequest.objects.using(using).bulk_create(
            [FollowRequest(target_id=target_id, requester_id=requester_id)],
            ignore_conflicts=True,
        )
    target = user_get_active(user_id=target_id)
    if target is not None and not target.is_private:
        _follow_request_approve_pending(target_id, requester_id)
        return FollowStatus.FOLLOWING
    return FollowStatus.REQUESTED


def _follow_request_approve_pending(target_id: int, requester_id: int) -> bool:
    """Approve the request if it is still pending (an approval marks it once, whoever runs
    it); True if this call approved it."""
    using = alias_for_id(target_id)
    with transaction.atomic(using=using):
        approved = (
            FollowRequest.objects.using(using)
            .filter(target_id=target_id, requester_id=requester_id, approved_at__isnull=True)
            .update(approved_at=timezone.now())
        )
        if approved:
            _follow_approved_enqueue(target_id, requester_id)
    return bool(approved)


def follow_delete(*, follower: User, followee_id: int) -> None:
    """Unfollow, or withdraw a pending request; idempotent."""
    if follower.id == followee_id:
        raise ApiError(400, "cannot_follow_self", "You cannot follow yourself.")
    _target_for(follower.id, followee_id)
    _following_remove(follower.id, followee_id, withdraw=True)


def follow_request_approve(*, target: User, requester_id: int) -> None:
    """Approve a pending request. A requester who already follows as many accounts as anyone
    may is a 409 and the request stays pending, to approve once they follow fewer (checked
    again when the follow is made: a request that reaches the limit meanwhile goes back to
    pending there)."""
    pending = FollowRequest.objects.using(alias_for_id(target.id)).filter(
        target_id=target.id, requester_id=requester_id, approved_at__isnull=True
    )
    if not pending.exists() or user_get_active(user_id=requester_id) is None:  # as listed
        raise ApiError(404, "request_not_found", "No pending request from that user.")
    if _following_count(requester_id) >= settings.FOLLOWING_LIMIT:
        raise ApiError(
            409,
            "requester_at_following_limit",
            "That user already follows as many accounts as they can; approve their request "
            "once they follow fewer.",
        )
    if not _follow_request_approve_pending(target.id, requester_id):
        raise ApiError(404, "request_not_found", "No pending request from that user.")


def _following_count(user_id: int) -> int:
    return (
        UserCounters.objects.using(alias_for_id(user_id))
        .filter(user_id=user_id)
        .values_list("following_count", flat=True)
        .first()
        or 0
    )


APPROVE_BATCH = 500  # requests approved by one event of a switch to public


def _follow_requests_approve_batch(
    target_id: int, batch_size: int, after_id: int = 0
) -> tuple[int, int]:
    """Approve up to `batch_size` requests still pending to the target, of IDs above
    `after_id`, in the caller's transaction on its shard; returns how many, and the highest ID
    approved (the next batch starts above it, so a request put back to pending by its follow's
    handler is not taken again by the same chain). One statement locks and marks them, so a
    request withdrawn, approved or denied meanwhile is skipped rather than an error, an
    overlapping batch approves other rows instead of the same ones twice, and a batch run again
    approves only what is still pending."""
    using = alias_for_id(target_id)
    with connections[using].cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_followrequest SET approved_at = %s WHERE id IN ("
            " SELECT id FROM accounts_followrequest"
            " WHERE target_id = %s AND approved_at IS NULL AND id > %s"
            " ORDER BY id LIMIT %s FOR UPDATE"
            ") RETURNING id, requester_id",
            [timezone.now(), target_id, after_id, batch_size],
        )
        rows = cursor.fetchall()
    for _, requester_id in rows:
        _follow_approved_enqueue(target_id, requester_id)
    return len(rows), max((row[0] for row in rows), default=after_id)


@contextmanager
def switch_to_private_lock(user_id: int) -> Iterator[None]:
    """Around a change that may make the account private, committed inside this block: holds
    the account's counter lock until after that commit, so an approval batch in flight commits
    first, and a later one sees the account private."""
    using = alias_for_id(user_id)
    with transaction.atomic(using=using):
        _counters_locked(using, user_id)
        yield


def follow_requests_approve_all_later(*, target_id: int, net: bool = False) -> None:
    """Have the outbox approve every request pending to the target, if it is public by then:
    a chain of events, each approving a batch in its own transaction and writing the next, so a
    switch to public costs its request a fixed number of queries however many are pending, and
    every batch is retried until it is applied. With `net`, only the sweep applies the first
    event, once NET_GRACE has passed: written before the switch commits (on another database),
    so a process that dies between the two still has the requests approved."""
    with transaction.atomic(using=alias_for_id(target_id)):
        outbox_enqueue(
            partition_id=target_id,
            kind=GraphEvent.REQUESTS_APPROVE_ALL,
            payload={"target_id": target_id},
            relay=not net,
        )


@outbox_handler(GraphEvent.REQUESTS_APPROVE_ALL)
def apply_requests_approve_all(payload: dict) -> None:
    """One batch, if the account is public now (else the switch never committed, or was undone
    since: nothing is approved, and the chain ends), then the next event if there may be more.

    Checked under the account's counter lock, held until the batch commits with its event,
    which a switch to private also takes (`switch_to_private_lock`): a batch either commits
    before that switch, or sees it."""
    target_id = payload["target_id"]
    _counters_locked(alias_for_id(target_id), target_id)
    if not User.objects.filter(pk=target_id, is_private=False).exists():
        return
    approved, last_id = _follow_requests_approve_batch(
        target_id, APPROVE_BATCH, after_id=payload.get("after_id", 0)
    )
    if approved == APPROVE_BATCH:
        outbox_enqueue(
            partition_id=target_id,
            kind=GraphEvent.REQUESTS_APPROVE_ALL,
            payload={"target_id": target_id, "after_id": last_id},
        )


def _follow_approved_enqueue(target_id: int, requester_id: int) -> None:
    outbox_enqueue(
        partition_id=target_id,
        kind=GraphEvent.FOLLOW_APPROVED,
        payload={"follower_id": requester_id, "followee_id": target_id},
    )


def follow_request_deny(*, target: User, requester_id: int) -> None:
    """A request the list hides (its requester deactivated) answers as a missing one."""
    if user_get_active(user_id=requester_id) is None:
        raise ApiError(404, "request_not_found", "No pending request from that user.")
    deleted, _ = (
        FollowRequest.objects.using(alias_for_id(target.id))
        .filter(target_id=target.id, requester_id=requester_id, approved_at__isnull=True)
        .delete()
    )
    if not deleted:
        raise ApiError(404, "request_not_found", "No pending request from that user.")


def block_create(*, blocker: User, blocked_id: int) -> None:
    if blocker.id == blocked_id:
        raise ApiError(400, "cannot_block_self", "You cannot block yourself.")
    # One who blocks the caller answers as a missing user, as everywhere else (a 204 would
    # tell them apart).
    if user_get_active(user_id=blocked_id) is None or _blocks(blocked_id, blocker.id):
        raise _not_found()
    using = alias_for_id(blocker.id)
    with transaction.atomic(using=using):
        # The lock a request to the blocker or a close-friend add by the blocker takes for its
        # check: each of those either sees this block or is deleted by it.
        _counters_locked(using, blocker.id)
        Block.objects.using(using).bulk_create(
            [Block(blocker_id=blocker.id, blocked_id=blocked_id)], ignore_conflicts=True
        )
        FollowRequest.objects.using(using).filter(
            target_id=blocker.id, requester_id=blocked_id
        ).delete()
        CloseFriend.objects.using(using).filter(owner_id=blocker.id, friend_id=blocked_id).delete()
        _following_remove(blocker.id, blocked_id)
        payload = {"blocker_id": blocker.id, "blocked_id": blocked_id}
        outbox_enqueue(
            partition_id=blocker.id, kind=GraphEvent.BLOCK_APPLIED, payload=payload, apply_here=True
        )
        # The hooks, by a worker; and again once NET_GRACE has passed, for what was in flight
        # as the block committed (a like whose check came first, committed after the hooks).
        outbox_enqueue(partition_id=blocker.id, kind=GraphEvent.BLOCK_STARTED, payload=payload)
        outbox_enqueue(
            partition_id=blocker.id, kind=GraphEvent.BLOCK_STARTED, payload=payload, relay=False
        )


def _blocks(blocker_id: int, blocked_id: int) -> bool:
    return (
        Block.objects.using(alias_for_id(blocker_id))
        .filter(blocker_id=blocker_id, blocked_id=blocked_id)
        .exists()
    )


def block_delete(*, blocker: User, blocked_id: int) -> None:
    """Idempotent, and the same answer whoever the user is (deactivated, blocking the caller
    too, or no one): the block row is the caller's own, and a different answer would tell."""
    if not _blocks(blocker.id, blocked_id):
        return  # nothing to lift (and nothing written for an ID that is no one)
    # The block's effects on the blocked side are made sure of first (they are applied right
    # after the block, but a process that died in between leaves them to the sweep): lifting
    # the block must not hand back a follow the block removed. (Without a block, nothing.)
    apply_block({"blocker_id": blocker.id, "blocked_id": blocked_id})
    Block.objects.using(alias_for_id(blocker.id)).filter(
        blocker_id=blocker.id, blocked_id=blocked_id
    ).delete()


def close_friend_add(*, owner: User, friend_id: int) -> None:
    if owner.id == friend_id:
        raise ApiError(400, "cannot_add_self", "You cannot add yourself to close friends.")
    _target_for(owner.id, friend_id)
    using = alias_for_id(owner.id)
    with transaction.atomic(using=using):
        # Under the lock a block's handler (or the owner's own block) takes on this side.
        _counters_locked(using, owner.id)
        if blocked_either_way(owner.id, friend_id):
            raise _not_found()
        CloseFriend.objects.using(using).bulk_create(
            [CloseFriend(owner_id=owner.id, friend_id=friend_id)], ignore_conflicts=True
        )


def close_friend_remove(*, owner: User, friend_id: int) -> None:
    _target_for(owner.id, friend_id)
    CloseFriend.objects.using(alias_for_id(owner.id)).filter(
        owner_id=owner.id, friend_id=friend_id
    ).delete()


# --- Outbox handlers (idempotent) ----------------------------------------------------------


def follow_edge_sync(*, follower_id: int, followee_id: int) -> None:
    """Make the followee's `Follower` copy match the follower's `Following` row."""
    using = alias_for_id(followee_id)
    with transaction.atomic(using=using):
        _counters_locked(using, followee_id)  # serialises syncs of this followee
        followed_at = (
            Following.objects.using(alias_for_id(follower_id))
            .filter(follower_id=follower_id, followee_id=followee_id)
            .values_list("created_at", flat=True)
            .first()
        )
        if followed_at is not None:
            inserted = _insert_edge(
                using, "accounts_follower", ("followee_id", "follower_id"),
                (followee_id, follower_id), followed_at,
            )  # fmt: skip
            if inserted:
                _counter_add(using, followee_id, "follower_count", 1)
                # A request left pending (one going public could not turn into a follow, its
                # requester at the following limit then) is moot once they follow: it must
                # neither show nor wait for an approval.
                FollowRequest.objects.using(using).filter(
                    target_id=followee_id, requester_id=follower_id, approved_at__isnull=True
                ).delete()
                # The followee's posts join the follower's timeline now that the edge is on
                # both shards: a post the fan-out published before this row was there is
                # committed by now, so the merge reads it.
                _hooks_tell(GraphEvent.FOLLOW_STARTED, follower_id, followee_id, on=followee_id)
        else:
            deleted, _ = (
                Follower.objects.using(using)
                .filter(followee_id=followee_id, follower_id=follower_id)
                .delete()
            )
            if deleted:
                _counter_add(using, followee_id, "follower_count", -1)


@outbox_handler(GraphEvent.FOLLOW_SYNC)
def apply_follow_sync(payload: dict) -> None:
    follow_edge_sync(follower_id=payload["follower_id"], followee_id=payload["followee_id"])


@outbox_handler(GraphEvent.FOLLOW_APPROVED)
def apply_follow_approved(payload: dict) -> None:
    """Create the approved follow, unless it was withdrawn (the marker is gone) meanwhile. A
    follower who follows as many accounts as anyone may (since the approval, or approved with
    every other request when the account went public) keeps the request, pending again: it
    still shows as requested, and can be approved once they follow fewer."""
    follower_id, followee_id = payload["follower_id"], payload["followee_id"]
    marker = FollowRequest.objects.using(alias_for_id(followee_id)).filter(
        target_id=followee_id, requester_id=follower_id, approved_at__isnull=False
    )
    using = alias_for_id(follower_id)
    with transaction.atomic(using=using):
        # Checked under the follower's counter lock, which a withdrawal holds while it deletes
        # the request and a block's unfollow while it removes the edge: neither is undone.
        counters = _counters_locked(using, follower_id)
        # (Not when this follow is already made: by this handler, run before and cut short.)
        at_limit = (
            counters.following_count >= settings.FOLLOWING_LIMIT
            and not Following.objects.using(using)
            .filter(follower_id=follower_id, followee_id=followee_id)
            .exists()
        )
        if (
            marker.exists()
            and not at_limit
            and user_get_active(user_id=follower_id) is not None
            and not blocked_either_way(follower_id, followee_id)
            and _insert_edge(using, "accounts_following", ("follower_id", "followee_id"),
                             (follower_id, followee_id))
        ):  # fmt: skip
            _counter_add(using, follower_id, "following_count", 1)
    follow_edge_sync(follower_id=follower_id, followee_id=followee_id)
    if at_limit and not is_following(follower_id, followee_id):  # (followed since: moot)
        marker.update(approved_at=None)
    else:
        marker.delete()


@outbox_handler(GraphEvent.BLOCK_STARTED)
def _block_started_apply(payload: dict) -> None:
    """One step of the hooks, if the block still stands (one lifted before this ran, late, by
    the sweep, ends nothing), and the event for the next step if any hook has more to do: each
    step commits with its event, so a long removal holds no lock for long, and one cut short
    keeps what it did."""
    blocker_id, blocked_id = payload["blocker_id"], payload["blocked_id"]
    if not _blocks(blocker_id, blocked_id):
        return
    more = [hook(blocker_id=blocker_id, blocked_id=blocked_id) for hook in block_started_hooks]
    if any(more):
        outbox_enqueue(partition_id=blocker_id, kind=GraphEvent.BLOCK_STARTED, payload=payload)


@outbox_handler(GraphEvent.BLOCK_APPLIED)
def apply_block(payload: dict) -> None:
    """The blocked side: drop their follow, request and close-friend rows toward the blocker,
    while the block stands. Checked under the blocked user's counter lock, which their follow
    takes too: an event applied after the block was lifted (by the sweep, late) ends nothing
    made since, and a follow waiting on this lock meanwhile sees the block still standing or
    lifted, never half of it."""
    blocker_id, blocked_id = payload["blocker_id"], payload["blocked_id"]
    using = alias_for_id(blocked_id)
    with transaction.atomic(using=using):
        _counters_locked(using, blocked_id)
        if (
            not Block.objects.using(alias_for_id(blocker_id))
            .filter(blocker_id=blocker_id, blocked_id=blocked_id)
            .exists()
        ):
            return
        FollowRequest.objects.using(using).filter(
            target_id=blocked_id, requester_id=blocker_id
        ).delete()
        CloseFriend.objects.using(using).filter(owner_id=blocked_id, friend_id=blocker_id).delete()
        deleted, _ = (
            Following.objects.using(using)
            .filter(follower_id=blocked_id, followee_id=blocker_id)
            .delete()
        )
        if deleted:
            _counter_add(using, blocked_id, "following_count", -1)
            _hooks_tell(GraphEvent.FOLLOW_ENDED, blocked_id, blocker_id)
    follow_edge_sync(follower_id=blocked_id, followee_id=blocker_id)


# --- Bulk import and repair (seeding, migrations from other systems, operators) ---------------


RECOUNT_BATCH = 1000

# One batch of users on one shard: their counter rows are locked (in ID order) first, then
# counted and only the wrong ones written, in a statement of its own, so it reads the rows as
# they are once the locks are held. A follow or unfollow changes its edge row and its counter in
# one transaction, so the count sees either both or neither: no increment is lost.
_RECOUNT_LOCK_SQL = (
    "SELECT user_id FROM accounts_usercounters WHERE user_id = ANY(%s::int8[]) "
    "ORDER BY user_id FOR UPDATE"
)
_RECOUNT_SQL = """
WITH counted AS (
    SELECT c.user_id,
           (SELECT count(*) FROM accounts_follower f WHERE f.followee_id = c.user_id)
               AS followers,
           (SELECT count(*) FROM accounts_following f WHERE f.follower_id = c.user_id)
               AS following
    FROM accounts_usercounters c WHERE c.user_id = ANY(%s::int8[])
)
UPDATE accounts_usercounters c
SET follower_count = counted.followers, following_count = counted.following
FROM counted
WHERE c.user_id = counted.user_id
  AND (c.follower_count <> counted.followers OR c.following_count <> counted.following)
"""


def counters_recount(*, user_ids: list[int] | None = None) -> int:
    """Recompute follower/following counts from the graph rows, on every shard (or of these
    users), RECOUNT_BATCH users per short transaction, so follows on a shard being recounted
    never wait long; safe on a live system. Returns how many users' counts were corrected."""
    corrected = 0
    if user_ids is not None:
        for using, ids in group_by_alias(user_ids).items():
            ordered = sorted(set(ids))
            for start in range(0, len(ordered), RECOUNT_BATCH):
                corrected += _recount(using, ordered[start : start + RECOUNT_BATCH])
        return corrected
    for using in shard_aliases():
        after = 0
        while batch := list(
            UserCounters.objects.using(using)
            .filter(user_id__gt=after)
            .order_by("user_id")
            .values_list("user_id", flat=True)[:RECOUNT_BATCH]
        ):
            corrected += _recount(using, batch)
            after = batch[-1]
    return corrected


RECOUNT_ATTEMPTS = 5
DEADLOCK = "40P01"  # SQLSTATE of a transaction PostgreSQL ended to break a deadlock


def _recount(using: str, user_ids: list[int]) -> int:
    """One batch; run again when PostgreSQL ends it to break a deadlock (an outbox handler that
    locks two counter rows of the batch in the other order), which rolled nothing in."""
    for attempt in range(1, RECOUNT_ATTEMPTS + 1):
        try:
            with transaction.atomic(using=using), connections[using].cursor() as cursor:
                cursor.execute(_RECOUNT_LOCK_SQL, [user_ids])
                cursor.execute(_RECOUNT_SQL, [user_ids])
                return cursor.rowcount
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK or attempt == RECOUNT_ATTEMPTS:
                raise
            logger.info("recount batch on %s ended by a deadlock; again", using)
    raise AssertionError("unreachable")


def graph_bulk_import(*, edges: list[tuple[int, int]]) -> None:
    """Write follow edges on both shards directly (no outbox), then recount the users touched.

    Idempotent: existing edges are kept. For seeding and imports, not for user actions.
    """
    users = {user for edge in edges for user in edge}
    for user_id in users:
        UserCounters.objects.using(alias_for_id(user_id)).bulk_create(
            [UserCounters(user_id=user_id)], ignore_conflicts=True
        )
    now = timezone.now()
    by_follower: dict[str, list[Following]] = {}
    by_followee: dict[str, list[Follower]] = {}
    for follower_id, followee_id in edges:
        by_follower.setdefault(alias_for_id(follower_id), []).append(
            Following(follower_id=follower_id, followee_id=followee_id, created_at=now)
        )
        by_followee.setdefault(alias_for_id(followee_id), []).append(
            Follower(followee_id=followee_id, follower_id=follower_id, created_at=now)
        )
    for using, following in by_follower.items():
        Following.objects.using(using).bulk_create(
            following, ignore_conflicts=True, batch_size=2000
        )
    for using, followers in by_followee.items():
        Follower.objects.using(using).bulk_create(followers, ignore_conflicts=True, batch_size=2000)
    counters_recount(user_ids=sorted(users))
