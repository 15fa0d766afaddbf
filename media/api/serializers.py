"""Input parsing for the media API (output is plain dicts from `media.selectors`)."""

from rest_framework import serializers


class MediaUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=255)
    media_type = serializers.CharField(max_length=16)
    filter_id = serializers.CharField(max_length=32, required=False, allow_blank=True)
