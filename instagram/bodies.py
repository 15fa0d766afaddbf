"""Request bodies the server reads: refused at the WSGI entry, in the API's error envelope,
before anything reads them.

- A body longer than any request may carry is a 413: DRF's parsers read a JSON or form body
  whole, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE (which guards only `request.body`), so a
  30 MB JSON body was read into memory before a field's limit refused it. A multipart upload
  may carry a file of MEDIA_MAX_UPLOAD_BYTES and that much again of form fields.
- A chunked body (no Content-Length) is a 411: Django reads a body only by its length, so it
  would take the request as having none and answer about missing fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from django.conf import settings


def _answer(start_response: Callable, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),  # the body is left unread
        ],
    )
    return [body]


def body_limit(content_type: str) -> int:
    """The most bytes a request body of this type may hold."""
    fields = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
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
        length = environ.get("CONTENT_LENGTH") or "0"
        limit = body_limit(environ.get("CONTENT_TYPE", ""))
        if not length.isdigit() or int(length) > limit:
            return _answer(
                start_response,
                "413 Content Too Large",
                "payload_too_large",
                f"A request body here is at most {limit} bytes.",
            )
        return application(environ, start_response)

    return guarded
