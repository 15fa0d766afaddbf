"""Input parsing for the media API, and the shapes of its answers for the schema (answers are
plain dicts from `media.selectors`)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from media.filters import FILTERS
from media.models import MediaStatus, MediaType


@extend_schema_field({"type": "string", "enum": list(MediaType.values)})
class MediaTypeField(serializers.CharField):
    """`image` (or `video`, answered 415 until video is supported); the service checks it."""


@extend_schema_field({"type": "string", "enum": list(FILTERS)})
class FilterIdField(serializers.CharField):
    """One of the filters `GET /media/filters` lists; the service checks it."""


class MediaUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=255)
    media_type = MediaTypeField(max_length=16)
    filter_id = FilterIdField(max_length=32, required=False, allow_blank=True)


class MediaSerializer(serializers.Serializer):
    """The media object: sizes and placeholders are null until it is ready."""

    media_id = serializers.CharField()
    media_type = serializers.ChoiceField(choices=MediaType.values)
    status = serializers.ChoiceField(choices=MediaStatus.values)
    urls = serializers.DictField(child=serializers.CharField())
    square_urls = serializers.DictField(child=serializers.CharField())
    blur_placeholder = serializers.CharField(allow_null=True)
    blurhash = serializers.CharField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    filter_id = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField(required=False, help_text="Only when failed.")


class FilterSerializer(serializers.Serializer):
    filter_id = serializers.CharField()
    name = serializers.CharField()


class FilterListSerializer(serializers.Serializer):
    filters = FilterSerializer(many=True)
