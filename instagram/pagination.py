"""Cursor pagination: `?cursor=<opaque>&limit=<1..50>` -> `{items, next_cursor, has_more}`.

The cursor is URL-safe base64 of `{"v": 1, "ts": <ms>, "id": "<id>"}`: the position of the last
item shown, so a page never repeats or skips an item when newer ones arrive in between. Where one
endpoint pages in two ways whose positions mean different things (the home feed newest first, or
ranked), the cursor of the other way carries its kind too (`"k"`), and a list takes only cursors
of its own kind: any other is a 400, never a page read at a position that means something else.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from django.conf import settings

from instagram.errors import ApiError
from instagram.ids import MAX_ID

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 256
# Positions are milliseconds or microseconds since 1970: anything past year 2200 is forged.
MAX_CURSOR_TS = 7_258_118_400_000_000

T = TypeVar("T")


@dataclass(frozen=True)
class Cursor:
    ts: int
    id: int
    kind: str | None = None


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: Cursor | None


def encode_cursor(*, ts: int, id: int, kind: str | None = None) -> str:
    data: dict[str, int | str] = {"v": CURSOR_VERSION, "ts": int(ts), "id": str(id)}
    if kind is not None:
        data["k"] = kind
    raw = orjson.dumps(data)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _invalid() -> ApiError:
    return ApiError(400, "invalid_cursor", "The cursor is malformed or has expired.")


def decode_cursor(raw: str) -> Cursor:
    if not raw or len(raw) > MAX_CURSOR_LENGTH:
        raise _invalid()
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid() from None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        raise _invalid()
    ts, id_text, kind = data.get("ts"), data.get("id"), data.get("k")
    if not isinstance(ts, int) or isinstance(ts, bool) or not isinstance(id_text, str):
        raise _invalid()
    if kind is not None and not (isinstance(kind, str) and kind):
        raise _invalid()
    if not (id_text.isascii() and id_text.isdigit()) or len(id_text) > 19:
        raise _invalid()
    if int(id_text) > MAX_ID or not 0 <= ts <= MAX_CURSOR_TS:
        raise _invalid()
    return Cursor(ts=ts, id=int(id_text), kind=kind)


def parse_page_request(params: Mapping[str, str], *, kind: str | None = None) -> PageRequest:
    """The limit and cursor asked for; a cursor of another kind than `kind` (one issued by
    another way of paging the list) is a 400 like a malformed one."""
    raw_limit = params.get("limit") or ""
    limit = settings.PAGINATION_DEFAULT_LIMIT
    if raw_limit:
        valid = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3
        if not valid or not 1 <= int(raw_limit) <= settings.PAGINATION_MAX_LIMIT:
            raise ApiError(
                400,
                "invalid_limit",
                f"limit must be a whole number from 1 to {settings.PAGINATION_MAX_LIMIT}.",
            )
        limit = int(raw_limit)
    raw_cursor = params.get("cursor") or ""
    cursor = decode_cursor(raw_cursor) if raw_cursor else None
    if cursor is not None and cursor.kind != kind:
        raise _invalid()
    return PageRequest(limit=limit, cursor=cursor)


def page_body(
    key: str,
    rows: Sequence[T],
    *,
    limit: int,
    render: Callable[[T], Any],
    position: Callable[[T], tuple[int, int]],
) -> dict:
    """Body of one page from up to `limit + 1` rows fetched in order.

    `position(row)` gives the `(ts, id)` the next page continues after.
    """
    has_more = len(rows) > limit
    shown = rows[:limit]
    next_cursor = None
    if has_more and shown:
        ts, id_value = position(shown[-1])
        next_cursor = encode_cursor(ts=ts, id=id_value)
    return {key: [render(row) for row in shown], "next_cursor": next_cursor, "has_more": has_more}
