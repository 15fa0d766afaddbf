"""The error envelope of the API: `{"error": {"code": ..., "message": ...}}` for every error."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """Raise with a machine code and a human message: `ApiError(400, "invalid_cursor", "...")`."""

    def __init__(
        self, status_code: int, code: str, message: str, *, retry_after: int | None = None
    ):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.retry_after = retry_after


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _first_message(detail) -> str:
    """The first human message of a DRF error detail, prefixed with its field name."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field in ("non_field_errors", "detail") else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


_DEFAULT_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_409_CONFLICT: "conflict",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
}


_RENAMED_CODES = {"throttled": "rate_limited", "error": "invalid"}


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views reads the authentication classes at import time.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers in the envelope
    if isinstance(exc, ApiError):
        code = exc.error_code
    elif isinstance(exc, exceptions.ValidationError):
        code = "invalid"
    else:
        codes = exc.get_codes()
        code = (
            codes if isinstance(codes, str) else _DEFAULT_CODES.get(response.status_code, "error")
        )
        code = _RENAMED_CODES.get(code, code)
    body = error_body(code, _first_message(exc.detail))
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["error"]["fields"] = exc.detail
    headers = {
        k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")
    }
    if isinstance(exc, ApiError) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return Response(body, status=response.status_code, headers=headers)


def _json_or_default(request, status_code: int, code: str, message: str, default):
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(error_body(code, message), status=status_code)
    return default


def handler400(request, exception=None):
    from django.views import defaults

    return _json_or_default(
        request, 400, "bad_request", "Bad request.", defaults.bad_request(request, exception)
    )


def handler403(request, exception=None):
    from django.views import defaults

    return _json_or_default(
        request,
        403,
        "permission_denied",
        "Forbidden.",
        defaults.permission_denied(request, exception),
    )


def handler404(request, exception=None):
    from django.views import defaults

    return _json_or_default(
        request, 404, "not_found", "Not found.", defaults.page_not_found(request, exception)
    )


def handler500(request):
    from django.views import defaults

    return _json_or_default(
        request, 500, "server_error", "Internal server error.", defaults.server_error(request)
    )


@csrf_exempt  # a POST to no endpoint is a 404, not the CSRF check's HTML page
def api_not_found(request, *args, **kwargs):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: under /api/, the error envelope; elsewhere (the admin), Django's
    page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("csrf_failed", "CSRF check failed; send the CSRF token."), status=403
        )
    return django_csrf_failure(request, reason)
