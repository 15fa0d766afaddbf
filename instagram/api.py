"""Small pieces every app's API uses: OpenAPI shapes shared by all, request helpers."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from instagram.errors import ApiError
from instagram.pagination import MAX_CURSOR_LENGTH


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorSerializer) for status in statuses}


PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
        description="Opaque cursor from `next_cursor`.",
    ),
    OpenApiParameter(
        "limit",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": settings.PAGINATION_MAX_LIMIT,
            "default": settings.PAGINATION_DEFAULT_LIMIT,
        },
        description=f"1..{settings.PAGINATION_MAX_LIMIT}, default "
        f"{settings.PAGINATION_DEFAULT_LIMIT}.",
    ),
]


def client_ip(request) -> str:
    """The client, as rate limits key it: its address, or for IPv6 its /64 network (what one
    subscriber is given: a client could otherwise take a fresh budget with each of its
    addresses)."""
    ip = _client_address(request)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 4:
        return ip
    if address.ipv4_mapped is not None:  # a v4 client through a v6 socket: as itself
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def _client_address(request) -> str:
    """The socket's peer, or behind TRUSTED_PROXIES proxies the address the outermost of them
    saw (X-Forwarded-For, counted from its end, since a client can write any entries at its
    start)."""
    peer = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXIES
    if proxies <= 0:
        return peer
    entries = [e.strip() for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [e for e in entries if e]
    if not entries:
        return peer
    if len(entries) < proxies:  # fewer hops than proxies: not through them all
        return peer
    candidate = entries[-proxies]
    if candidate.startswith("["):  # "[v6]" or "[v6]:port"
        candidate = candidate[1:].partition("]")[0]
    elif candidate.count(":") == 1:  # "v4:port"
        candidate = candidate.partition(":")[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # not an address: the proxy chain is not what the setting says
        return peer


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)


@extend_schema_field(
    {"type": "string", "pattern": "^[0-9]{1,19}$", "example": "1824473590230162435"}
)
class IdField(serializers.Field):
    """A 64-bit ID: a string of digits (as the API writes them) or a JSON integer."""

    default_error_messages = {"invalid": "Must be an ID: a string of digits."}

    def to_internal_value(self, data):
        from instagram.ids import parse_id_text

        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        value = parse_id_text(str(data))
        if value is None:
            self.fail("invalid")
        return value

    def to_representation(self, value):
        return str(value)


def parse_id(raw: str, message: str = "Not found.") -> int:
    """An ID from a path segment; anything that cannot be one is a 404."""
    from instagram.ids import parse_id_text

    value = parse_id_text(raw)
    if value is None:
        raise not_found(message)
    return value
