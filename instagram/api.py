"""Small pieces every app's API uses: OpenAPI shapes shared by all, request helpers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from instagram.errors import ApiError


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorSerializer) for status in statuses}


PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="Opaque cursor from `next_cursor`."),
    OpenApiParameter("limit", int, description="1..50, default 20."),
]


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)
