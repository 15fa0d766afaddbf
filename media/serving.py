"""Local development serving of media files (production serves them from S3 behind the CDN)."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import Http404
from django.views.static import serve

from media.storage import cache_control_for, is_original

# What may be served: `{user_id}/{media_id}/{variant}.jpg` and `metadata.json`, spelled exactly
# (a path that only resolves to one, `original.jpg/.` say, is not one).
_PUBLIC_NAME_RE = re.compile(r"[0-9]+/[0-9]+/(?:[0-9a-z_]+\.jpg|metadata\.json)")


def serve_media(request, path: str):
    """Variants and metadata with their cache headers; originals are private: 404."""
    if not _PUBLIC_NAME_RE.fullmatch(path) or is_original(path):
        raise Http404("Not found.")
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = cache_control_for(path)
    return response
