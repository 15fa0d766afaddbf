"""The home feed: timeline + followed celebrities' recent posts + the viewer's own, merged,
deduplicated, filtered against the current graph (so an unfollow or block hides at once),
hydrated in a fixed number of queries, newest first or ranked.

A warm read is one Redis script (the bearer token's check, when the view asks for it; the
timeline and the lists of the celebrities the followee hint names, merged to a page's worth,
with those posts' cached bodies and their authors' cards) and
one query per shard, all in flight at once (the viewer's shard's also reads their graph, own
posts and saves); what the script could not return (the viewer's own posts) costs one MGET more
(posts.hydration). A missing timeline (new user, returning user, Redis restarted empty) is
rebuilt inline from PostgreSQL before answering: one query for the followings and one per shard
for their recent posts, bounded by FEED_TIMELINE_LENGTH, so the request that finds it missing
answers in full.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import DatabaseError, connections
from redis.exceptions import RedisError

from accounts.selectors import AUTHOR_CARDS, following_ids_among, hidden_among
from feed import services, timelines
from feed.ranking import rank
from instagram.errors import ApiError
from instagram.ids import MAX_ID, id_array, timestamp_ms_of
from instagram.pagination import PageRequest, encode_cursor
from instagram.redis import get_redis
from instagram.scatter import scatter
from instagram.sharding import alias_for_id, group_by_alias
from media.services import media_views_count
from posts.hydration import (
    POST_BODIES,
    STATE_COLUMNS_SQL,
    STATES_SQL,
    Hydrated,
    PostState,
    Prefetched,
    mentioned_in,
    post_states,
    posts_hydrate,
    posts_render,
)

logger = logging.getLogger(__name__)

MAX_ROUNDS = 4
CANDIDATE_SLACK = 3  # candidates read beyond a page, for the odd one hidden since it was pushed
RANKED_WINDOW_TTL = 30 * 60
# The kind of a ranked page's cursor: its position is an index into a window, not a post ID, so
# the newest-first feed must refuse it (and the ranked one takes no other).
RANKED_CURSOR = "ranked"


@dataclass
class Graph:
    viewer_id: int
    followees: set[int]
    blocked: set[int]  # by the viewer; blocks of the viewer come with each post's state

    def allows(self, post: PostState) -> bool:
        """May the viewer see this post in the feed, by the graph as it is right now? (Its
        author must also be active: checked against the author's card.)"""
        if post.deleted:
            return False
        if post.author_id == self.viewer_id:
            return True
        return (
            post.published
            and post.author_id in self.followees
            and post.author_id not in self.blocked
            and not post.author_blocks_viewer
        )


# Who the viewer follows (kind 1) and whom they blocked (kind 2), on their shard.
_GRAPH_SQL = (
    "SELECT 1, followee_id FROM accounts_following WHERE follower_id = %(viewer)s "
    "UNION ALL SELECT 2, blocked_id FROM accounts_block WHERE blocker_id = %(viewer)s"
)


def _viewer_graph(viewer_id: int) -> Graph:
    with connections[alias_for_id(viewer_id)].cursor() as cursor:
        cursor.execute(_GRAPH_SQL, {"viewer": viewer_id})
        rows = cursor.fetchall()
    return Graph(
        viewer_id=viewer_id,
        followees={u for kind, u in rows if kind == 1},
        blocked={u for kind, u in rows if kind == 2},
    )


# The viewer's shard, in one query: the states of the candidates there and of the viewer's own
# newest posts (kind 0, a row each), and as one array each, the viewer's saves among all of
# them (kind 3) and, when asked, the graph (kind 1 followees, kind 2 blocked).
_OWN_SQL = "(SELECT ids FROM own)"
_NO_STATE = "NULL::int8" + ", NULL" * 8


def _array_row(kind: int, select: str) -> str:
    return f" UNION ALL SELECT {kind}, {_NO_STATE}, ARRAY({select})"


_HOME_SQL = (
    "WITH own AS MATERIALIZED (SELECT ARRAY(SELECT id FROM posts_post WHERE author_id = "
    "%(viewer)s AND deleted_at IS NULL AND id < %(before)s::int8 AND id > %(after)s::int8 "
    "ORDER BY id DESC LIMIT %(count)s) AS ids) "
    "SELECT 0, " + STATE_COLUMNS_SQL + ", NULL::int8[] FROM posts_post p "
    "WHERE p.id = ANY(%(ids)s::int8[] || "
    + _OWN_SQL
    + ")"
    + _array_row(
        3,
        "SELECT s.post_id FROM posts_save s WHERE s.user_id = %(viewer)s "
        "AND s.post_id = ANY(%(all)s::int8[] || " + _OWN_SQL + ")",
    )
)
_HOME_AND_GRAPH_SQL = (
    _HOME_SQL
    + _array_row(1, "SELECT followee_id FROM accounts_following WHERE follower_id = %(viewer)s")
    + _array_row(2, "SELECT blocked_id FROM accounts_block WHERE blocker_id = %(viewer)s")
)


@dataclass
class _Read:
    """One feed read: the viewer, their graph once known, their saves among posts read, and
    the cached bodies and cards the timeline script read with the candidates."""

    viewer_id: int
    graph: Graph | None = None
    saved: set[int] = field(default_factory=set)
    prefetched: Prefetched = field(default_factory=lambda: Prefetched(bodies={}, cards={}))


_PREFETCH = (POST_BODIES, AUTHOR_CARDS)  # read by the timeline script with the candidates


def _round(
    read: _Read, before_id: int | None, count: int, first: timelines.HomeRead | None = None
) -> tuple[list[int], dict]:
    """The newest `count` post IDs below `before_id` from every source (timeline, followed
    celebrities, the viewer's own), deduplicated, with their states; fills in `read.graph`.

    Warm, that is one Redis script (the followee hint names the celebrities to read) and one
    query per shard (the viewer's shard's also reads their graph, own posts and saves).
    """
    viewer_id = read.viewer_id
    followees = read.graph.followees if read.graph is not None else None
    try:
        home = first or timelines.home_read(
            viewer_id, before_id=before_id, count=count, followees=followees, prefetch=_PREFETCH
        )
        if not home.complete:  # no hint: the graph first, then the celebrities it names
            read.graph = _viewer_graph(viewer_id)
            timelines.follows_hint_fill(viewer_id, read.graph.followees)
            home = timelines.home_read(
                viewer_id,
                before_id=before_id,
                count=count,
                followees=read.graph.followees,
                prefetch=_PREFETCH,
            )
        found = set(home.posts)
        floors = dict(home.floors)
        # A rebuild writes to Redis, which can fail where the read did not (out of memory under
        # `noeviction`, a timeout): the round is then pulled from the database all the same.
        if home.timeline_missing:
            services.timeline_rebuild(user_id=viewer_id)
            rebuilt_ids, _, floor = timelines.timeline_read(
                viewer_id, before_id=before_id, count=count
            )
            found.update(rebuilt_ids or ())
            floors[timelines.TIMELINE_SOURCE] = floor
        rebuilt_lists = services.celebrity_lists_rebuild(list(home.celebrities_missing))
        for author_id, rebuilt in rebuilt_lists.items():
            found.update([p for p in rebuilt if before_id is None or p < before_id][:count])
            floors[author_id] = timelines.capped_floor(rebuilt, settings.FEED_CELEBRITY_POSTS)
        if floors:
            found |= _below_floors(read, found, floors, before_id, count)
    except RedisError:
        logger.warning("timelines unavailable: the feed is pulled from the database", exc_info=True)
        return _round_from_database(read, before_id, count)
    read.prefetched.bodies.update(home.bodies)
    read.prefetched.cards.update(home.cards)
    newest = _newest(found, count)
    states = _states(read, newest, before_id, count)
    assert read.graph is not None  # read with the states at the latest
    if home.hint_digest is not None and home.hint_digest != timelines.follows_hint_digest(
        read.graph.followees
    ):
        # The hint was out of date (a follow whose mark was lost, a bulk import): it may have
        # left out a celebrity. Correct it and read this round again with the real followees.
        timelines.follows_hint_fill(viewer_id, read.graph.followees, replace=True)
        return _round(read, before_id, count)
    own = {post_id for post_id, state in states.items() if state.author_id == viewer_id}
    return sorted(own.union(newest), reverse=True)[:count], states


def _below_floors(
    read: _Read, found: set[int], floors: dict[int, int], before_id: int | None, count: int
) -> set[int]:
    """The posts the sources floored above the round's last candidate may lack, from the
    database: one query per shard for their authors (the timeline's: every followed account),
    newest `count` below `before_id`. Only a page that scrolls past a capped source's oldest
    post pays it; without it such a page would skip that source's older posts."""
    cutoff = sorted(found)[-count] if len(found) >= count else 0
    deep = [source for source, floor in floors.items() if floor > cutoff]
    if not deep:
        return set()
    if before_id is None:
        # Floored above even a first page (emptied by unfollows or deletes since it was cut,
        # or written before floors were kept): rebuilt at the next read, so that this pull is
        # not made again by every page that follows. (Not a set too short to hold a first
        # page however rebuilt: that would rebuild it on every read.)
        lengths = {timelines.TIMELINE_SOURCE: settings.FEED_TIMELINE_LENGTH}
        timelines.sets_forget(
            read.viewer_id,
            [s for s in deep if lengths.get(s, settings.FEED_CELEBRITY_POSTS) >= count],
            short_of=count,
        )
    if read.graph is None:
        read.graph = _viewer_graph(read.viewer_id)
    authors = set(read.graph.followees) if timelines.TIMELINE_SOURCE in deep else set()
    authors.update(source for source in deep if source != timelines.TIMELINE_SOURCE)
    return set(services.recent_post_ids(authors, limit=count, before_id=before_id))


def _round_from_database(read: _Read, before_id: int | None, count: int) -> tuple[list[int], dict]:
    """`_round` without Redis: the followed accounts' newest posts, one query per shard (the
    pull the timelines exist to avoid; slower, the same answer)."""
    if read.graph is None:
        read.graph = _viewer_graph(read.viewer_id)
    found = set(services.recent_post_ids(read.graph.followees, limit=count, before_id=before_id))
    newest = _newest(found, count)
    states = _states(read, newest, before_id, count)
    own = {post_id for post_id, state in states.items() if state.author_id == read.viewer_id}
    return sorted(own.union(newest), reverse=True)[:count], states


def _newest(found: set[int], count: int) -> list[int]:
    """The `count` newest of the candidates found, oldest first: only they can make the round,
    so only their states are read."""
    return sorted(found)[-count:]


def _states(read: _Read, post_ids: list[int], before_id: int | None, count: int) -> dict:
    """States of these posts (oldest first) and of the viewer's own newest below `before_id`:
    one query per shard, all in flight at once, the viewer's own always (their own posts, their
    saves, and the graph if unknown). With `count` posts given, only own posts newer than the
    oldest of them can make the round, so only those are read."""
    home_alias = alias_for_id(read.viewer_id)
    by_alias = group_by_alias(post_ids)
    home: dict[str, int | str | None] = {
        "viewer": read.viewer_id,
        "ids": id_array(by_alias.get(home_alias, [])),
        "all": id_array(post_ids),
        "before": before_id or MAX_ID,
        "after": post_ids[0] if len(post_ids) >= count else 0,
        "count": count,
    }
    queries = [(home_alias, _HOME_SQL if read.graph is not None else _HOME_AND_GRAPH_SQL, home)]
    queries.extend(
        (alias, STATES_SQL, {"viewer": read.viewer_id, "ids": id_array(ids)})
        for alias, ids in by_alias.items()
        if alias != home_alias
    )
    home_rows, *other_rows = scatter(queries)
    states: dict[int, PostState] = {}
    for rows in other_rows:
        states.update((values[0], PostState(*values)) for values in rows)
    arrays: dict[int, list[int]] = {}
    for kind, *values, ids_of_kind in home_rows:
        if kind == 0:
            states[values[0]] = PostState(*values)
        else:
            arrays[kind] = ids_of_kind
    read.saved.update(arrays[3])
    if read.graph is None:
        read.graph = Graph(read.viewer_id, followees=set(arrays[1]), blocked=set(arrays[2]))
    return states


def _visible_posts(
    read: _Read, before_id: int | None, want: int, first: timelines.HomeRead | None = None
) -> tuple[list[PostState], Hydrated, int | None]:
    """Up to `want` posts the viewer may see, newest first, below `before_id`, with what renders
    them; and, when every round was spent on hidden candidates, the position to resume from
    (else None). The viewer's saves among them are collected in `read.saved`. `first` is the
    first round's Redis read, if made already (`feed_first_read`)."""
    shown: list[PostState] = []
    hydrated = Hydrated(bodies={}, cards={})
    stale = _Stale()
    count = want + CANDIDATE_SLACK
    resume: int | None = None
    for _ in range(MAX_ROUNDS):
        candidates, states = _round(read, before_id, count, first)
        first = None
        graph = read.graph
        assert graph is not None  # read with the first round's states
        if not candidates:
            break
        eligible = []
        for post_id in candidates:
            state = states.get(post_id)
            if state is None or state.deleted:
                stale.deleted.append(post_id)
                if state is not None:
                    stale.deleted_by.setdefault(state.author_id, []).append(post_id)
            elif state.author_id not in graph.followees and state.author_id != graph.viewer_id:
                stale.unfollowed.setdefault(state.author_id, []).append(post_id)
            elif graph.allows(state):
                eligible.append(state)
        # Only as many as the page still wants are hydrated (their cached entries parsed): more
        # only where an author turns out inactive.
        pending = eligible
        while pending and len(shown) < want:
            batch, pending = pending[: want - len(shown)], pending[want - len(shown) :]
            hydrated = posts_hydrate(batch, known=hydrated, prefetched=read.prefetched)
            shown.extend(state for state in batch if hydrated.author_active(state.author_id))
        if len(shown) == want or len(candidates) < count:
            resume = None
            break
        before_id = resume = candidates[-1]
    if stale.deleted or stale.unfollowed:
        _stale_remove(read.viewer_id, stale)
    return shown, hydrated, resume


@dataclass
class _Stale:
    """Candidates a read found it must never show again: deleted posts (by author, where the
    row says), and posts of accounts the viewer no longer follows (by author)."""

    deleted: list[int] = field(default_factory=list)
    deleted_by: dict[int, list[int]] = field(default_factory=dict)
    unfollowed: dict[int, list[int]] = field(default_factory=dict)


def _stale_remove(viewer_id: int, stale: _Stale) -> None:
    """Drop them from the viewer's timeline (and deleted posts from their authors' celebrity
    lists, which every follower reads), then read again what the read judged by: a post
    restored, or an account followed again, since the read read it has what was dropped put
    back (the restore's fan-out or the follow's merge may have run in between and found it
    still there)."""
    unfollowed = [post_id for post_ids in stale.unfollowed.values() for post_id in post_ids]
    removed = stale.deleted + unfollowed
    try:
        timelines.timeline_remove(viewer_id, removed)
        for author_id, post_ids in stale.deleted_by.items():
            timelines.celebrity_remove(author_id, post_ids)
        followed_again = following_ids_among(viewer_id, list(stale.unfollowed))
        back = [post_id for author in followed_again for post_id in stale.unfollowed[author]]
        restored = set(
            services.live_post_ids(
                [post_id for post_ids in stale.deleted_by.values() for post_id in post_ids]
            )
        )
        timelines.timeline_add(viewer_id, back + sorted(restored))
        for author_id, post_ids in stale.deleted_by.items():
            timelines.celebrity_readd(author_id, [p for p in post_ids if p in restored])
    except (RedisError, DatabaseError):
        # A cleanup never fails the page. Whatever it may have taken is put back (reads filter
        # it anyway): cleaned up by a later read, never lost.
        logger.warning("stale timeline entries kept", exc_info=True)
        try:
            timelines.timeline_add(viewer_id, removed)
            for author_id, post_ids in stale.deleted_by.items():
                timelines.celebrity_readd(author_id, post_ids)
        except RedisError:
            logger.warning("stale timeline entries not put back", exc_info=True)


def _want(page: PageRequest) -> int:
    return page.limit + 1  # one more than shown tells whether there are more


def feed_first_read(
    token_key: str, page: PageRequest
) -> tuple[bytes | None, timelines.HomeRead | None]:
    """The newest-first page's first Redis read made with the check of the bearer token whose
    cache entry is `token_key`, in one call: the entry, and the read for the user it names
    (pass it to `feed_home_page` once the entry is checked). A single Redis only."""
    return timelines.home_read_for_token(
        token_key,
        before_id=page.cursor.id if page.cursor is not None else None,
        count=_want(page) + CANDIDATE_SLACK,  # as `_visible_posts` reads
        prefetch=_PREFETCH,
    )


def feed_home_page(
    *,
    viewer_id: int,
    page: PageRequest,
    ranked: bool = False,
    first: timelines.HomeRead | None = None,
) -> dict:
    """A page of the viewer's home feed; `first` is its first Redis read, from
    `feed_first_read` (newest first only)."""
    read = _Read(viewer_id=viewer_id)
    if ranked:
        try:
            return _ranked_page(read, page)
        except RedisError:  # its windows live in Redis; the newest-first feed does without
            logger.warning("ranked feed unavailable", exc_info=True)
            raise ApiError(503, "unavailable", "Please try again shortly.", retry_after=5)
    before_id = page.cursor.id if page.cursor is not None else None
    posts, hydrated, resume = _visible_posts(read, before_id, _want(page), first)
    next_cursor = None
    if len(posts) > page.limit:
        posts = posts[: page.limit]
        next_cursor = encode_cursor(ts=timestamp_ms_of(posts[-1].id), id=posts[-1].id)
    elif resume is not None:
        next_cursor = encode_cursor(ts=timestamp_ms_of(resume), id=resume)
    media_views_count(_media_ids(posts, hydrated))
    return {
        "posts": posts_render(
            posts,
            hydrated,
            saved=read.saved,
            hidden_mentions=hidden_among(viewer_id, mentioned_in(posts, hydrated)),
        ),
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


def _media_ids(posts: list[PostState], hydrated: Hydrated) -> Iterator[int]:
    """The media of these posts, read from their bodies (only if iterated: a sampled count)."""
    for post in posts:
        for item in orjson.loads(hydrated.bodies[post.id].json)["media"]:
            yield int(item["media_id"])


def _window_key(viewer_id: int, window: int) -> str:
    return f"feedrank:{{{viewer_id}}}:{window}"


def _ranked_page(read: _Read, page: PageRequest) -> dict:
    """A ranked window of recent candidates, scored once and kept for paging.

    The cursor of a ranked page names the window (`ts`) and the position in it (`id`), so the
    pages of one window never repeat or skip a post whatever is posted meanwhile; it is of kind
    RANKED_CURSOR, so neither feed reads the other's cursor.
    """
    client = get_redis()
    viewer_id = read.viewer_id
    if page.cursor is None:
        window = int(time.time() * 1000)
        posts, hydrated, _ = _visible_posts(read, None, settings.FEED_RANKED_WINDOW)
        candidates = [
            _Ranked(p.id, p.author_id, hydrated.hashtags(p.id), p.like_count,
                    p.comment_count)
            for p in posts
        ]  # fmt: skip
        order = [c.id for c in rank(viewer_id=viewer_id, posts=candidates, now_ms=window)]
        client.set(_window_key(viewer_id, window), orjson.dumps(order), ex=RANKED_WINDOW_TTL)
        start = 0
    else:
        window, start = page.cursor.ts, page.cursor.id
        raw = client.get(_window_key(viewer_id, window))
        if raw is None:
            raise ApiError(400, "invalid_cursor", "This ranked feed has expired; start again.")
        order = orjson.loads(raw)
    chosen = order[start : start + page.limit]
    graph = read.graph or _viewer_graph(viewer_id)
    states = post_states(viewer_id, chosen, saved=read.saved)
    allowed = [states[i] for i in chosen if i in states and graph.allows(states[i])]
    hydrated = posts_hydrate(allowed)
    visible = [state for state in allowed if hydrated.author_active(state.author_id)]
    media_views_count(_media_ids(visible, hydrated))
    end = start + len(chosen)
    has_more = end < len(order)
    return {
        "posts": posts_render(
            visible,
            hydrated,
            saved=read.saved,
            hidden_mentions=hidden_among(viewer_id, mentioned_in(visible, hydrated)),
        ),
        "next_cursor": encode_cursor(ts=window, id=end, kind=RANKED_CURSOR) if has_more else None,
        "has_more": has_more,
    }


@dataclass(frozen=True)
class _Ranked:
    """A candidate as ranking sees it: its state's counts and its body's hashtags."""

    id: int
    author_id: int
    hashtags: list
    like_count: int
    comment_count: int
