"""Timeline keys in Redis. Every key names one user inside `{}` so it has a Redis Cluster hash
slot of its own. On a cluster every command or script call touches one key; on one server the
fan-out script takes a whole batch of keys in one call. Either way the same code serves both.
Redis is a cache here: any key can be rebuilt from PostgreSQL (services.py).

- `timeline:{user}`        sorted set of post IDs, all at score 0 with the ID as 19-digit text,
                           so lexical order is ID order is time order (IDs sort by time) and
                           `ZREVRANGEBYLEX` pages exactly; posts of accounts the user follows,
                           pushed by fan-out, kept near FEED_TIMELINE_LENGTH. A rebuild adds the
                           sentinel member, the lowest, so the key exists exactly while the
                           timeline is complete: a missing key means "rebuild before reading".
                           The sentinel names the set's floor, `0000000000000000000:<ID>` (all
                           zeros: none): the set holds every post at or above that ID and none
                           below it (a post older than the floor is not added). A set gets a
                           floor when it is cut to its length, or built or merged from a capped
                           read. A read that runs out of members meets the sentinel, learns the
                           floor, and pulls what lies below it from the database. A set written
                           before floors were kept (a bare `0000000000000000000`, or none) may
                           have been cut: it is taken as floored at its lowest post.
                           It lives FEED_ACTIVE_DAYS from the user's last feed read, which is what
                           "active" means to fan-out: an idle user's timeline expires, gets no
                           writes, and is rebuilt from the database when they return.
- `celebrity:{user}:posts` recent posts of an account over the fan-out threshold, merged at read,
                           with a sentinel (and floor) as a timeline has.
- `celebrities`            the set of such accounts (intersected with a user's followings).
- `follows:{user}:ids`     a hint of whom the user follows (a set of IDs), so a feed read knows
                           whose celebrity lists to read before it has read the graph (one
                           SINTER with `celebrities`); `follows:{user}:v` holds its size and
                           the fingerprint of its IDs, is marked changed (`-`) by every follow
                           and unfollow, and the hint is filled only where there is neither.
                           Never used to decide what the user may see: that is the graph in
                           PostgreSQL, read in the same round trip as the posts' states, and a
                           read whose hint's fingerprint differs from the graph's corrects it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from redis.exceptions import NoScriptError, RedisError

from instagram.cache import FORGOTTEN, FORGOTTEN_SECONDS, CachedKind
from instagram.redis import get_redis

logger = logging.getLogger(__name__)

CELEBRITIES = "celebrities"
FLOORED = "0" * 19 + ":"  # the sentinel, the lowest member: followed by the floor's member
SENTINEL = FLOORED + "0" * 19  # of a set that holds every post: never read as a post
LEGACY_SENTINEL = "0" * 19  # as written before floors were kept: floored at its lowest post
ABOVE_SENTINEL = "[" + "0" * 18 + "1"  # the lowest a post's member can be: above any sentinel
TIMELINE_SOURCE = 0  # the timeline among the sources of a read's floors (celebrities by ID)


def timeline_key(user_id: int) -> str:
    return f"timeline:{{{user_id}}}"


def celebrity_key(user_id: int) -> str:
    return f"celebrity:{{{user_id}}}:posts"


def member(post_id: int) -> str:
    return f"{post_id:019d}"


def entries(post_ids: Iterable[int]) -> dict[str, int]:
    return {member(post_id): 0 for post_id in post_ids}


def sentinel(floor: int) -> str:
    """The sentinel of a set that holds every post at or above `floor` (0: every post)."""
    return FLOORED + member(floor)


UNKNOWN_FLOOR = 10**19 - 1  # nothing known below a page (see `read_floor`)


def read_floor(members: list[bytes], count: int) -> tuple[list[int], int]:
    """The posts of a range read down to `-` of at most `count` members, and the floor of the
    set if the read ran out of posts (it then ends with the sentinel): 0 if the set holds every
    post, or where the read did not run out (every post it returned is at or above the floor,
    so the floor is no deeper than the page). A set from before floors that ran out is floored
    at its lowest post, the last returned; if the read returned none, at UNKNOWN_FLOOR."""
    last = members[-1] if members else None
    if last is not None and last.startswith(FLOORED.encode()):
        members.pop()
        return [int(m) for m in members], int(last[len(FLOORED) :])
    if last == LEGACY_SENTINEL.encode():
        members.pop()
    elif len(members) == count:
        return [int(m) for m in members], 0
    post_ids = [int(m) for m in members]
    return post_ids, post_ids[-1] if post_ids else UNKNOWN_FLOOR


def capped_floor(post_ids: list[int], limit: int) -> int:
    """The floor of a set written from a read capped at `limit` posts: its oldest if the read
    was full (there may be older ones it did not take), else 0."""
    return min(post_ids) if post_ids and len(post_ids) >= limit else 0


def ttl_seconds() -> int:
    return settings.FEED_ACTIVE_DAYS * 86400


def timeline_replace(user_id: int, post_ids: list[int], *, floor: int = 0) -> None:
    """Write a complete timeline (a rebuild), newest FEED_TIMELINE_LENGTH posts kept; `floor`:
    the read it was built from was capped there (see `capped_floor`)."""
    key = timeline_key(user_id)
    newest = sorted(post_ids, reverse=True)[: settings.FEED_TIMELINE_LENGTH]
    if len(newest) < len(post_ids):
        floor = max(floor, newest[-1])
    pipe = get_redis().pipeline(transaction=True)  # never seen half-written
    pipe.delete(key)
    pipe.zadd(key, {sentinel(floor): 0, **entries(newest)})
    pipe.expire(key, ttl_seconds())
    pipe.execute()


# Add members to every listed set that exists (is complete and live); returns how many sets
# were written. A set that does not exist is skipped: its next read rebuilds it from the
# database, these posts included. ARGV[1] is the length to keep, ARGV[2] '' or a member: the
# members come from a read capped there, so the sets hold every post only down to it (a floor
# below it is raised to it, and members below it are dropped). A member below a set's floor is
# not added: the set says nothing below its floor, and reads pull from the database there. A set
# that grows past its length by a twentieth is cut back to it, and its sentinel then names the
# floor (its lowest member left), so trimming costs one call per length/20 additions. Members
# are 19-digit IDs, so string order is ID order. A set written before floors were kept (a bare
# sentinel, or none) gets a floor at its lowest post.
_ADD_LUA = """
local call = redis.call
local length = tonumber(ARGV[1])
local raise = ARGV[2]
local limit = length + math.floor(length / 20)
local function add(key)
  local lowest = call('ZRANGE', key, 0, 0)[1]
  if not lowest then
    return 0
  end
  local floor, sentinel
  if string.sub(lowest, 1, 20) == '0000000000000000000:' then
    sentinel = lowest
    floor = string.sub(lowest, 21)
  else  -- written before floors were kept, and maybe cut: floored at its lowest post
    if lowest == '0000000000000000000' then
      sentinel = lowest
      lowest = call('ZRANGE', key, 1, 1)[1]
    end
    if not lowest then  -- and no post left to tell where: rebuilt at its next read
      call('DEL', key)
      return 0
    end
    floor = lowest
  end
  if raise ~= '' and raise > floor then
    floor = raise
    call('ZREMRANGEBYLEX', key, '[0000000000000000001', '(' .. floor)
  end
  local size = call('ZCARD', key)
  for j = 3, #ARGV do
    if ARGV[j] >= floor then
      size = size + call('ZADD', key, 0, ARGV[j])
    end
  end
  if size > limit then
    call('ZREMRANGEBYRANK', key, 0, -length - 1)  -- the sentinel goes with the oldest
    sentinel = nil
    floor = call('ZRANGE', key, 0, 0)[1]
  end
  local named = '0000000000000000000:' .. floor
  if named ~= sentinel then
    if sentinel then
      call('ZREM', key, sentinel)
    end
    call('ZADD', key, 0, named)
  end
  return 1
end
local written = 0
for i = 1, #KEYS do
  written = written + add(KEYS[i])
end
return written
"""
_ADD_SHA = hashlib.sha1(_ADD_LUA.encode(), usedforsecurity=False).hexdigest()


def _add(keys: list[str], members: list[str], length: int | None = None, floor: int = 0) -> int:
    """Run the add script: once for all keys on one Redis, once per key (slot) on a cluster.
    The sets keep about `length` members (a timeline's length unless given); `floor`: the
    members come from a read capped there (0: from a read that took every post)."""
    client = get_redis()
    length = length or settings.FEED_TIMELINE_LENGTH
    raise_to = member(floor) if floor else ""
    if settings.REDIS_CLUSTER:
        return _add_per_slot(client, keys, [length, raise_to, *members])
    args = [length, raise_to, *members]
    try:
        return client.execute_command("EVALSHA", _ADD_SHA, len(keys), *keys, *args)
    except NoScriptError:
        return client.execute_command("EVAL", _ADD_LUA, len(keys), *keys, *args)


def _add_per_slot(client, keys: list[str], args: list) -> int:
    """One EVALSHA per key in one pipeline; keys on a node that lacks the script get EVAL."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("EVALSHA", _ADD_SHA, 1, key, *args)
    results = pipe.execute(raise_on_error=False)
    missing = [key for key, r in zip(keys, results, strict=True) if isinstance(r, NoScriptError)]
    if missing:
        pipe = client.pipeline(transaction=False)
        for key in missing:
            pipe.execute_command("EVAL", _ADD_LUA, 1, key, *args)
        results = [r for r in results if not isinstance(r, NoScriptError)] + pipe.execute()
    for result in results:
        if isinstance(result, Exception):
            raise result
    return sum(results)


def timeline_add(user_id: int, post_ids: list[int], *, floor: int = 0) -> None:
    """Merge posts into a complete timeline (a missing one is rebuilt on its next read);
    `floor`: they come from a read capped there (see `capped_floor`)."""
    if post_ids or floor:
        _add([timeline_key(user_id)], [member(post_id) for post_id in post_ids], floor=floor)


def timeline_floor(user_id: int) -> int | None:
    """The timeline's floor (0: it holds every post), or None if it does not exist (or, written
    before floors were kept, holds no post to tell it by: its next read rebuilds it)."""
    lowest = get_redis().zrange(timeline_key(user_id), 0, 1)
    if not lowest:
        return None
    if lowest[0].startswith(FLOORED.encode()):
        return int(lowest[0][len(FLOORED) :])
    if lowest[0] == LEGACY_SENTINEL.encode():  # floored at its lowest post; none: rebuild it
        return int(lowest[1]) if len(lowest) > 1 else None
    return int(lowest[0])


def timeline_remove(user_id: int, post_ids: Iterable[int]) -> None:
    members = [member(post_id) for post_id in post_ids]
    if members:
        get_redis().zrem(timeline_key(user_id), *members)


def fanout_push(follower_ids: list[int], post_id: int) -> int:
    """Add one post to many followers' live timelines in one call; returns how many."""
    if not follower_ids:
        return 0
    return _add([f"timeline:{{{follower_id}}}" for follower_id in follower_ids], [member(post_id)])


def timeline_read(
    user_id: int, *, before_id: int | None, count: int, followees: Iterable[int] = ()
) -> tuple[list[int] | None, list[int], int]:
    """Newest post IDs below `before_id` (None if the timeline must be rebuilt first), which
    of `followees` are celebrities, whose posts are merged at read, and the timeline's floor if
    the read ran out of posts (see `read_floor`): one round trip.

    The read renews the timeline's life: the user is active.
    """
    key = timeline_key(user_id)
    candidates = sorted(followees)
    pipe = get_redis().pipeline(transaction=False)
    pipe.expire(key, ttl_seconds())  # 0: missing
    high = f"({member(before_id)}" if before_id is not None else "+"
    pipe.zrevrangebylex(key, high, "-", start=0, num=count)
    if candidates:
        pipe.smismember(CELEBRITIES, [str(u) for u in candidates])
    built, members, *flags = pipe.execute()
    celebrities = [u for u, flag in zip(candidates, flags[0], strict=True) if flag] if flags else []
    if not built:
        return None, celebrities, 0
    post_ids, floor = read_floor(members, count)
    return post_ids, celebrities, floor


def celebrity_add(author_id: int, post_id: int) -> None:
    """Mark the account a celebrity and add its new post to its list, where the list exists:
    a missing one is rebuilt whole from the database by the next read that needs it (a list
    made here would hold only this post, and readers take a list that exists for the whole)."""
    get_redis().sadd(CELEBRITIES, str(author_id))
    _add([celebrity_key(author_id)], [member(post_id)], length=settings.FEED_CELEBRITY_POSTS)


def celebrity_readd(author_id: int, post_ids: list[int]) -> None:
    """Put posts back into a celebrity's list, where the list exists (nothing is marked)."""
    if post_ids:
        _add(
            [celebrity_key(author_id)],
            [member(post_id) for post_id in post_ids],
            length=settings.FEED_CELEBRITY_POSTS,
        )


# Drop each set that still holds fewer posts than ARGV[1]; returns how many were dropped.
_FORGET_LUA = """
local dropped = 0
for i = 1, #KEYS do
  if redis.call('ZLEXCOUNT', KEYS[i], '[0000000000000000001', '+') < tonumber(ARGV[1]) then
    dropped = dropped + redis.call('DEL', KEYS[i])
  end
end
return dropped
"""
_FORGET_SHA = hashlib.sha1(_FORGET_LUA.encode(), usedforsecurity=False).hexdigest()


def sets_forget(user_id: int, sources: Iterable[int], *, short_of: int) -> None:
    """Drop these sets of a read's sources, the user's timeline (TIMELINE_SOURCE) and
    celebrities' lists (by ID), each only if it still holds fewer than `short_of` posts (one
    that another read rebuilt, or fan-out refilled, since this read looked at it stays). The
    next read that needs one rebuilds it from the database."""
    keys = [
        timeline_key(user_id) if source == TIMELINE_SOURCE else celebrity_key(source)
        for source in sources
    ]
    if settings.REDIS_CLUSTER:  # one slot per key
        for key in keys:
            _evalsha(_FORGET_SHA, _FORGET_LUA, [key], [short_of])
    elif keys:
        _evalsha(_FORGET_SHA, _FORGET_LUA, keys, [short_of])


def celebrity_remove(author_id: int, post_ids: Iterable[int]) -> None:
    members = [member(post_id) for post_id in post_ids]
    if members:
        get_redis().zrem(celebrity_key(author_id), *members)


def celebrity_lists_replace(lists: dict[int, list[int]]) -> None:
    """Write celebrities' whole lists, each read capped at FEED_CELEBRITY_POSTS (so a full one
    is floored at its oldest), in one round trip."""
    if not lists:
        return
    pipe = get_redis().pipeline(transaction=False)
    pipe.sadd(CELEBRITIES, *[str(author_id) for author_id in lists])
    for author_id, post_ids in lists.items():
        floor = capped_floor(post_ids, settings.FEED_CELEBRITY_POSTS)
        pipe.delete(celebrity_key(author_id))
        pipe.zadd(celebrity_key(author_id), {sentinel(floor): 0, **entries(post_ids)})
    pipe.execute()


def celebrities_among(user_ids: list[int]) -> list[int]:
    if not user_ids:
        return []
    flags = get_redis().smismember(CELEBRITIES, [str(u) for u in user_ids])
    return [user_id for user_id, flag in zip(user_ids, flags, strict=True) if flag]


def celebrity_posts(
    author_ids: list[int], *, before_id: int | None, count: int
) -> dict[int, list[int] | None]:
    """Recent posts of each celebrity (None where the list is missing and must be rebuilt)."""
    return {
        author_id: posts
        for author_id, (posts, _) in celebrity_lists(
            author_ids, before_id=before_id, count=count
        ).items()
    }


def celebrity_lists(
    author_ids: list[int], *, before_id: int | None, count: int
) -> dict[int, tuple[list[int] | None, int]]:
    """Recent posts of each celebrity (None where the list is missing and must be rebuilt),
    with the list's floor if the read ran out of posts (see `read_floor`)."""
    if not author_ids:
        return {}
    pipe = get_redis().pipeline(transaction=False)
    high = f"({member(before_id)}" if before_id is not None else "+"
    for author_id in author_ids:
        pipe.exists(celebrity_key(author_id))
        pipe.zrevrangebylex(celebrity_key(author_id), high, "-", start=0, num=count)
    results = pipe.execute()
    found: dict[int, tuple[list[int] | None, int]] = {}
    for index, author_id in enumerate(author_ids):
        exists, members = results[2 * index], results[2 * index + 1]
        found[author_id] = read_floor(members, count) if exists else (None, 0)
    return found


# A home read in one call on a single Redis. KEYS: the timeline, the celebrity set, the viewer's
# followee hint and its version. ARGV: TTL, upper bound, count; what comes before and after the
# ID in the keys of post bodies and of author cards, to read them with the posts ('' for none);
# and the followees as one comma-separated string, or nothing to use the hint. Returns:
#   1. whether the timeline exists (it is renewed if so; if not, the caller rebuilds it),
#   2. whether the followees were known: 1 if given, the fingerprint of the followings the
#      hint holds, else 0 and the rest empty (the caller reads the graph and calls again),
#   3. the newest `count` posts below the bound of the timeline and of every followed
#      celebrity's list, merged here so only a page's worth crosses the wire,
#   4. the body entry of each of those posts (false: none),
#   5. the card entries of their authors (named in each body entry) as author, entry, ...,
#   6. followed celebrities whose list is missing (the caller rebuilds and merges them),
#   7. the sources whose floor is above the page's last post (or any floor, on a page that is
#      not full), as source, floor, ...: the timeline is source 0, a celebrity its ID. Below
#      its floor a source may lack posts, so the caller pulls them from the database.
# With the hint, the followed celebrities are one SINTER of two sets. The celebrity lists are
# named here rather than passed as keys, which a single server allows (a cluster takes the
# pipelined path instead).
_HOME_FUNCTION = """
local call = redis.call
local function home(KEYS)
  local count = tonumber(ARGV[3])
  local out = {0, 0, {}, {}, {}, {}, {}}
  local celebrities
  if ARGV[8] then
    out[2] = 1
    local ids = {}
    for id in string.gmatch(ARGV[8], '%d+') do
      ids[#ids + 1] = id
    end
    celebrities = {}
    for first = 1, #ids, 1000 do  -- SMISMEMBER in slices: unpack's stack is limited
      local slice = {unpack(ids, first, math.min(first + 999, #ids))}
      local flags = call('SMISMEMBER', KEYS[2], unpack(slice))
      for i = 1, #slice do
        if flags[i] == 1 then
          celebrities[#celebrities + 1] = slice[i]
        end
      end
    end
  else
    local version = call('GET', KEYS[4])
    if not version or version == '-' then
      return out
    end
    local size, digest = string.match(version, '^(%d+) (%x+)$')
    if not size or (size ~= '0' and call('EXISTS', KEYS[3]) == 0) then
      call('DEL', KEYS[4])  -- not a version, or the set went (evicted) and it stayed: refill
      return out
    end
    out[2] = digest
    celebrities = call('SINTER', KEYS[3], KEYS[2])
  end
  -- Each list is read down to its sentinel: a read that runs out of posts ends with it, and
  -- learns the list's floor (a list holds no post below it), kept to compare with the page.
  local lists, floors = {}, {}
  local function read(source, key)
    local found = call('ZREVRANGEBYLEX', key, ARGV[2], '-', 'LIMIT', 0, count)
    local last = found[#found]
    if last and string.sub(last, 1, 20) == '0000000000000000000:' then
      found[#found] = nil
      floors[#floors + 1] = {source, string.sub(last, 21)}
    elseif last == '0000000000000000000' or #found < count then
      -- Written before floors were kept (a bare sentinel, or none), and ran out: floored at
      -- its lowest post; with none in the page's range, nothing is known below it.
      if last == '0000000000000000000' then
        found[#found] = nil
      end
      floors[#floors + 1] = {source, found[#found] or '9999999999999999999'}
    end
    lists[#lists + 1] = found
  end
  if call('EXPIRE', KEYS[1], ARGV[1]) == 1 then
    out[1] = 1
    read('0', KEYS[1])
  end
  for _, id in ipairs(celebrities) do
    local key = 'celebrity:{' .. id .. '}:posts'
    if call('EXISTS', key) == 1 then
      read(id, key)
    else
      out[6][#out[6] + 1] = id
    end
  end
  -- Merge the lists (each newest first) through a heap of their heads, newest on top: count
  -- pops of log(lists) steps each. Members are 19-digit IDs, so any string order is ID order.
  -- A single list (no followed celebrity posted) is the page as it is.
  local heap, at = {}, {}
  for i = 1, #lists do
    if #lists[i] > 0 then
      at[i] = 1
      heap[#heap + 1] = i
    end
  end
  local merged = out[3]
  if #heap == 1 then
    merged = lists[heap[1]]
    out[3] = merged
    heap = {}
  end
  local function newer(a, b)
    return lists[a][at[a]] > lists[b][at[b]]
  end
  local function sift_down(i)
    while true do
      local top, l, r = i, 2 * i, 2 * i + 1
      if l <= #heap and newer(heap[l], heap[top]) then top = l end
      if r <= #heap and newer(heap[r], heap[top]) then top = r end
      if top == i then return end
      heap[i], heap[top] = heap[top], heap[i]
      i = top
    end
  end
  for i = math.floor(#heap / 2), 1, -1 do
    sift_down(i)
  end
  local last = nil
  while #merged < count and #heap > 0 do
    local list = heap[1]
    local member = lists[list][at[list]]
    if member ~= last then
      merged[#merged + 1] = member
      last = member
    end
    at[list] = at[list] + 1
    if not lists[list][at[list]] then
      heap[1] = heap[#heap]
      heap[#heap] = nil
    end
    sift_down(1)
  end
  -- Lists floored above the page's last post may lack posts of the page.
  local cutoff = merged[count] or '0000000000000000000'
  for _, floor in ipairs(floors) do
    if floor[2] > cutoff then
      out[7][#out[7] + 1] = floor[1]
      out[7][#out[7] + 1] = floor[2]
    end
  end
  local function mget(keys)  -- in slices: unpack's stack is limited
    local found = {}
    for first = 1, #keys, 1000 do
      local slice = call('MGET', unpack(keys, first, math.min(first + 999, #keys)))
      for i = 1, #slice do
        found[first + i - 1] = slice[i]
      end
    end
    return found
  end
  if ARGV[4] ~= '' and #merged > 0 then
    local keys, authors, seen = {}, {}, {}
    for i, member in ipairs(merged) do
      if string.byte(member, 1) ~= 48 then  -- no leading zero to strip (the ID as it is)
        keys[i] = ARGV[4] .. member .. ARGV[5]
      else
        keys[i] = ARGV[4] .. string.match(member, '^0*(%d+)$') .. ARGV[5]
      end
    end
    local bodies = mget(keys)
    out[4] = bodies
    keys = {}
    for _, body in ipairs(bodies) do
      local author = body and string.match(body, '^%d+ (%d+) ')
      if author and not seen[author] then
        seen[author] = true
        authors[#authors + 1] = author
        keys[#keys + 1] = ARGV[6] .. author .. ARGV[7]
      end
    end
    local cards = mget(keys)
    for i, author in ipairs(authors) do
      out[5][2 * i - 1] = author
      out[5][2 * i] = cards[i]
    end
  end
  return out
end
"""
_HOME_LUA = _HOME_FUNCTION + "return home(KEYS)\n"
_HOME_SHA = hashlib.sha1(_HOME_LUA.encode(), usedforsecurity=False).hexdigest()

# The same read for the holder of a bearer token, with the token's check in the same call (the
# feed's hottest path makes one round trip where it made two). KEYS: the token's cache entry,
# then the celebrity set; ARGV: the home read's, then the time (Unix microseconds). The
# viewer's keys are named from the user ID in the entry (a single server only, like the
# celebrity lists). Returns the entry (false: none), then, if it names a user and its token has
# not expired, the home read's answer (which renews the timeline: only for a live token). The
# caller checks the entry exactly as authentication would (expiry, revocation, activity) before
# using anything read with it.
_AUTH_HOME_LUA = (
    _HOME_FUNCTION
    + """
local now = table.remove(ARGV)  -- the last argument; the rest are the home read's
local entry = call('GET', KEYS[1])
local user, expires
if entry then
  user, expires = string.match(entry, '^(%d+) %d+ (%d+) ')
end
if not user or tonumber(expires) <= tonumber(now) then
  return {entry}  -- nothing read (or renewed) for a token that is no longer good
end
return {entry, home({'timeline:{' .. user .. '}', KEYS[2], 'follows:{' .. user .. '}:ids',
                     'follows:{' .. user .. '}:v'})}
"""
)
_AUTH_HOME_SHA = hashlib.sha1(_AUTH_HOME_LUA.encode(), usedforsecurity=False).hexdigest()


def follows_key(user_id: int) -> str:
    """A hint of whom the user follows (a set), to know whose celebrity lists to read: never
    used to decide what the user may see (reads check the graph in PostgreSQL)."""
    return f"follows:{{{user_id}}}:ids"


def follows_version_key(user_id: int) -> str:
    """The hint's version: "<size> <fingerprint of the followings>", or `-` while marked
    changed. The hint is used only while this says what it holds."""
    return f"follows:{{{user_id}}}:v"


FOLLOWS_TTL = 600

# Write the hint. KEYS: the set, its version. ARGV: replace (1: over whatever is there, 0: only
# if there is no version, not even a mark), the version, TTL, then the followings.
_FILL_LUA = """
local call = redis.call
if ARGV[1] ~= '1' and call('EXISTS', KEYS[2]) == 1 then
  return 0
end
call('DEL', KEYS[1])
for first = 4, #ARGV, 1000 do
  call('SADD', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
if #ARGV >= 4 then
  call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""
_FILL_SHA = hashlib.sha1(_FILL_LUA.encode(), usedforsecurity=False).hexdigest()


_U64 = (1 << 64) - 1


def follows_hint_digest(followees: Iterable[int]) -> str:
    """A fingerprint of a set of followings, in hex: its size and the hash of the set as a
    frozenset (each ID's hash mixed, then combined in any order). Every feed page computes it,
    so it takes no sort and no text (hashing the sorted IDs as text cost three times as much);
    it only tells an out-of-date hint, which costs a missed celebrity list at worst, never what
    a viewer may see. Integers hash the same in every process (no hash seed)."""
    ids = frozenset(followees)
    return f"{len(ids):x}{hash(ids) & _U64:016x}"


def follows_hint_fill(user_id: int, followees: Iterable[int], *, replace: bool = False) -> None:
    """Write the hint: unless it was marked changed meanwhile, or over whatever is there when a
    read found it out of date. A cluster reads no hint."""
    if settings.REDIS_CLUSTER:
        return
    ids = sorted(followees)
    keys = [follows_key(user_id), follows_version_key(user_id)]
    args = [int(replace), f"{len(ids)} {follows_hint_digest(ids)}", FOLLOWS_TTL, *ids]
    client = get_redis()
    try:
        try:
            client.execute_command("EVALSHA", _FILL_SHA, len(keys), *keys, *args)
        except NoScriptError:
            client.execute_command("EVAL", _FILL_LUA, len(keys), *keys, *args)
    except RedisError:
        logger.warning("follow hint not written", exc_info=True)


def follows_hint_forget(user_id: int) -> None:
    """The user's followings changed: a mark that keeps the hint unused and unfilled a while.
    A mark that fails to be written is made good by the next read (it checks the hint)."""
    if settings.REDIS_CLUSTER:
        return
    try:
        get_redis().set(follows_version_key(user_id), FORGOTTEN, ex=FORGOTTEN_SECONDS)
    except RedisError:
        logger.warning("follow hint not marked", exc_info=True)


@dataclass(frozen=True)
class HomeRead:
    posts: list[int]  # newest first, from the timeline and the followed celebrities' lists
    timeline_missing: bool  # rebuild it, then merge its posts
    celebrities_missing: list[int]  # followed celebrities whose lists must be rebuilt and merged
    complete: bool  # False: whom the viewer follows was not known; read again with `followees`
    # Sources (TIMELINE_SOURCE, or a celebrity) floored above the last of `posts` (or at all,
    # when `posts` is short of the count): below its floor, each may lack posts.
    floors: dict[int, int] = field(default_factory=dict)
    hint_digest: str | None = None  # the fingerprint of the followee hint, when it was used
    bodies: dict[int, bytes | None] = field(default_factory=dict)  # raw entries, if asked for
    cards: dict[int, bytes | None] = field(default_factory=dict)  # of the bodies' authors


def home_read(
    user_id: int,
    *,
    before_id: int | None,
    count: int,
    followees: Iterable[int] | None,
    prefetch: tuple[CachedKind, CachedKind] | None = None,
) -> HomeRead:
    """The newest `count` post IDs below `before_id` of the timeline and of the lists of the
    celebrities among `followees` (or, given None, among the followee hint, if there is one),
    merged and deduplicated; with `prefetch` (the kinds of post bodies and of their authors'
    cards), the raw cache entries of those posts and of their authors too.

    One script call on a single Redis. On a cluster the keys live in many slots, so it takes
    two round trips, `followees` must be given, and nothing is prefetched.
    """
    if settings.REDIS_CLUSTER:
        if followees is None:
            return HomeRead([], False, [], complete=False)
        ids, celebrities, timeline_floor = timeline_read(
            user_id, before_id=before_id, count=count, followees=followees
        )
        lists = celebrity_lists(celebrities, before_id=before_id, count=count)
        found = set(ids or ())
        floors = {TIMELINE_SOURCE: timeline_floor}
        for author_id, (posts, floor) in lists.items():
            found.update(posts or ())
            floors[author_id] = floor
        newest = sorted(found, reverse=True)[:count]
        cutoff = newest[-1] if len(newest) == count else 0
        return HomeRead(
            newest,
            timeline_missing=ids is None,
            celebrities_missing=[u for u, (posts, _) in lists.items() if posts is None],
            complete=True,
            floors={source: floor for source, floor in floors.items() if floor > cutoff},
        )
    keys = [timeline_key(user_id), CELEBRITIES, follows_key(user_id), follows_version_key(user_id)]
    high = f"({member(before_id)}" if before_id is not None else "+"
    args: list[int | str] = [ttl_seconds(), high, count]
    if prefetch is not None:
        args.extend(part for kind in prefetch for part in kind.key_parts())
    else:
        args.extend(("", "", "", ""))
    if followees is not None:
        args.append(",".join(map(str, followees)))
    reply = _evalsha(_HOME_SHA, _HOME_LUA, keys, args)
    return _home_parse(reply, prefetched=prefetch is not None)


def home_read_for_token(
    token_key: str, *, before_id: int | None, count: int, prefetch: tuple[CachedKind, CachedKind]
) -> tuple[bytes | None, HomeRead | None]:
    """The token's cache entry (None: none) and, if the entry names a user, `home_read` for
    that user with the followee hint, in one call on a single Redis. Nothing read may be used
    before the entry has been checked as authentication checks it."""
    high = f"({member(before_id)}" if before_id is not None else "+"
    args = [ttl_seconds(), high, count, *(part for kind in prefetch for part in kind.key_parts())]
    args.append(time.time_ns() // 1000)
    reply = _evalsha(_AUTH_HOME_SHA, _AUTH_HOME_LUA, [token_key, CELEBRITIES], args)
    if len(reply) < 2:
        return reply[0], None
    return reply[0], _home_parse(reply[1], prefetched=True)


def _evalsha(sha: str, script: str, keys: list[str], args: list) -> list:
    client = get_redis()
    try:
        return client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        return client.execute_command("EVAL", script, len(keys), *keys, *args)


def _home_parse(reply: list, *, prefetched: bool) -> HomeRead:
    exists, known, posts, bodies, cards, missing, floors = reply
    ids = [int(m) for m in posts]
    return HomeRead(
        ids,
        timeline_missing=not exists,
        celebrities_missing=[int(u) for u in missing],
        floors={int(floors[i]): int(floors[i + 1]) for i in range(0, len(floors), 2)},
        complete=bool(known),
        hint_digest=known.decode() if isinstance(known, bytes) else None,
        bodies=dict(zip(ids, bodies, strict=False)) if prefetched else {},
        cards={int(cards[i]): cards[i + 1] for i in range(0, len(cards), 2)},
    )
