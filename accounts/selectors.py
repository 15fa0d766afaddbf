"""Reads of users and the graph. Each visibility rule lives here, once, for every app to call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Q

from accounts.models import (
    Block,
    CloseFriend,
    Follower,
    Following,
    FollowRequest,
    User,
    UserCounters,
)
from instagram.cache import Cached, CachedKind
from instagram.ids import parse_id_text
from instagram.pagination import PageRequest, encode_cursor
from instagram.renderers import dumps
from instagram.sharding import alias_for_id, group_by_alias

SUMMARY_FIELDS = ("id", "username", "full_name", "profile_pic_url", "is_verified", "is_private")


def parse_user_id(raw: str) -> int | None:
    """A user ID from a path segment, or None for anything that cannot be one."""
    return parse_id_text(raw)


def user_get_active(*, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id, is_active=True).first()


def user_get_by_handle(*, handle: str) -> User | None:
    """By ID (all digits) or username (any case)."""
    user_id = parse_user_id(handle)
    if user_id is not None:
        return user_get_active(user_id=user_id)
    if len(handle) > 30 or "\x00" in handle:
        return None
    return User.objects.filter(username=handle.lower(), is_active=True).first()


def user_summary(user: User | dict) -> dict:
    get = user.get if isinstance(user, dict) else lambda name: getattr(user, name)
    return {
        "user_id": str(get("id")),
        "username": get("username"),
        "full_name": get("full_name"),
        "profile_pic_url": get("profile_pic_url") or None,
        "is_verified": get("is_verified"),
        "is_private": get("is_private"),
    }


def users_by_id(user_ids: Iterable[int]) -> dict[int, dict]:
    """Active users' summary fields in one query."""
    rows = User.objects.filter(pk__in=list(user_ids), is_active=True).values(*SUMMARY_FIELDS)
    return {row["id"]: row for row in rows}


def _author_cards_load(user_ids: list[int]) -> dict[int, Cached]:
    """The author object of each user as JSON; `null` for a deactivated account."""
    rows = User.objects.filter(pk__in=user_ids).values(
        "id", "username", "profile_pic_url", "is_verified", "is_active"
    )
    return {
        row["id"]: Cached(
            dumps(
                {
                    "user_id": str(row["id"]),
                    "username": row["username"],
                    "profile_pic_url": row["profile_pic_url"] or None,
                    "is_verified": row["is_verified"],
                }
                if row["is_active"]
                else None
            )
        )
        for row in rows
    }


# The author object of posts in hot lists, as JSON (`null` while the account is deactivated:
# its content is hidden): cached in Redis (`card:{id}`), marked changed before and after every
# change to these fields (`services.profile.user_cards_forget`), otherwise kept ten minutes.
AUTHOR_CARDS = CachedKind(prefix="card", ttl=600, load=_author_cards_load, nullable=True)


# --- Relationships -------------------------------------------------------------------------


def is_following(follower_id: int, followee_id: int) -> bool:
    return (
        Following.objects.using(alias_for_id(follower_id))
        .filter(follower_id=follower_id, followee_id=followee_id)
        .exists()
    )


def following_ids(user_id: int) -> list[int]:
    """Everyone the user follows: one query on the user's shard."""
    return list(
        Following.objects.using(alias_for_id(user_id))
        .filter(follower_id=user_id)
        .values_list("followee_id", flat=True)
    )


def following_ids_among(user_id: int, user_ids: list[int]) -> list[int]:
    """Those of `user_ids` the user follows: one query on the user's shard (none for none)."""
    if not user_ids:
        return []
    return list(
        Following.objects.using(alias_for_id(user_id))
        .filter(follower_id=user_id, followee_id__in=user_ids)
        .values_list("followee_id", flat=True)
    )


def follower_ids_batched(user_id: int, *, batch_size: int = 1000) -> Iterator[list[int]]:
    """The user's followers in batches (keyset by row ID), never all of them in memory."""
    rows = Follower.objects.using(alias_for_id(user_id)).filter(followee_id=user_id)
    last_id = 0
    while True:
        batch = list(
            rows.filter(id__gt=last_id).order_by("id").values_list("id", "follower_id")[:batch_size]
        )
        if not batch:
            return
        yield [follower_id for _, follower_id in batch]
        if len(batch) < batch_size:
            return
        last_id = batch[-1][0]


def close_friend_ids(owner_id: int) -> set[int]:
    return set(
        CloseFriend.objects.using(alias_for_id(owner_id))
        .filter(owner_id=owner_id)
        .values_list("friend_id", flat=True)
    )


def blocked_either_way(a_id: int, b_id: int) -> bool:
    """True if either user blocked the other (one query per shard involved)."""
    a_alias, b_alias = alias_for_id(a_id), alias_for_id(b_id)
    a_blocks = Q(blocker_id=a_id, blocked_id=b_id)
    b_blocks = Q(blocker_id=b_id, blocked_id=a_id)
    if a_alias == b_alias:
        return Block.objects.using(a_alias).filter(a_blocks | b_blocks).exists()
    return (
        Block.objects.using(a_alias).filter(a_blocks).exists()
        or Block.objects.using(b_alias).filter(b_blocks).exists()
    )


def hidden_among(viewer_id: int | None, user_ids: Iterable[int]) -> set[int]:
    """The users among `user_ids` the viewer may not see: deactivated (or gone), or blocked
    either way. One query, and one per shard holding any of the active ones (none for none)."""
    ids = set(user_ids) - {viewer_id}
    if not ids:
        return set()
    active = set(User.objects.filter(pk__in=ids, is_active=True).values_list("id", flat=True))
    hidden = ids - active
    if viewer_id is not None:
        hidden |= blocked_among(viewer_id, active)
    return hidden


def blocked_among(viewer_id: int, user_ids: Iterable[int]) -> set[int]:
    """The users among `user_ids` the viewer blocked or who blocked the viewer.

    One query per shard holding any of them (the viewer's own shard answers both directions).
    """
    ids = set(user_ids)
    if not ids:
        return set()
    viewer_alias = alias_for_id(viewer_id)
    by_alias = group_by_alias(ids)
    by_alias.setdefault(viewer_alias, [])
    hidden: set[int] = set()
    for alias, alias_ids in by_alias.items():
        condition = Q(blocker_id__in=alias_ids, blocked_id=viewer_id)
        if alias == viewer_alias:
            condition |= Q(blocker_id=viewer_id, blocked_id__in=ids)
        for blocker, blocked in (
            Block.objects.using(alias).filter(condition).values_list("blocker_id", "blocked_id")
        ):
            hidden.add(blocked if blocker == viewer_id else blocker)
    return hidden


@dataclass(frozen=True)
class Relationship:
    """How the viewer stands to the owner of a profile, with the owner's counts."""

    follower_count: int
    following_count: int
    post_count: int
    followed_by_viewer: bool = False
    requested_by_viewer: bool = False
    blocked_by_viewer: bool = False
    blocks_viewer: bool = False


def relationship(viewer_id: int | None, owner_id: int) -> Relationship:
    """Counts and relationship flags in one query per shard (owner's, then viewer's)."""
    owner_alias = alias_for_id(owner_id)
    owner_side = UserCounters.objects.using(owner_alias).filter(user_id=owner_id)
    if viewer_id is not None and viewer_id != owner_id:
        owner_side = owner_side.annotate(
            requested=Exists(
                FollowRequest.objects.using(owner_alias).filter(
                    target_id=owner_id, requester_id=viewer_id, approved_at__isnull=True
                )
            ),
            blocks_viewer=Exists(
                Block.objects.using(owner_alias).filter(blocker_id=owner_id, blocked_id=viewer_id)
            ),
        )
    row = owner_side.values().first() or _owner_side_without_counters(
        owner_alias, viewer_id, owner_id
    )
    counts: dict[str, Any] = {
        "follower_count": row["follower_count"],
        "following_count": row["following_count"],
        "post_count": row["post_count"],
    }
    if viewer_id is None or viewer_id == owner_id:
        return Relationship(**counts)
    viewer_alias = alias_for_id(viewer_id)
    flags = (
        UserCounters.objects.using(viewer_alias)
        .filter(pk=viewer_id)
        .annotate(
            follows=Exists(
                Following.objects.using(viewer_alias).filter(
                    follower_id=viewer_id, followee_id=owner_id
                )
            ),
            blocks=Exists(
                Block.objects.using(viewer_alias).filter(blocker_id=viewer_id, blocked_id=owner_id)
            ),
        )
        .values("follows", "blocks")
        .first()
    ) or _viewer_flags_without_counters(viewer_alias, viewer_id, owner_id)
    return Relationship(
        **counts,
        followed_by_viewer=flags["follows"],
        requested_by_viewer=bool(row.get("requested", False)),
        blocked_by_viewer=flags["blocks"],
        blocks_viewer=bool(row.get("blocks_viewer", False)),
    )


def _owner_side_without_counters(alias: str, viewer_id: int | None, owner_id: int) -> dict:
    """The owner's side when their counters row is missing (a crash at sign-up, an account made
    in the admin): no counts, but a pending request or a block of the viewer still counts."""
    row: dict[str, Any] = {"follower_count": 0, "following_count": 0, "post_count": 0}
    if viewer_id is not None and viewer_id != owner_id:
        row["requested"] = (
            FollowRequest.objects.using(alias)
            .filter(target_id=owner_id, requester_id=viewer_id, approved_at__isnull=True)
            .exists()
        )
        row["blocks_viewer"] = (
            Block.objects.using(alias).filter(blocker_id=owner_id, blocked_id=viewer_id).exists()
        )
    return row


def _viewer_flags_without_counters(alias: str, viewer_id: int, owner_id: int) -> dict:
    return {
        "follows": Following.objects.using(alias)
        .filter(follower_id=viewer_id, followee_id=owner_id)
        .exists(),
        "blocks": Block.objects.using(alias)
        .filter(blocker_id=viewer_id, blocked_id=owner_id)
        .exists(),
    }


def content_visible(owner: User, viewer_id: int | None, rel: Relationship) -> bool:
    if viewer_id == owner.id:
        return True
    if rel.blocked_by_viewer or rel.blocks_viewer:
        return False
    return not owner.is_private or rel.followed_by_viewer


def can_view_profile_content(viewer_id: int | None, owner: User) -> bool:
    """The one rule for posts, lists and stories of `owner` as seen by `viewer`."""
    if viewer_id == owner.id:
        return True
    if viewer_id is not None and blocked_either_way(viewer_id, owner.id):
        return False
    if not owner.is_private:
        return True
    return viewer_id is not None and is_following(viewer_id, owner.id)


# --- Profiles and lists ----------------------------------------------------------------------


def profile_for_viewer(*, viewer_id: int | None, handle: str) -> dict | None:
    """The profile of `handle` as `viewer` may see it, or None (404)."""
    owner = user_get_by_handle(handle=handle)
    if owner is None:
        return None
    rel = relationship(viewer_id, owner.id)
    if rel.blocks_viewer:
        return None
    return profile_body(owner, rel)


def profile_body(owner: User, rel: Relationship) -> dict:
    return {
        "user_id": str(owner.id),
        "username": owner.username,
        "full_name": owner.full_name,
        "bio": owner.bio,
        "profile_pic_url": owner.profile_pic_url or None,
        "is_private": owner.is_private,
        "is_verified": owner.is_verified,
        "follower_count": rel.follower_count,
        "following_count": rel.following_count,
        "post_count": rel.post_count,
        "followed_by_viewer": rel.followed_by_viewer,
        "follow_requested_by_viewer": rel.requested_by_viewer,
        "is_blocked_by_viewer": rel.blocked_by_viewer,
    }


def _micros(moment) -> int:
    return int(moment.timestamp() * 1_000_000)


def _edge_page(queryset, *, other: str, viewer_id: int | None, page: PageRequest) -> dict:
    """A page of graph edges as user summaries, newest first by the edge's time.

    The cursor is the last edge read (microsecond time, row ID). Users hidden from the viewer
    (deactivated, blocked either way) are left out without shifting the cursor, so a page never
    repeats or skips an edge.
    """
    if page.cursor is not None:
        moment = dt.datetime.fromtimestamp(page.cursor.ts / 1_000_000, tz=dt.UTC)
        queryset = queryset.filter(
            Q(created_at__lt=moment) | Q(created_at=moment, id__lt=page.cursor.id)
        )
    edges = list(
        queryset.order_by("-created_at", "-id").values_list("id", "created_at", other)[
            : page.limit + 1
        ]
    )
    has_more = len(edges) > page.limit
    edges = edges[: page.limit]
    users = users_by_id(user_id for _, _, user_id in edges)
    hidden = blocked_among(viewer_id, users) if viewer_id is not None else set()
    next_cursor = None
    if has_more:
        last_id, last_at, _ = edges[-1]
        next_cursor = encode_cursor(ts=_micros(last_at), id=last_id)
    return {
        "users": [
            user_summary(users[uid]) for _, _, uid in edges if uid in users and uid not in hidden
        ],
        "next_cursor": next_cursor,
        "has_more": has_more,
    }


def graph_list_for_viewer(
    *, viewer_id: int | None, owner_id: int, direction: str, page: PageRequest
) -> dict | None:
    """Followers or following of `owner`, newest first; None (404) if the viewer may not see."""
    owner = user_get_active(user_id=owner_id)
    if owner is None:
        return None
    if not content_visible(owner, viewer_id, relationship(viewer_id, owner.id)):
        return None
    alias = alias_for_id(owner_id)
    if direction == "followers":
        followers = Follower.objects.using(alias).filter(followee_id=owner_id)
        return _edge_page(followers, other="follower_id", viewer_id=viewer_id, page=page)
    following = Following.objects.using(alias).filter(follower_id=owner_id)
    return _edge_page(following, other="followee_id", viewer_id=viewer_id, page=page)


def follow_requests_page(*, user_id: int, page: PageRequest) -> dict:
    rows = FollowRequest.objects.using(alias_for_id(user_id)).filter(
        target_id=user_id, approved_at__isnull=True
    )
    return _edge_page(rows, other="requester_id", viewer_id=user_id, page=page)
