"""Cursor pagination: `?cursor=<opaque>&limit=<1..50>` -> `{items, next_cursor, has_more}`.

A cursor names the position of the last item a page examined (`ts`, `id`), so a page never
repeats or skips an item when newer ones arrive in between. Where one endpoint pages in two ways
whose positions mean different things (the home feed newest first, or ranked), the cursor of the
other way carries its kind too (`"k"`), and a list takes only cursors of its own kind: any other
is a 400, never a page read at a position that means something else.

Cursors are issued encrypted (version 2: URL-safe base64 of a version byte, a nonce and the
AES-GCM sealed `ts`, `id` (8 bytes each) and kind, under a key derived from SECRET_KEY). A page
that ends on items the viewer may not see (a private account's posts on a tag page, a hidden
liker) continues after them, and its cursor must not tell which item that was, nor when it was
made. A sealed cursor is bound to the path it was issued on (CursorScopeMiddleware), so it
cannot be replayed on another list to place that item among others. Keys rotate with Django's:
SECRET_KEY seals, SECRET_KEY_FALLBACKS still open. Version 1 (the plain base64 of
`{"v": 1, "ts", "id"}`) is still read: a position a client writes itself only starts a page
there, which every viewer may do.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from instagram.errors import ApiError
from instagram.ids import MAX_ID

CURSOR_VERSION = 1  # plain, read only
SEALED_VERSION = b"\x02"  # the first byte of an issued cursor
_NONCE = 12
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


_scope: ContextVar[bytes] = ContextVar("cursor_scope", default=b"")


class CursorScopeMiddleware:
    """Binds the cursors a request issues and reads to its path (in lower case: a tag or a
    username names one list in any case)."""

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request):
        with cursor_scope(request.path_info):
            return self.get_response(request)


@contextmanager
def cursor_scope(path: str) -> Iterator[None]:
    """Cursors issued and read inside are those of the list at `path`."""
    token = _scope.set(path.lower().encode())
    try:
        yield
    finally:
        _scope.reset(token)


@functools.cache
def _sealer(secret: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"instagram.cursor:" + secret.encode()).digest())


def _sealers() -> list[AESGCM]:
    return [_sealer(key) for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)]


def _open(nonce: bytes, sealed: bytes) -> bytes:
    associated = SEALED_VERSION + _scope.get()
    for sealer in _sealers():
        try:
            return sealer.decrypt(nonce, sealed, associated)
        except InvalidTag:
            continue
    raise InvalidTag


def encode_cursor(*, ts: int, id: int, kind: str | None = None) -> str:
    position = struct.pack(">QQ", int(ts), int(id)) + (kind or "").encode()
    nonce = os.urandom(_NONCE)
    sealed = _sealer(settings.SECRET_KEY).encrypt(nonce, position, SEALED_VERSION + _scope.get())
    raw = SEALED_VERSION + nonce + sealed
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _invalid() -> ApiError:
    return ApiError(400, "invalid_cursor", "The cursor is malformed or has expired.")


def decode_cursor(raw: str) -> Cursor:
    if not raw or len(raw) > MAX_CURSOR_LENGTH:
        raise _invalid()
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        if decoded[:1] == SEALED_VERSION:
            nonce, sealed = decoded[1 : 1 + _NONCE], decoded[1 + _NONCE :]
            opened = _open(nonce, sealed)
            ts, id_value = struct.unpack(">QQ", opened[:16])
            data = {"v": CURSOR_VERSION, "ts": ts, "id": str(id_value)}
            if opened[16:]:
                data["k"] = opened[16:].decode()
        else:
            data = orjson.loads(decoded)
    except (binascii.Error, ValueError, InvalidTag, struct.error, orjson.JSONDecodeError):
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
