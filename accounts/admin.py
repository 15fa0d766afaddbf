from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import transaction

from accounts.models import Block, CloseFriend, Follower, Following, FollowRequest, User
from accounts.services.auth import user_tokens_delete, user_tokens_forget, user_tokens_mark_revoked
from accounts.services.profile import user_cards_forget
from instagram.admin import RefusedWhileUnavailable, ShardedModelAdmin


class PasswordSetForm(AdminPasswordChangeForm):
    """An admin's new password for a user also signs the user out everywhere: their tokens are
    deleted and marked revoked, as a password change through the API does."""

    def save(self, commit: bool = True):
        with transaction.atomic(using="default"):
            user = super().save(commit=commit)
            user_tokens_delete(user_ids=[user.pk])
        return user


@admin.register(User)
class UserAdmin(RefusedWhileUnavailable, DjangoUserAdmin):
    change_password_form = PasswordSetForm
    list_display = ("username", "full_name", "email", "is_verified", "is_private", "is_active")
    list_filter = ("is_verified", "is_private", "is_active", "is_staff")
    search_fields = ("username", "full_name", "email")
    ordering = ("username",)
    actions = ["verify", "unverify", "deactivate", "reactivate"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("full_name", "email", "bio", "profile_pic_url", "is_private")}),
        ("Status", {"fields": ("is_verified", "is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "last_active_at", "date_joined")}),
    )
    add_fieldsets = ((None, {"fields": ("username", "password1", "password2")}),)

    def user_change_password(self, request, *args, **kwargs):
        return self.refused_while_unavailable(
            request, super().user_change_password, *args, **kwargs
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        user_cards_forget(user_ids=[obj.pk])
        if obj.is_active:
            user_tokens_forget(user_ids=[obj.pk])
        else:
            user_tokens_mark_revoked(user_ids=[obj.pk])

    def delete_model(self, request, obj):
        user_tokens_mark_revoked(user_ids=[obj.pk])
        user_cards_forget(user_ids=[obj.pk])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        user_ids = list(queryset.values_list("pk", flat=True))
        user_tokens_mark_revoked(user_ids=user_ids)
        user_cards_forget(user_ids=user_ids)
        super().delete_queryset(request, queryset)

    def _update(self, queryset, **fields) -> None:
        user_ids = list(queryset.values_list("pk", flat=True))
        queryset.update(**fields)
        user_cards_forget(user_ids=user_ids)

    @admin.action(description="Mark as verified")
    def verify(self, request, queryset):
        self._update(queryset, is_verified=True)

    @admin.action(description="Remove verification")
    def unverify(self, request, queryset):
        self._update(queryset, is_verified=False)

    @admin.action(description="Deactivate (and revoke their tokens)")
    def deactivate(self, request, queryset):
        user_tokens_delete(user_ids=list(queryset.values_list("pk", flat=True)))
        self._update(queryset, is_active=False)

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        self._update(queryset, is_active=True)
        user_tokens_forget(user_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(Following)
class FollowingAdmin(ShardedModelAdmin):
    list_display = ("id", "follower_id", "followee_id", "created_at")
    search_fields = ("=follower_id", "=followee_id")


@admin.register(Follower)
class FollowerAdmin(ShardedModelAdmin):
    list_display = ("id", "followee_id", "follower_id", "created_at")
    search_fields = ("=followee_id", "=follower_id")


@admin.register(FollowRequest)
class FollowRequestAdmin(ShardedModelAdmin):
    list_display = ("id", "target_id", "requester_id", "created_at")
    search_fields = ("=target_id", "=requester_id")


@admin.register(Block)
class BlockAdmin(ShardedModelAdmin):
    list_display = ("id", "blocker_id", "blocked_id", "created_at")
    search_fields = ("=blocker_id", "=blocked_id")


@admin.register(CloseFriend)
class CloseFriendAdmin(ShardedModelAdmin):
    list_display = ("id", "owner_id", "friend_id", "created_at")
