"""The request charsets the server decodes: a client names any in `Content-Type`, and Django
takes every name Python's codecs know, some of which are no text encoding (`rot13`, `hex`:
a 500 while it builds the request, before any middleware) or decode to text no database column
can hold (`utf-7`, `unicode_escape`: lone surrogates). Those are refused at the WSGI entry with
415 in the API's error envelope, before Django reads anything."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable

# The codecs' canonical names (codecs.lookup(name).name) a request may be decoded with.
DECODABLE = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "iso8859-15", "cp1252"})

_REFUSED_BODY = json.dumps(
    {"error": {"code": "unsupported_media_type", "message": "Send UTF-8 (or no charset)."}}
).encode()


def charset_of(content_type: str) -> str | None:
    """The charset a Content-Type names, as written (None: none)."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return None


def decodable(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name in DECODABLE
    except LookupError:
        return True  # unknown to Python: Django ignores it and decodes as UTF-8


def charset_guard(application: Callable) -> Callable:
    """A WSGI application that answers 415 for a request whose charset Django must not use."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        charset = charset_of(environ.get("CONTENT_TYPE", ""))
        if charset is not None and not decodable(charset):
            start_response(
                "415 Unsupported Media Type",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(_REFUSED_BODY))),
                ],
            )
            return [_REFUSED_BODY]
        return application(environ, start_response)

    return guarded
