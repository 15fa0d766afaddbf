import math
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from instagram.api import IdField
from instagram.text import PlainTextField
from posts.models import ALT_TEXT_MAX, CAPTION_MAX, COMMENT_MAX, MAX_MEDIA, MAX_TAGGED

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": ALT_TEXT_MAX},
            {
                "type": "array",
                "items": {"type": "string", "maxLength": ALT_TEXT_MAX},
                "maxItems": MAX_MEDIA,
            },
        ]
    }
)
class AltTextField(serializers.Field):
    """One string, or a list of strings parallel to media_ids."""

    default_error_messages = {
        "invalid": "Give a string or a list of strings.",
        "too_long": f"Alt text is at most {ALT_TEXT_MAX} characters.",
    }

    def to_internal_value(self, data):
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            self.fail("invalid")
        if len(items) > 100:
            self.fail("invalid")
        if any(len(i) > ALT_TEXT_MAX for i in items):
            self.fail("too_long")
        if any("\x00" in i or _SURROGATE_RE.search(i) for i in items):
            self.fail("invalid")  # what a text column cannot store
        return items

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "maxLength": CAPTION_MAX})
class CaptionField(serializers.CharField):
    """A caption; its length is the service's to check (`caption_too_long`)."""


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": "^[0-9]{1,19}$"},
        "minItems": 1,
        "maxItems": MAX_MEDIA,
    }
)
class MediaIdsField(serializers.ListField):
    """A list of media IDs; anything that cannot be one is the contract's `invalid_media`."""

    child = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        from instagram.errors import ApiError
        from instagram.ids import parse_id_text

        if not isinstance(data, list) or not all(isinstance(i, str | int) for i in data):
            raise ApiError(400, "invalid_media", "media_ids must be a list of media IDs.")
        ids = [parse_id_text(str(i)) if not isinstance(i, bool) else None for i in data]
        if any(i is None for i in ids):
            raise ApiError(400, "invalid_media", "media_ids must be a list of media IDs.")
        return ids


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": "^[0-9]{1,19}$"},
        "maxItems": MAX_TAGGED,
    }
)
class TaggedUsersField(serializers.ListField):
    """User IDs to tag; the service checks how many (`too_many_tags`) and who."""


class PostCreateInputSerializer(serializers.Serializer):
    media_ids = MediaIdsField()
    caption = CaptionField(required=False, allow_blank=True, default="")
    alt_text = AltTextField(required=False)
    tagged_users = TaggedUsersField(child=IdField(), required=False, max_length=100)
    location_id = IdField(required=False, allow_null=True)


class PostUpdateInputSerializer(serializers.Serializer):
    caption = CaptionField(required=False, allow_blank=True)
    alt_text = AltTextField(required=False)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": COMMENT_MAX})
class CommentTextField(serializers.CharField):
    """A comment's text; the service checks it (`empty_comment`, `comment_too_long`)."""


class CommentInputSerializer(serializers.Serializer):
    text = CommentTextField(allow_blank=True, trim_whitespace=False, max_length=20000)
    parent_id = IdField(required=False, allow_null=True)


class CoordinateField(serializers.FloatField):
    """A finite number (not a boolean, which Python would count as 0 or 1)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            raise serializers.ValidationError("Must be a finite number.")
        return value


class LocationInputSerializer(serializers.Serializer):
    name = PlainTextField(max_length=100, message="Names cannot hold control or reordering marks.")

    lat = CoordinateField(min_value=-90, max_value=90)
    lng = CoordinateField(min_value=-180, max_value=180)


class PostCreatedSerializer(serializers.Serializer):
    post_id = serializers.CharField()
    permalink = serializers.CharField()
    created_at = serializers.DateTimeField()


class AuthorSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    username = serializers.CharField()
    profile_pic_url = serializers.CharField(allow_null=True)
    is_verified = serializers.BooleanField()


class PostMediaSerializer(serializers.Serializer):
    media_id = serializers.CharField()
    type = serializers.CharField()
    url = serializers.CharField(allow_null=True)
    urls = serializers.DictField(child=serializers.CharField())
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    alt_text = serializers.CharField()
    blur_placeholder = serializers.CharField(allow_null=True)


class LocationSerializer(serializers.Serializer):
    location_id = serializers.CharField()
    name = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()


class MentionSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    username = serializers.CharField()


class PostSerializer(serializers.Serializer):
    post_id = serializers.CharField()
    author = AuthorSerializer()
    media = PostMediaSerializer(many=True)
    caption = serializers.CharField()
    hashtags = serializers.ListField(child=serializers.CharField())
    mentions = MentionSerializer(many=True)
    location = LocationSerializer(allow_null=True)
    like_count = serializers.IntegerField()
    comment_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    viewer_has_liked = serializers.BooleanField()
    viewer_has_saved = serializers.BooleanField()
    permalink = serializers.CharField()


class PostListSerializer(serializers.Serializer):
    posts = PostSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class CommentSerializer(serializers.Serializer):
    comment_id = serializers.CharField()
    post_id = serializers.CharField()
    author = AuthorSerializer()
    text = serializers.CharField()
    parent_id = serializers.CharField(allow_null=True)
    like_count = serializers.IntegerField()
    reply_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    viewer_has_liked = serializers.BooleanField()


class CommentListSerializer(serializers.Serializer):
    comments = CommentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class LikeStateSerializer(serializers.Serializer):
    like_count = serializers.IntegerField()
    viewer_has_liked = serializers.BooleanField()


class LocationListSerializer(serializers.Serializer):
    locations = LocationSerializer(many=True)
