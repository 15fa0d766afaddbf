"""`Authorization: Bearer <token>`: a token is looked up by its SHA-256, with its user."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import AuthToken
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
        token = AuthToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.", "invalid_token")
        now = timezone.now()
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("The token has expired.", "token_expired")
        if token.user.last_active_at < now - dt.timedelta(hours=1):
            user_touch_active(user=token.user, now=now)
        request.auth_token = token
        return token.user, token
