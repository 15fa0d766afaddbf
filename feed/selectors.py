"""The home feed: timeline + followed celebrities' recent posts + the viewer's own, merged,
deduplicated, filtered against the current graph (so an unfollow or block hides at once),
hydrated in a fixed number of queries, newest first or ranked.

A missing timeline (new user, returning user, Redis restarted empty) is rebuilt inline from
PostgreSQL before answering: one query for the followings and one per shard for their recent
posts, bounded by FEED_TIMELINE_LENGTH, so the request that finds it missing answers in full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import connections

from feed import services, timelines
from feed.ranking import rank
from instagram.errors import ApiError
from instagram.ids import MAX_ID, timestamp_ms_of
from instagram.pagination import PageRequest, encode_cursor
from instagram.redis import get_redis
from instagram.sharding import alias_for_id
from posts.hydration import Hydrated, PostState, post_states, posts_hydrate, posts_render

MAX_ROUNDS = 4
CANDIDATE_SLACK = 3  # candidates read beyond a page, for the odd one hidden since it was pushed
RANKED_WINDOW_TTL = 30 * 60


def _candidates(graph: Graph, before_id: int | None, count: int) -> list[int]:
    """The newest `count` post IDs below `before_id` from every source, deduplicated."""
    ids, celebrities = timelines.home_read(
        graph.viewer_id, before_id=before_id, count=count, followees=graph.followees
    )
    if ids is None:
        services.timeline_rebuild(user_id=graph.viewer_id)
        ids, _ = timelines.timeline_read(graph.viewer_id, before_id=before_id, count=count)
    found = set(ids or [])
    for author_id, posts in celebrities.items():
        if posts is None:
            rebuilt = services.celebrity_rebuild(author_id=author_id)
            posts = [p for p in rebuilt if before_id is None or p < before_id][:count]
        found.update(posts)
    if before_id is None and count <= graph.own_limit:
        found.update(graph.own_newest[:count])  # read with the graph
    else:
        with connections[alias_for_id(graph.viewer_id)].cursor() as cursor:
            cursor.execute(_OWN_POSTS_SQL, [graph.viewer_id, before_id or MAX_ID + 1, count])
            found.update(row[0] for row in cursor.fetchall())
    return sorted(found, reverse=True)[:count]


_OWN_POSTS_SQL = (
    "SELECT id FROM posts_post WHERE author_id = %s AND deleted_at IS NULL AND id < %s "
    "ORDER BY id DESC LIMIT %s"
)
# Who the viewer follows, whom they blocked, and their own newest posts: one query on their
# shard (kind 1, 2 and 3).
_GRAPH_SQL = (
    "SELECT 1, followee_id FROM accounts_following WHERE follower_id = %(viewer)s "
    "UNION ALL SELECT 2, blocked_id FROM accounts_block WHERE blocker_id = %(viewer)s "
    "UNION ALL (SELECT 3, id FROM posts_post WHERE author_id = %(viewer)s "
    "AND deleted_at IS NULL ORDER BY id DESC LIMIT %(count)s)"
)


def _viewer_graph(viewer_id: int, own_count: int) -> Graph:
    with connections[alias_for_id(viewer_id)].cursor() as cursor:
        cursor.execute(_GRAPH_SQL, {"viewer": viewer_id, "count": own_count})
        rows = cursor.fetchall()
    return Graph(
        viewer_id=viewer_id,
        followees={u for kind, u in rows if kind == 1},
        blocked={u for kind, u in rows if kind == 2},
        own_newest=sorted((u for kind, u in rows if kind == 3), reverse=True),
        own_limit=own_count,
    )


@dataclass
class Graph:
    viewer_id: int
    followees: set[int]
    blocked: set[int]  # by the viewer; blocks of the viewer come with each post row
    own_newest: list[int] = field(default_factory=list)  # the viewer's newest posts...
    own_limit: int = 0  # ...up to this many, read with the graph
    saved: set[int] = field(default_factory=set)  # the viewer's saves among posts read so far

    def allows(self, post: PostState) -> bool:
        """May the viewer see this post in the feed, by the graph as it is right now? (Its
        author must also be active: checked against the author's card or row.)"""
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


def _visible_posts(
    graph: Graph, before_id: int | None, want: int
) -> tuple[list[PostState], Hydrated, int | None]:
    """Up to `want` posts the viewer may see, newest first, below `before_id`, with what renders
    them; and, when every round was spent on hidden candidates, the position to resume from
    (else None). The viewer's saves among them are collected in `graph.saved`."""
    shown: list[PostState] = []
    hydrated = Hydrated(bodies={}, cards={})
    stale: list[int] = []
    count = want + CANDIDATE_SLACK
    resume: int | None = None
    for _ in range(MAX_ROUNDS):
        candidates = _candidates(graph, before_id, count)
        if not candidates:
            break
        states = post_states(graph.viewer_id, candidates, saved=graph.saved)
        eligible = []
        for post_id in candidates:
            state = states.get(post_id)
            if state is None or state.deleted:
                stale.append(post_id)  # deleted
            elif state.author_id not in graph.followees and state.author_id != graph.viewer_id:
                stale.append(post_id)  # unfollowed since it was pushed
            elif graph.allows(state):
                eligible.append(state)
        hydrated = posts_hydrate(eligible, known=hydrated)
        for state in eligible:
            if hydrated.author_active(state.author_id):
                shown.append(state)
                if len(shown) == want:
                    break
        if len(shown) == want or len(candidates) < count:
            resume = None
            break
        before_id = resume = candidates[-1]
    if stale:
        timelines.timeline_remove(graph.viewer_id, stale)
    return shown, hydrated, resume


def feed_home_page(*, viewer_id: int, page: PageRequest, ranked: bool = False) -> dict:
    if ranked:
        first = page.cursor is None
        return _ranked_page(
            _viewer_graph(viewer_id, settings.FEED_RANKED_WINDOW + CANDIDATE_SLACK if first else 0),
            page,
        )
    graph = _viewer_graph(viewer_id, page.limit + 1 + CANDIDATE_SLACK if page.cursor is None else 0)
    before_id = page.cursor.id if page.cursor is not None else None
    posts, hydrated, resume = _visible_posts(graph, before_id, page.limit + 1)
    next_cursor = None
    if len(posts) > page.limit:
        posts = posts[: page.limit]
        next_cursor = encode_cursor(ts=timestamp_ms_of(posts[-1].id), id=posts[-1].id)
    elif resume is not None:
        next_cursor = encode_cursor(ts=timestamp_ms_of(resume), id=resume)
    return {
        "posts": posts_render(posts, hydrated, saved=graph.saved),
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


def _window_key(viewer_id: int, window: int) -> str:
    return f"feedrank:{{{viewer_id}}}:{window}"


def _ranked_page(graph: Graph, page: PageRequest) -> dict:
    """A ranked window of recent candidates, scored once and kept for paging.

    The cursor of a ranked page names the window (`ts`) and the position in it (`id`), so the
    pages of one window never repeat or skip a post whatever is posted meanwhile.
    """
    client = get_redis()
    viewer_id = graph.viewer_id
    if page.cursor is None:
        window = int(time.time() * 1000)
        posts, hydrated, _ = _visible_posts(graph, None, settings.FEED_RANKED_WINDOW)
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
    states = post_states(viewer_id, chosen, saved=graph.saved)
    allowed = [states[i] for i in chosen if i in states and graph.allows(states[i])]
    hydrated = posts_hydrate(allowed)
    visible = [state for state in allowed if hydrated.author_active(state.author_id)]
    end = start + len(chosen)
    has_more = end < len(order)
    return {
        "posts": posts_render(visible, hydrated, saved=graph.saved),
        "next_cursor": encode_cursor(ts=window, id=end) if has_more else None,
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
