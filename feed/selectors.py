"""The home feed: timeline + followed celebrities' recent posts + the viewer's own, merged,
deduplicated, filtered against the current graph (so an unfollow or block hides at once),
hydrated in a fixed number of queries, newest first or ranked.

A missing timeline (new user, returning user, Redis restarted empty) is rebuilt inline from
PostgreSQL before answering: one query for the followings and one per shard for their recent
posts, bounded by FEED_TIMELINE_LENGTH, so the request that finds it missing answers in full.
"""

from __future__ import annotations

import time

import orjson
from django.conf import settings

from accounts.selectors import following_ids
from feed import services, timelines
from feed.ranking import rank
from instagram.errors import ApiError
from instagram.ids import timestamp_ms_of
from instagram.pagination import PageRequest, encode_cursor
from instagram.redis import get_redis
from instagram.sharding import alias_for_id
from posts.models import Post
from posts.selectors import AuthorAccess, author_access, post_is_visible, posts_fetch, posts_render

MAX_ROUNDS = 4
RANKED_WINDOW_TTL = 30 * 60


def _candidates(
    viewer_id: int, followees: set[int], before_id: int | None, count: int
) -> list[int]:
    """The newest `count` post IDs below `before_id` from every source, deduplicated."""
    ids = timelines.timeline_read(viewer_id, before_id=before_id, count=count)
    if ids is None:
        services.timeline_rebuild(user_id=viewer_id)
        ids = timelines.timeline_read(viewer_id, before_id=before_id, count=count) or []
    found = set(ids)
    celebrities = timelines.celebrities_among(sorted(followees))
    for author_id, posts in timelines.celebrity_posts(
        celebrities, before_id=before_id, count=count
    ).items():
        if posts is None:
            rebuilt = services.celebrity_rebuild(author_id=author_id)
            posts = [p for p in rebuilt if before_id is None or p < before_id][:count]
        found.update(posts)
    own = Post.objects.using(alias_for_id(viewer_id)).filter(
        author_id=viewer_id, deleted_at__isnull=True
    )
    if before_id is not None:
        own = own.filter(id__lt=before_id)
    found.update(own.order_by("-id").values_list("id", flat=True)[:count])
    return sorted(found, reverse=True)[:count]


def _visible_posts(
    viewer_id: int, followees: set[int], before_id: int | None, want: int
) -> tuple[list[Post], AuthorAccess]:
    """Up to `want` posts the viewer may see, newest first, below `before_id`."""
    shown: list[Post] = []
    access = AuthorAccess(viewer_id=viewer_id)
    stale: list[int] = []
    count = want + 10
    for _ in range(MAX_ROUNDS):
        candidates = _candidates(viewer_id, followees, before_id, count)
        if not candidates:
            break
        posts = posts_fetch(candidates)
        authors = {p.author_id for p in posts.values()} - set(access.authors)
        if authors:
            more = author_access(viewer_id, authors, followed=followees)
            access.authors.update(more.authors)
            access.followed |= more.followed
            access.hidden |= more.hidden
        for post_id in candidates:
            post = posts.get(post_id)
            if post is None or post.deleted_at is not None:
                stale.append(post_id)
                continue
            allowed = post.author_id == viewer_id or post.author_id in followees
            if allowed and post_is_visible(post, access):
                shown.append(post)
                if len(shown) == want:
                    break
        if len(shown) == want or len(candidates) < count:
            break
        before_id = candidates[-1]
    if stale:
        timelines.timeline_remove(viewer_id, stale)
    return shown, access


def feed_home_page(*, viewer_id: int, page: PageRequest, ranked: bool = False) -> dict:
    followees = set(following_ids(viewer_id))
    if ranked:
        return _ranked_page(viewer_id, followees, page)
    before_id = page.cursor.id if page.cursor is not None else None
    posts, access = _visible_posts(viewer_id, followees, before_id, page.limit + 1)
    has_more = len(posts) > page.limit
    posts = posts[: page.limit]
    next_cursor = None
    if has_more:
        last = posts[-1].id
        next_cursor = encode_cursor(ts=timestamp_ms_of(last), id=last)
    return {"posts": posts_render(posts, access), "next_cursor": next_cursor, "has_more": has_more}


def _window_key(viewer_id: int, window: int) -> str:
    return f"feedrank:{{{viewer_id}}}:{window}"


def _ranked_page(viewer_id: int, followees: set[int], page: PageRequest) -> dict:
    """A ranked window of recent candidates, scored once and kept for paging.

    The cursor of a ranked page names the window (`ts`) and the position in it (`id`), so the
    pages of one window never repeat or skip a post whatever is posted meanwhile.
    """
    client = get_redis()
    if page.cursor is None:
        window = int(time.time() * 1000)
        posts, access = _visible_posts(viewer_id, followees, None, settings.FEED_RANKED_WINDOW)
        order = [post.id for post in rank(viewer_id=viewer_id, posts=posts, now_ms=window)]
        client.set(_window_key(viewer_id, window), orjson.dumps(order), ex=RANKED_WINDOW_TTL)
        start = 0
    else:
        window, start = page.cursor.ts, page.cursor.id
        raw = client.get(_window_key(viewer_id, window))
        if raw is None:
            raise ApiError(400, "invalid_cursor", "This ranked feed has expired; start again.")
        order = orjson.loads(raw)
    chosen = order[start : start + page.limit]
    posts = posts_fetch(chosen)
    access = author_access(viewer_id, {p.author_id for p in posts.values()}, followed=followees)
    visible = [
        posts[i]
        for i in chosen
        if i in posts
        and (posts[i].author_id in followees or posts[i].author_id == viewer_id)
        and post_is_visible(posts[i], access)
    ]
    end = start + len(chosen)
    has_more = end < len(order)
    return {
        "posts": posts_render(visible, access),
        "next_cursor": encode_cursor(ts=window, id=end) if has_more else None,
        "has_more": has_more,
    }
