"""Thin views: parse, call one service or selector, render a plain dict."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from instagram.api import error_responses
from instagram.errors import ApiError
from media import selectors, services
from media.api.serializers import FilterListSerializer, MediaSerializer, MediaUploadSerializer
from media.throttles import MediaUploadThrottle
from media.uploads import MediaUploadHandler

# Multipart framing and the small text fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class StreamedUploadMixin:
    """Multipart views whose file streams to disk (never into memory), size-capped early."""

    parser_classes = [MultiPartParser]
    max_upload_bytes_setting = "MEDIA_MAX_UPLOAD_BYTES"

    def initial(self, request, *args, **kwargs):
        # Before anything reads the body (a CSRF check would): the file streams to disk.
        self.upload_handler = MediaUploadHandler(
            request._request, max_bytes=getattr(settings, self.max_upload_bytes_setting)
        )
        request._request.upload_handlers = [self.upload_handler]
        super().initial(request, *args, **kwargs)

    def upload_data(self, request):
        """The parsed form, or a 413 if the declared or streamed size is over the cap."""
        limit = getattr(settings, self.max_upload_bytes_setting)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ApiError(400, "invalid", "Content-Length must be a number.") from None
        if declared > limit + MULTIPART_OVERHEAD_BYTES:
            raise _too_large(limit)
        data = request.data
        if self.upload_handler.too_large:
            raise _too_large(limit)
        return data


class MediaUploadApi(StreamedUploadMixin, APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [MediaUploadThrottle]

    @extend_schema(
        request={"multipart/form-data": MediaUploadSerializer},
        responses={
            200: MediaSerializer,
            **error_responses(400, 401, 413, 415, 429),
        },
    )
    def post(self, request):
        serializer = MediaUploadSerializer(data=self.upload_data(request))
        serializer.is_valid(raise_exception=True)
        media = services.media_upload(
            uploader=request.user,
            file=serializer.validated_data["file"],
            media_type=serializer.validated_data["media_type"],
            filter_id=serializer.validated_data.get("filter_id") or None,
        )
        return Response(selectors.media_payload(media))


def _too_large(limit: int) -> ApiError:
    megabytes = limit // (1024 * 1024)
    return ApiError(413, "payload_too_large", f"The file is larger than {megabytes} MB.")


class MediaDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: MediaSerializer,
            **error_responses(401, 404),
        }
    )
    def get(self, request, media_id: str):
        media = selectors.media_get_for_uploader(viewer_id=request.user.id, media_id=media_id)
        return Response(selectors.media_payload(media))


class MediaFilterListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: FilterListSerializer,
            **error_responses(401),
        }
    )
    def get(self, request):
        return Response({"filters": selectors.media_filter_list()})
