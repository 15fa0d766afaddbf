"""Local development serving of media files (production serves them from S3 behind the CDN)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.views.static import serve

from media.storage import cache_control_for, is_original


def serve_media(request, path: str):
    """Variants and metadata with their cache headers; originals are private: 404."""
    if is_original(path):
        raise Http404("Not found.")
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = cache_control_for(path)
    return response
