"""`Authorization: Bearer <token>`: a token is looked up by its SHA-256, with its user."""

from __future__ import annotations

import datetime as dt

from django.db import connections
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import AuthToken, User
from accounts.services.auth import hash_token, user_touch_active


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate_header(self, request) -> str:
        return self.keyword

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2 or len(header[1]) > 256:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header.", "invalid_token"
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.", "invalid_token")
        found = _token_with_user(hash_token(raw))
        if found is None or not found[1].is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.", "invalid_token")
        token, user = found
        now = timezone.now()
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("The token has expired.", "token_expired")
        if user.last_active_at < now - dt.timedelta(hours=1):
            user_touch_active(user=user, now=now)
        request.auth_token = token
        return user, token


_USER_FIELDS = [f.attname for f in User._meta.concrete_fields]
_TOKEN_SQL = (
    "SELECT t.id, t.expires_at, "
    + ", ".join(f'u."{name}"' for name in _USER_FIELDS)
    + " FROM accounts_authtoken t JOIN accounts_user u ON u.id = t.user_id"
    " WHERE t.key_hash = %s"
)


def _token_with_user(key_hash: str) -> tuple[AuthToken, User] | None:
    """The token and its user in one plain query (every authenticated request runs it)."""
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
