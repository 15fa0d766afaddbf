"""Hydration for the hottest lists (the home feed): light states from the database, bodies from
Redis.

A post's answer splits in two:
- its *state*, which changes often or depends on the viewer: counts, published/deleted, the
  viewer's like and save, whether the author blocks the viewer, and the post's version
  (`updated_at`). One light query per shard reads the states of any number of posts.
- its *body*, which is the same for every viewer and changes only on an edit: media with their
  URLs, caption, hashtags, mentions, location, times, permalink. Bodies are rendered once and
  kept in Redis (`post:{id}:2`, which also names the author), checked against the version read
  with the state, so an edit is never served stale. Author cards come from the accounts cache
  in the same round trip (or the feed's script read both already).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from django.db import connections

from accounts.selectors import AUTHOR_CARDS
from instagram.cache import Cached, CachedKind, CacheRead, cache_read
from instagram.ids import id_array
from instagram.renderers import dumps
from instagram.scatter import scatter
from instagram.sharding import alias_for_id, group_by_alias
from posts.selectors import (
    MEDIA_JSON_SQL,
    json_column,
    locations_by_id,
    media_item,
    permalink,
    saved_among,
)

BODY_TTL = 24 * 3600

# A post's version: `updated_at` in microseconds. Through float8 (`date_part`), which is exact
# to the microsecond until 2106 (2^32 seconds) and costs a fraction of `extract`'s numeric: a
# feed page computes it for every candidate.
VERSION_SQL = "(date_part('epoch', p.updated_at) * 1000000)::int8"
# A post's state as the columns of a query over `posts_post p`, for the viewer %(viewer)s.
STATE_COLUMNS_SQL = f"""p.id, p.author_id, p.like_count, p.comment_count,
       p.published_at IS NOT NULL, p.deleted_at IS NOT NULL,
       {VERSION_SQL},
       EXISTS (SELECT 1 FROM posts_like l WHERE l.post_id = p.id AND l.user_id = %(viewer)s),
       EXISTS (SELECT 1 FROM accounts_block b
               WHERE b.blocker_id = p.author_id AND b.blocked_id = %(viewer)s)"""
STATES_SQL = (
    "SELECT " + STATE_COLUMNS_SQL + "\nFROM posts_post p\nWHERE p.id = ANY(%(ids)s::int8[])"
)
# The same on the viewer's own shard, plus which of all the candidates (on any shard) the
# viewer saved: saves live on the saver's shard.
_STATES_AND_SAVES_SQL = STATES_SQL.replace(
    "FROM posts_post p",
    ", (SELECT array_agg(s.post_id) FROM posts_save s\n"
    "    WHERE s.user_id = %(viewer)s AND s.post_id = ANY(%(all)s::int8[]))\nFROM posts_post p",
)


class PostState(NamedTuple):
    """(A tuple: a feed page makes one per candidate, and a dataclass costs twice as much.)"""

    id: int
    author_id: int
    like_count: int
    comment_count: int
    published: bool
    deleted: bool
    version: int  # updated_at in microseconds: a cached body of another version is stale
    viewer_has_liked: bool
    author_blocks_viewer: bool


def post_states(
    viewer_id: int, post_ids: Iterable[int], *, saved: set[int]
) -> dict[int, PostState]:
    """States by ID, one query per shard, all in flight at once; the viewer's saves among them
    are added to `saved`, read by the query on the viewer's shard (or by one more query when no
    post lives there)."""
    wanted = list(post_ids)
    all_ids = id_array(wanted)
    home = alias_for_id(viewer_id)
    by_alias = group_by_alias(wanted)
    answers = scatter(
        [
            (
                alias,
                _STATES_AND_SAVES_SQL if alias == home else STATES_SQL,
                {"viewer": viewer_id, "ids": id_array(ids), "all": all_ids},
            )
            for alias, ids in by_alias.items()
        ]
    )
    saves_read = False
    states: dict[int, PostState] = {}
    for alias, rows in zip(by_alias, answers, strict=True):
        for values in rows:
            if alias == home:
                saved.update(values[-1] or ())
                saves_read = True
                values = values[:-1]
            states[values[0]] = PostState(*values)
    if not saves_read and states:
        saved.update(saved_among(viewer_id, list(states)))
    return states


_BODIES_SQL = (
    """
SELECT p.id, p.author_id, p.caption, p.location_id, p.hashtags, p.mentions, p.created_at,
       """
    + VERSION_SQL
    + ","
    + MEDIA_JSON_SQL
    + """
FROM posts_post p
WHERE p.id = ANY(%s::int8[])
"""
)


def _bodies_load(post_ids: list[int]) -> dict[int, Cached]:
    """Bodies rendered from the database: one query per shard, one for their locations."""
    rows: list[tuple] = []
    for alias, ids in group_by_alias(post_ids).items():
        with connections[alias].cursor() as cursor:
            cursor.execute(_BODIES_SQL, [id_array(ids)])
            rows.extend(cursor.fetchall())
    locations = locations_by_id({row[3] for row in rows if row[3] is not None})
    bodies = {}
    for (
        post_id,
        author_id,
        caption,
        location_id,
        hashtags,
        mentions,
        created,
        version,
        media,
    ) in rows:
        body = {
            "post_id": str(post_id),
            "media": [media_item(item) for item in json_column(media)],
            "caption": caption,
            "hashtags": json_column(hashtags),
            "mentions": json_column(mentions),
            "location": locations.get(location_id),
            "created_at": created,
            "permalink": permalink(post_id),
        }
        bodies[post_id] = Cached(dumps(body), version, owner=author_id)
    return bodies


# Owned (the entry names the author), so the feed's Redis script can read the author's card
# with the body. Shape 2: the entry that named no author was shape 1.
POST_BODIES = CachedKind(
    prefix="post", ttl=BODY_TTL, load=_bodies_load, versioned=True, owned=True, shape=2
)


@dataclass
class Prefetched:
    """Raw body and card entries already read from Redis by the caller, by ID (None: absent)."""

    bodies: dict[int, bytes | None]
    cards: dict[int, bytes | None]


@dataclass
class Hydrated:
    """What rendering needs beyond the states: bodies and author cards, as JSON."""

    bodies: dict[int, Cached]
    cards: dict[int, Cached]

    def author_active(self, author_id: int) -> bool:
        card = self.cards.get(author_id)
        return card is not None and card.json != b"null"

    def hashtags(self, post_id: int) -> list[str]:
        return orjson.loads(self.bodies[post_id].json)["hashtags"]


def posts_hydrate(
    states: list[PostState], *, known: Hydrated | None = None, prefetched: Prefetched | None = None
) -> Hydrated:
    """Bodies and author cards of these posts (those not already `known`): one Redis round
    trip for those not `prefetched` (none, if all were), plus the database for what Redis
    lacks."""
    hydrated = known or Hydrated(bodies={}, cards={})
    # Only published bodies are cached: before that, the media inside are still changing.
    published = [s for s in states if s.id not in hydrated.bodies and s.published]
    drafts = [s.id for s in states if s.id not in hydrated.bodies and not s.published]
    authors = {s.author_id for s in states} - set(hydrated.cards)
    bodies, cards = cache_read(
        CacheRead(
            POST_BODIES,
            [s.id for s in published],
            {s.id: s.version for s in published},
            prefetched=prefetched.bodies if prefetched else None,
        ),
        CacheRead(AUTHOR_CARDS, authors, prefetched=prefetched.cards if prefetched else None),
    )
    hydrated.bodies.update(bodies)
    hydrated.cards.update(cards)
    if drafts:
        hydrated.bodies.update(_bodies_load(drafts))
    return hydrated


_BOOL = {True: b"true", False: b"false"}


_NO_MENTIONS = b'"mentions":[]'


def mentioned_in(states: list[PostState], hydrated: Hydrated) -> set[int]:
    """The users these posts' bodies mention (a body that mentions none is not decoded)."""
    return {
        int(m["user_id"])
        for state in states
        if _NO_MENTIONS not in (json := hydrated.bodies[state.id].json)
        for m in orjson.loads(json)["mentions"]
    }


def _body(json: bytes, hidden_mentions: Collection[int]) -> bytes:
    """A body's JSON without the mentions of users the viewer may not see."""
    if not hidden_mentions or _NO_MENTIONS in json:
        return json
    body = orjson.loads(json)
    body["mentions"] = [m for m in body["mentions"] if int(m["user_id"]) not in hidden_mentions]
    return dumps(body)


def posts_render(
    states: list[PostState],
    hydrated: Hydrated,
    *,
    saved: set[int],
    hidden_mentions: Collection[int] = (),
) -> list[orjson.Fragment]:
    """The contract's post objects, in the order given: each body's JSON with the author and
    the viewer's state spliced in, so cached bodies are never decoded and encoded again (but
    for those mentioning users the viewer may not see, `hidden_mentions`, who are left out)."""
    return [
        orjson.Fragment(
            b'%s,"author":%s,"like_count":%d,"comment_count":%d,"viewer_has_liked":%s,'
            b'"viewer_has_saved":%s}'
            % (
                _body(hydrated.bodies[state.id].json, hidden_mentions)[:-1],
                hydrated.cards[state.author_id].json,
                state.like_count,
                state.comment_count,
                _BOOL[state.viewer_has_liked],
                _BOOL[state.id in saved],
            )
        )
        for state in states
    ]
