"""Reads of posts: visibility, hydration into the contract's shape, and every post list.

Hydrating N posts costs a fixed number of queries: one per shard holding any of them (the posts
with their media, the viewer's like and the author's block), then one each for authors, the
viewer's follows of private authors, saves and locations, and one per shard for blocks. The
home feed hydrates through `posts.hydration` instead, with bodies and author cards cached in
Redis.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import cast

import orjson
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from accounts.models import Following
from accounts.selectors import blocked_among, hidden_among
from instagram.ids import MAX_ID, id_array, timestamp_ms_of
from instagram.pagination import PageRequest, encode_cursor
from instagram.scatter import scatter
from instagram.sharding import alias_for_id, group_by_alias, shard_aliases
from posts.models import Comment, Like, Location, Post, Save

AUTHOR_FIELDS = ("id", "username", "profile_pic_url", "is_verified", "is_private")


def permalink(post_id: int) -> str:
    return f"/p/{post_id}"


@dataclass
class AuthorAccess:
    """What a viewer may see of a set of authors, gathered in a fixed number of queries."""

    viewer_id: int | None
    authors: dict[int, dict] = field(default_factory=dict)
    followed: set[int] = field(default_factory=set)
    hidden: set[int] = field(default_factory=set)

    def may_see(self, author_id: int) -> bool:
        author = self.authors.get(author_id)
        if author is None or author_id in self.hidden:
            return False
        if author_id == self.viewer_id or not author["is_private"]:
            return True
        return author_id in self.followed


def author_access(
    viewer_id: int | None, author_ids: Iterable[int], *, followed: set[int] | None = None
) -> AuthorAccess:
    """`followed`: the viewer's followings when the caller already has them (saves a query)."""
    from accounts.models import User

    ids = set(author_ids)
    access = AuthorAccess(viewer_id=viewer_id)
    if not ids:
        return access
    access.authors = {
        row["id"]: row
        for row in User.objects.filter(pk__in=ids, is_active=True).values(*AUTHOR_FIELDS)
    }
    if viewer_id is not None:
        private = [a for a, row in access.authors.items() if row["is_private"] and a != viewer_id]
        if followed is not None:
            access.followed = set(private) & followed
        elif private:
            access.followed = set(
                Following.objects.using(alias_for_id(viewer_id))
                .filter(follower_id=viewer_id, followee_id__in=private)
                .values_list("followee_id", flat=True)
            )
        access.hidden = blocked_among(viewer_id, set(access.authors) - {viewer_id})
    return access


def post_is_visible(post: Post | PostRow, access: AuthorAccess) -> bool:
    if isinstance(post, PostRow):
        deleted, published = post.deleted, post.published
    else:
        deleted, published = post.deleted_at is not None, post.published_at is not None
    if deleted or not access.may_see(post.author_id):
        return False
    return published or post.author_id == access.viewer_id


def posts_fetch(post_ids: Iterable[int]) -> dict[int, Post]:
    """Posts by ID, one query per shard."""
    found: dict[int, Post] = {}
    for alias, ids in group_by_alias(post_ids).items():
        found.update((p.id, p) for p in Post.objects.using(alias).filter(id__in=ids))
    return found


def posts_visible_render(viewer_id: int | None, post_ids: list[int]) -> list[dict]:
    """Hydrated posts in the given order, leaving out what the viewer may not see."""
    rows = post_rows(viewer_id or 0, post_ids)
    access = author_access(viewer_id, {row.author_id for row in rows.values()})
    ordered = [rows[i] for i in post_ids if i in rows and post_is_visible(rows[i], access)]
    return render_rows(viewer_id, ordered, access)


def render_rows(viewer_id: int | None, rows: list, access: AuthorAccess) -> list[dict]:
    saved = saved_among(viewer_id, [row.id for row in rows]) if viewer_id is not None else set()
    mentioned = {int(m["user_id"]) for row in rows for m in row.mentions}
    return post_rows_render(
        rows,
        authors=access.authors,
        saved=saved,
        hidden_mentions=hidden_among(viewer_id, mentioned),
    )


def post_get_visible(*, viewer_id: int | None, post_id: int) -> Post | None:
    post = Post.objects.using(alias_for_id(post_id)).filter(id=post_id).first()
    if post is None:
        return None
    access = author_access(viewer_id, [post.author_id])
    return post if post_is_visible(post, access) else None


def post_detail(*, viewer_id: int | None, post_id: int) -> dict | None:
    found = posts_visible_render(viewer_id, [post_id])
    return found[0] if found else None


# --- Lists -----------------------------------------------------------------------------------


def _id_page(rows: list[int], page: PageRequest, render) -> dict:
    """A page from candidate IDs read newest first (`limit + 1` of them)."""
    has_more = len(rows) > page.limit
    examined = rows[: page.limit]
    next_cursor = None
    if has_more:
        next_cursor = encode_cursor(ts=timestamp_ms_of(examined[-1]), id=examined[-1])
    return {"posts": render(examined), "next_cursor": next_cursor, "has_more": has_more}


def user_posts_page(*, viewer_id: int | None, owner_id: int, page: PageRequest) -> dict | None:
    access = author_access(viewer_id, [owner_id])
    if not access.may_see(owner_id):
        return None
    rows = Post.objects.using(alias_for_id(owner_id)).filter(
        author_id=owner_id, deleted_at__isnull=True
    )
    if viewer_id != owner_id:
        rows = rows.filter(published_at__isnull=False)
    if page.cursor is not None:
        rows = rows.filter(id__lt=page.cursor.id)
    post_ids = list(rows.order_by("-id").values_list("id", flat=True)[: page.limit + 1])

    def render(ids):
        found = post_rows(viewer_id or 0, ids)
        return render_rows(viewer_id, [found[i] for i in ids if i in found], access)

    return _id_page(post_ids, page, render)


def _merged_newest(per_shard: list[list[int]], limit: int) -> list[int]:
    return list(heapq.merge(*per_shard, reverse=True))[:limit]


# The newest post IDs of a hashtag / a location on one shard, below an ID (indexed, both).
_TAG_POSTS_SQL = (
    "SELECT post_id FROM posts_posthashtag WHERE tag = %(tag)s::text "
    "AND post_id < %(before)s::int8 ORDER BY post_id DESC LIMIT %(count)s::int4"
)
_LOCATION_POSTS_SQL = (
    "SELECT id FROM posts_post WHERE location_id = %(location)s::int8 AND deleted_at IS NULL "
    "AND published_at IS NOT NULL AND id < %(before)s::int8 ORDER BY id DESC LIMIT %(count)s::int4"
)


def _newest_on_every_shard(sql: str, params: dict, count: int) -> list[int]:
    """One query per shard, all in flight at once, merged newest first."""
    answers = scatter([(alias, sql, params) for alias in shard_aliases()])
    return _merged_newest([[row[0] for row in rows] for rows in answers], count)


PAGE_ROUNDS = 6


def _visible_page(viewer_id: int | None, page: PageRequest, fetch) -> dict:
    """A page of posts the viewer may see from candidates `fetch(before_id, count)` (newest
    first). Filtering happens before paging, so `next_cursor` names the last post *shown* and
    `has_more` means a visible post remains: neither reveals a post the viewer may not see.
    """
    before_id = page.cursor.id if page.cursor is not None else None
    count = page.limit + 10
    shown: list = []
    access = AuthorAccess(viewer_id=viewer_id)
    exhausted = False
    for _ in range(PAGE_ROUNDS):
        candidates = fetch(before_id, count)
        rows = post_rows(viewer_id or 0, candidates)
        new_authors = {row.author_id for row in rows.values()} - set(access.authors)
        if new_authors:
            more = author_access(viewer_id, new_authors)
            access.authors.update(more.authors)
            access.followed |= more.followed
            access.hidden |= more.hidden
        for post_id in candidates:
            row = rows.get(post_id)
            if row is not None and post_is_visible(row, access):
                shown.append(row)
                if len(shown) > page.limit:
                    break
        if len(shown) > page.limit:
            break
        if len(candidates) < count:
            exhausted = True
            break
        before_id = candidates[-1]
    next_cursor = None
    if len(shown) > page.limit:
        shown = shown[: page.limit]
        next_cursor = encode_cursor(ts=timestamp_ms_of(shown[-1].id), id=shown[-1].id)
    elif not exhausted and before_id is not None:
        # Every round was spent on hidden posts: continue after the last one examined, so the
        # client always makes progress (this names a hidden post's position, nothing more).
        next_cursor = encode_cursor(ts=timestamp_ms_of(before_id), id=before_id)
    return {
        "posts": render_rows(viewer_id, shown, access),
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


def tag_posts_page(*, viewer_id: int | None, tag: str, page: PageRequest) -> dict:
    """A hashtag's posts newest first: one indexed query per shard, all at once, merged by ID."""

    def fetch(before_id: int | None, count: int) -> list[int]:
        params = {"tag": tag, "before": before_id or MAX_ID, "count": count}
        return _newest_on_every_shard(_TAG_POSTS_SQL, params, count)

    return _visible_page(viewer_id, page, fetch)


def location_posts_page(
    *, viewer_id: int | None, location_id: int, page: PageRequest
) -> dict | None:
    """A page of the location's posts the viewer may see; None if there is no such location."""
    if not Location.objects.filter(pk=location_id).exists():
        return None

    def fetch(before_id: int | None, count: int) -> list[int]:
        params = {"location": location_id, "before": before_id or MAX_ID, "count": count}
        return _newest_on_every_shard(_LOCATION_POSTS_SQL, params, count)

    return _visible_page(viewer_id, page, fetch)


def saved_posts_page(*, viewer_id: int, page: PageRequest) -> dict:
    rows = Save.objects.using(alias_for_id(viewer_id)).filter(user_id=viewer_id)
    if page.cursor is not None:
        moment = dt.datetime.fromtimestamp(page.cursor.ts / 1_000_000, tz=dt.UTC)
        rows = rows.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=page.cursor.id))
    saves = list(
        rows.order_by("-created_at", "-id").values_list("id", "created_at", "post_id")[
            : page.limit + 1
        ]
    )
    has_more = len(saves) > page.limit
    saves = saves[: page.limit]
    next_cursor = None
    if has_more:
        save_id, saved_at, _ = saves[-1]
        next_cursor = encode_cursor(ts=int(saved_at.timestamp() * 1_000_000), id=save_id)
    return {
        "posts": posts_visible_render(viewer_id, [post_id for _, _, post_id in saves]),
        "next_cursor": next_cursor,
        "has_more": has_more,
    }


def likers_page(*, viewer_id: int | None, post_id: int, page: PageRequest) -> dict | None:
    from accounts.selectors import user_summary, users_by_id

    if post_get_visible(viewer_id=viewer_id, post_id=post_id) is None:
        return None
    rows = Like.objects.using(alias_for_id(post_id)).filter(post_id=post_id)
    if page.cursor is not None:
        rows = rows.filter(id__lt=page.cursor.id)
    likes = list(rows.order_by("-id").values_list("id", "user_id")[: page.limit + 1])
    has_more = len(likes) > page.limit
    likes = likes[: page.limit]
    users = users_by_id(uid for _, uid in likes)
    hidden = blocked_among(viewer_id, users) if viewer_id is not None else set()
    return {
        "users": [user_summary(users[u]) for _, u in likes if u in users and u not in hidden],
        "next_cursor": encode_cursor(ts=timestamp_ms_of(likes[-1][0]), id=likes[-1][0])
        if has_more
        else None,
        "has_more": has_more,
    }


# --- Comments --------------------------------------------------------------------------------


def _comment_body(row: Comment, author: dict, liked: set[int]) -> dict:
    return {
        "comment_id": str(row.id),
        "post_id": str(row.post_id),
        "author": {
            "user_id": str(author["id"]),
            "username": author["username"],
            "profile_pic_url": author["profile_pic_url"] or None,
            "is_verified": author["is_verified"],
        },
        "text": row.text,
        "parent_id": str(row.parent_id) if row.parent_id else None,
        "like_count": row.like_count,
        "reply_count": row.reply_count,
        "created_at": row.created_at,
        "viewer_has_liked": row.id in liked,
    }


def comments_render(viewer_id: int | None, comments: list[Comment]) -> list[dict]:
    from posts.models import CommentLike

    if not comments:
        return []
    access = author_access(viewer_id, {c.author_id for c in comments})
    liked: set[int] = set()
    if viewer_id is not None:
        alias = alias_for_id(comments[0].id)
        liked = set(
            CommentLike.objects.using(alias)
            .filter(comment_id__in=[c.id for c in comments], user_id=viewer_id)
            .values_list("comment_id", flat=True)
        )
    shown = comments_shown(comments, access)
    return [_comment_body(c, access.authors[c.author_id], liked) for c in comments if c.id in shown]


def comments_shown(comments: list[Comment], access: AuthorAccess) -> set[int]:
    """The one rule for which comments (of a post the viewer may see) the viewer sees: those by
    an active author with no block either way between them, and a reply only under a comment
    shown too (a parent not among `comments` is taken as shown). Every path that acts on a
    comment applies it through `comment_get_visible`, so what the list hides answers 404."""
    by_author = {
        c.id for c in comments if c.author_id in access.authors and c.author_id not in access.hidden
    }
    given = {c.id for c in comments}
    return {
        c.id
        for c in comments
        if c.id in by_author
        and (c.parent_id is None or c.parent_id in by_author or c.parent_id not in given)
    }


@dataclass(frozen=True)
class VisibleComment:
    comment: Comment
    post: Post


def comment_get_visible(
    *, viewer_id: int | None, comment_id: int, for_update: bool = False, deleting: bool = False
) -> VisibleComment | None:
    """The comment and its post if the viewer sees it in the comment list, else None.

    `for_update` locks the comment (and its parent) in the caller's transaction. `deleting`: a
    block does not hide a comment from its own author nor from the post's author, who may
    still remove it (everyone else still sees it); one hidden from everyone stays a 404.
    """
    alias = alias_for_id(comment_id)
    rows = Comment.objects.using(alias).filter(
        Q(id=comment_id) | Q(id__in=Comment.objects.filter(id=comment_id).values("parent_id")),
        deleted_at__isnull=True,
    )
    if for_update:
        rows = rows.select_for_update()
    thread = {c.id: c for c in rows}
    comment = thread.get(comment_id)
    if comment is None or (comment.parent_id is not None and comment.parent_id not in thread):
        return None  # deleted, or under a deleted comment (which took its replies along)
    post = Post.objects.using(alias).filter(id=comment.post_id).first()
    if post is None:
        return None
    access = author_access(viewer_id, {post.author_id, *(c.author_id for c in thread.values())})
    if not post_is_visible(post, access):
        return None
    if deleting and viewer_id in (comment.author_id, post.author_id):
        access = replace(access, hidden=set())
    if comment_id not in comments_shown(list(thread.values()), access):
        return None
    return VisibleComment(comment=comment, post=post)


REPLIES_PER_COMMENT = 50


def comments_page(*, viewer_id: int | None, post_id: int, page: PageRequest) -> dict | None:
    """Top-level comments oldest first, each followed by its first REPLIES_PER_COMMENT replies
    (oldest first); `replies_page` pages through all of a comment's replies."""
    if post_get_visible(viewer_id=viewer_id, post_id=post_id) is None:
        return None
    alias = alias_for_id(post_id)
    rows = Comment.objects.using(alias).filter(
        post_id=post_id, parent_id__isnull=True, deleted_at__isnull=True
    )
    if page.cursor is not None:
        rows = rows.filter(id__gt=page.cursor.id)
    top = list(rows.order_by("id")[: page.limit + 1])
    has_more = len(top) > page.limit
    top = top[: page.limit]
    # The first REPLIES_PER_COMMENT replies of each comment, cut in the database.
    replies = list(
        Comment.objects.using(alias)
        .filter(parent_id__in=[c.id for c in top], deleted_at__isnull=True)
        .annotate(place=Window(RowNumber(), partition_by=[F("parent_id")], order_by=F("id").asc()))
        .filter(place__lte=REPLIES_PER_COMMENT)
        .order_by("parent_id", "id")
    )
    grouped: dict[int, list[Comment]] = {}
    for reply in replies:
        grouped.setdefault(cast(int, reply.parent_id), []).append(reply)
    ordered = [c for parent in top for c in [parent, *grouped.get(parent.id, [])]]
    rendered = comments_render(viewer_id, ordered)
    next_cursor = None
    if has_more:
        next_cursor = encode_cursor(ts=timestamp_ms_of(top[-1].id), id=top[-1].id)
    return {"comments": rendered, "next_cursor": next_cursor, "has_more": has_more}


def replies_page(*, viewer_id: int | None, comment_id: int, page: PageRequest) -> dict | None:
    """A comment's replies oldest first, as the comment list shows them; None if the viewer
    does not see the comment (a reply has no replies: replies go one level deep)."""
    if comment_get_visible(viewer_id=viewer_id, comment_id=comment_id) is None:
        return None
    rows = Comment.objects.using(alias_for_id(comment_id)).filter(
        parent_id=comment_id, deleted_at__isnull=True
    )
    if page.cursor is not None:
        rows = rows.filter(id__gt=page.cursor.id)
    replies = list(rows.order_by("id")[: page.limit + 1])
    has_more = len(replies) > page.limit
    replies = replies[: page.limit]
    next_cursor = None
    if has_more:
        next_cursor = encode_cursor(ts=timestamp_ms_of(replies[-1].id), id=replies[-1].id)
    return {
        "comments": comments_render(viewer_id, replies),
        "next_cursor": next_cursor,
        "has_more": has_more,
    }


def locations_search(*, query: str, limit: int = 20) -> list[dict]:
    from posts.services.locations import normalize_place

    rows = Location.objects.filter(name_normalized__startswith=normalize_place(query)).order_by(
        "name_normalized", "id"
    )[:limit]
    return [{"location_id": str(r.id), "name": r.name, "lat": r.lat, "lng": r.lng} for r in rows]


# --- One query per shard: posts with their media, the viewer's like and blocks ----------------

# A post's media items in order, as the JSON `media_item` renders (a column of posts_post p).
MEDIA_JSON_SQL = """
       COALESCE((
           SELECT json_agg(json_build_array(m.id, m.kind, m.media_type, m.status,
                                            m.storage_prefix, m.width, m.height, m.placeholder,
                                            pm.alt_text) ORDER BY pm.position)
           FROM posts_postmedia pm JOIN media_media m ON m.id = pm.media_id
           WHERE pm.post_id = p.id), '[]')"""
_ROWS_SQL = (
    """
SELECT p.id, p.author_id, p.caption, p.location_id, p.hashtags, p.mentions, p.like_count,
       p.comment_count, p.created_at, p.published_at IS NOT NULL, p.deleted_at IS NOT NULL,
       EXISTS (SELECT 1 FROM posts_like l WHERE l.post_id = p.id AND l.user_id = %(viewer)s),
       EXISTS (SELECT 1 FROM accounts_block b
               WHERE b.blocker_id = p.author_id AND b.blocked_id = %(viewer)s),"""
    + MEDIA_JSON_SQL
    + """
FROM posts_post p
WHERE p.id = ANY(%(ids)s::int8[])
"""
)


@dataclass
class PostRow:
    """A post as the hot read paths need it, with the viewer's flags and its media items."""

    id: int
    author_id: int
    caption: str
    location_id: int | None
    hashtags: list
    mentions: list
    like_count: int
    comment_count: int
    created_at: dt.datetime
    published: bool
    deleted: bool
    viewer_has_liked: bool
    author_blocks_viewer: bool
    media: list


def json_column(value):
    """A json/jsonb column's value: Django's connections read them as text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def post_rows(viewer_id: int, post_ids: Iterable[int]) -> dict[int, PostRow]:
    """Posts by ID with media, the viewer's like and the author's block: one query per shard."""
    from django.db import connections

    rows: dict[int, PostRow] = {}
    for alias, ids in group_by_alias(post_ids).items():
        with connections[alias].cursor() as cursor:
            cursor.execute(_ROWS_SQL, {"viewer": viewer_id, "ids": id_array(ids)})
            for values in cursor.fetchall():
                row = PostRow(*values)
                for name in ("hashtags", "mentions", "media"):
                    setattr(row, name, json_column(getattr(row, name)))
                rows[row.id] = row
    return rows


def media_item(values: list) -> dict:
    from media.selectors import media_urls_of

    media_id, kind, media_type, status, prefix, width, height, placeholder, alt_text = values
    urls = media_urls_of(kind=kind, storage_prefix=prefix)
    return {
        "media_id": str(media_id),
        "type": media_type,
        "url": urls.get("1080"),
        "urls": urls,
        "width": width,
        "height": height,
        "alt_text": alt_text,
        "blur_placeholder": placeholder or None,
        "status": status,
    }


def locations_by_id(location_ids: set[int]) -> dict[int, dict]:
    """The contract's location objects, in one query (none for no IDs)."""
    if not location_ids:
        return {}
    return {
        place["id"]: {
            "location_id": str(place["id"]),
            "name": place["name"],
            "lat": place["lat"],
            "lng": place["lng"],
        }
        for place in Location.objects.filter(pk__in=location_ids).values("id", "name", "lat", "lng")
    }


def post_rows_render(
    rows: list[PostRow],
    *,
    authors: dict[int, dict],
    saved: set[int],
    hidden_mentions: Collection[int] = (),
) -> list[dict]:
    """The contract's post objects from rows (locations read in one query if any), without
    the mentions of users the viewer may not see (`hidden_mentions`)."""
    locations = locations_by_id({r.location_id for r in rows if r.location_id is not None})
    bodies = []
    for row in rows:
        author = authors[row.author_id]
        bodies.append(
            {
                "post_id": str(row.id),
                "author": {
                    "user_id": str(author["id"]),
                    "username": author["username"],
                    "profile_pic_url": author["profile_pic_url"] or None,
                    "is_verified": author["is_verified"],
                },
                "media": [media_item(item) for item in row.media],
                "caption": row.caption,
                "hashtags": row.hashtags,
                "mentions": [m for m in row.mentions if int(m["user_id"]) not in hidden_mentions],
                "location": locations.get(row.location_id) if row.location_id else None,
                "like_count": row.like_count,
                "comment_count": row.comment_count,
                "created_at": row.created_at,
                "viewer_has_liked": row.viewer_has_liked,
                "viewer_has_saved": row.id in saved,
                "permalink": permalink(row.id),
            }
        )
    from media.services import media_views_count

    media_views_count(item[0] for row in rows for item in row.media)
    return bodies


def saved_among(viewer_id: int, post_ids: list[int]) -> set[int]:
    from django.db import connections

    if not post_ids:
        return set()
    with connections[alias_for_id(viewer_id)].cursor() as cursor:
        cursor.execute(
            "SELECT post_id FROM posts_save WHERE user_id = %s AND post_id = ANY(%s::int8[])",
            [viewer_id, id_array(post_ids)],
        )
        return {row[0] for row in cursor.fetchall()}
