"""Request bodies the server reads: refused at the WSGI entry, in the API's error envelope,
before anything reads them.

- A body longer than any request may carry is a 413: DRF's parsers read a JSON or form body
  whole, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE (which guards only `request.body`), so a
  30 MB JSON body was read into memory before a field's limit refused it. A multipart body
  sent to an upload endpoint may carry a file of MEDIA_MAX_UPLOAD_BYTES and that much again
  of form fields.
- A chunked body (no Content-Length) is a 411: Django reads a body only by its length, so it
  would take the request as having none and answer about missing fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from django.conf import settings


def _answer(start_response: Callable, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    # (No `Connection: close`: a WSGI application may not send hop-by-hop headers; the server
    # decides what to do with the unread body.)
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# The endpoints that take a file: only they take a multipart body past the fields' limit.
UPLOAD_PATHS = frozenset({"/api/v1/media/upload", "/api/v1/accounts/me/profile_pic"})


def body_limit(path: str, content_type: str) -> int:
    """The most bytes a request body of this type may hold at this path."""
    fields = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    multipart = content_type.split(";")[0].strip().lower() == "multipart/form-data"
    if multipart and path in UPLOAD_PATHS:
        return settings.MEDIA_MAX_UPLOAD_BYTES + fields
    return fields


def body_guard(application: Callable) -> Callable:
    """A WSGI application that answers 413 for a body over its limit and 411 for one sent
    without a length."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return _answer(
                start_response,
                "411 Length Required",
                "length_required",
                "Send the body with a Content-Length.",
            )
        length = (environ.get("CONTENT_LENGTH") or "0").strip()
        limit = body_limit(environ.get("PATH_INFO", ""), environ.get("CONTENT_TYPE", ""))
        if not (length.isascii() and length.isdigit()) or int(length) > limit:
            return _answer(
                start_response,
                "413 Content Too Large",
                "payload_too_large",
                f"A request body here is at most {limit} bytes.",
            )
        return application(environ, start_response)

    return guarded
