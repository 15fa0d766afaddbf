from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from instagram.api import IdField
from posts.models import ALT_TEXT_MAX


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
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
        if any("\x00" in i for i in items):
            self.fail("invalid")
        return items

    def to_representation(self, value):
        return value


class PostCreateInputSerializer(serializers.Serializer):
    media_ids = serializers.ListField(child=IdField(), max_length=100)
    caption = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    alt_text = AltTextField(required=False)
    tagged_users = serializers.ListField(child=IdField(), required=False, max_length=100)
    location_id = IdField(required=False, allow_null=True)


class PostUpdateInputSerializer(serializers.Serializer):
    caption = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    alt_text = AltTextField(required=False)


class CommentInputSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=20000)
    parent_id = IdField(required=False, allow_null=True)


class LocationInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)


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
