"""`Authorization: Bearer <token>`: a token is looked up by its SHA-256.

Every authenticated request needs its token checked, so the check is cached in Redis
(`auth:{sha256}`: user ID, token ID, expiry and last activity) for AUTH_CACHE_SECONDS, and the
request's user carries only those fields: the first use of any other loads the whole row in one
query (`User.refresh_from_db`). A miss reads the token and its user from PostgreSQL in one
query and fills the entry with SET NX, so it never overwrites a mark.

Revocation is at once: logout, a password change (the user's or an admin's), a deactivation or
a deletion marks the token's entry `revoked` (for longer than an entry lives) after the change
commits, and a revoked mark is final even for a request that read the database just before the
change. Without Redis, every request reads PostgreSQL, as Redis is only a cache.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connections
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions

from accounts.models import AuthToken, User
from accounts.services.auth import (
    REVOKED,
    hash_token,
    token_cache_entry,
    token_cache_key,
    user_touch_active,
)
from instagram.redis import get_redis

logger = logging.getLogger(__name__)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate_header(self, request) -> str:
        return self.keyword

    def authenticate(self, request):
        key_hash = bearer_key_hash(request)
        if key_hash is None:
            return None
        found = _token_with_user(key_hash)
        if found is None or not found[1].is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.", "invalid_token")
        token, user = found
        now = timezone.now()
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("The token has expired.", "token_expired")
        if user.last_active_at < now - ACTIVITY_GRANULARITY:
            user_touch_active(user=user, now=now, token=token)
        request.auth_token = token
        return user, token


ACTIVITY_GRANULARITY = dt.timedelta(hours=1)  # how stale `last_active_at` may be


def bearer_key_hash(request) -> str | None:
    """The SHA-256 of the request's bearer token, None if it names none; a malformed header
    fails authentication."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].lower() != BearerTokenAuthentication.keyword.lower().encode():
        return None
    if len(header) != 2 or len(header[1]) > 256:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.", "invalid_token")
    try:
        raw = header[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Invalid token.", "invalid_token")
    return hash_token(raw)


def authenticated_by_entry(request, key_hash: str, cached: bytes | None) -> User | None:
    """The user a token's cache entry (read by the caller, with other keys in one Redis call)
    vouches for, set as the request's user; None, with nothing set, unless the entry alone
    settles it: a missing, revoked or unreadable entry, an expired token or activity to record
    take `authenticate`'s path, which answers them."""
    if cached is None or cached == REVOKED:
        return None
    try:
        token, user = _from_cache(key_hash, cached)
    except (ValueError, OverflowError, OSError):
        return None
    now = timezone.now()
    if token.expires_at <= now or user.last_active_at < now - ACTIVITY_GRANULARITY:
        return None
    request.user, request.auth = user, token
    request.auth_token = token
    return user


def _token_with_user(key_hash: str) -> tuple[AuthToken, User] | None:
    key = token_cache_key(key_hash)
    try:
        cached = get_redis().get(key)
    except RedisError:
        logger.warning("token cache unavailable; reading the database", exc_info=True)
        return _token_with_user_from_db(key_hash)
    if cached == REVOKED:
        return None
    if cached is not None:
        try:
            return _from_cache(key_hash, cached)
        except (ValueError, OverflowError, OSError):  # not an entry of ours: read the database
            pass
    found = _token_with_user_from_db(key_hash)
    if found is not None and found[1].is_active and cached is None:
        entry = token_cache_entry(token=found[0], user=found[1])
        try:
            get_redis().set(key, entry, ex=settings.AUTH_CACHE_SECONDS, nx=True)
        except RedisError:
            logger.warning("token cache unavailable", exc_info=True)
    return found


def _moment(micros: bytes) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(micros) / 1_000_000, tz=dt.UTC)


def _from_cache(key_hash: str, cached: bytes) -> tuple[AuthToken, User]:
    user_id, token_id, expires, last_active = cached.split()
    known = {"id": int(user_id), "is_active": True, "last_active_at": _moment(last_active)}
    user = User.from_db("default", _CACHED_FIELDS, [known[name] for name in _CACHED_FIELDS])
    token = AuthToken(id=int(token_id), user=user, key_hash=key_hash, expires_at=_moment(expires))
    token._state.adding = False
    token._state.db = "default"
    return token, user


_USER_FIELDS = [f.attname for f in User._meta.concrete_fields]
# What a cached entry knows of the user, in the model's field order (as `from_db` takes them).
_CACHED_FIELDS = [name for name in _USER_FIELDS if name in ("id", "is_active", "last_active_at")]
_TOKEN_SQL = (
    "SELECT t.id, t.expires_at, "
    + ", ".join(f'u."{name}"' for name in _USER_FIELDS)
    + " FROM accounts_authtoken t JOIN accounts_user u ON u.id = t.user_id"
    " WHERE t.key_hash = %s"
)


def _token_with_user_from_db(key_hash: str) -> tuple[AuthToken, User] | None:
    """The token and its user in one plain query."""
    with connections["default"].cursor() as cursor:
        cursor.execute(_TOKEN_SQL, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    user = User.from_db("default", _USER_FIELDS, row[2:])
    token = AuthToken(id=row[0], user=user, key_hash=key_hash, expires_at=row[1])
    token._state.adding = False
    token._state.db = "default"
    return token, user
