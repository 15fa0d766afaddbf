from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from instagram.text import PlainTextField


@extend_schema_field(
    {"type": "string", "minLength": 1, "maxLength": 30, "pattern": "^[A-Za-z0-9._]{1,30}$"}
)
class UsernameField(serializers.CharField):
    """A new username, taken in lower case; the service checks it (`invalid_username`,
    `username_reserved`)."""


class RegisterInputSerializer(serializers.Serializer):
    username = UsernameField(max_length=64)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    full_name = PlainTextField(max_length=150, required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    device = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class PasswordChangeInputSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class ProfileUpdateInputSerializer(serializers.Serializer):
    full_name = PlainTextField(max_length=150, required=False, allow_blank=True)
    bio = PlainTextField(max_length=150, required=False, allow_blank=True, lines=True)
    is_private = serializers.BooleanField(required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)


class TokenSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    username = serializers.CharField()
    token = serializers.CharField()


class UserSummarySerializer(serializers.Serializer):
    user_id = serializers.CharField()
    username = serializers.CharField()
    full_name = serializers.CharField()
    profile_pic_url = serializers.CharField(allow_null=True)
    is_verified = serializers.BooleanField()
    is_private = serializers.BooleanField()


class UserListSerializer(serializers.Serializer):
    users = UserSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class ProfileSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    username = serializers.CharField()
    full_name = serializers.CharField()
    bio = serializers.CharField()
    profile_pic_url = serializers.CharField(allow_null=True)
    is_private = serializers.BooleanField()
    is_verified = serializers.BooleanField()
    follower_count = serializers.IntegerField()
    following_count = serializers.IntegerField()
    post_count = serializers.IntegerField()
    followed_by_viewer = serializers.BooleanField()
    follow_requested_by_viewer = serializers.BooleanField()
    is_blocked_by_viewer = serializers.BooleanField()


class FollowStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["following", "requested"])


class ProfilePictureInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=255)
