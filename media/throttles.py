"""Per-user upload rate limit, checked before the body is read (the shared fixed window)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from instagram.ratelimit import rate_limit_hit, retry_after


class MediaUploadThrottle(BaseThrottle):
    """At most MEDIA_UPLOAD_RATE_LIMIT upload attempts per user per window; 429 beyond."""

    def __init__(self):
        self._wait: int | None = None

    def allow_request(self, request, view) -> bool:
        if request.method != "POST":
            return True  # only uploads count (not a CORS preflight, nor a 405)
        user_id = getattr(request.user, "id", None)
        if user_id is None:
            return True  # authentication answers first
        window = settings.MEDIA_UPLOAD_RATE_WINDOW_SECONDS
        if rate_limit_hit(name=f"media_upload:{user_id}", window=window) <= (
            settings.MEDIA_UPLOAD_RATE_LIMIT
        ):
            return True
        self._wait = retry_after(window)
        return False

    def wait(self) -> int | None:
        return self._wait
