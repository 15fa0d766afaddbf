from django.contrib import admin
from django.contrib.admin import forms as admin_forms
from django.contrib.auth import authenticate
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    UserChangeForm,
    UsernameField,
)
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from accounts.models import (
    RESERVED_USERNAMES,
    USERNAME_DOTS_MESSAGE,
    USERNAME_DOTS_RE,
    Block,
    CloseFriend,
    Follower,
    Following,
    FollowRequest,
    User,
)
from accounts.services.auth import (
    current_password_check_reserve,
    login_limits_enforce,
    normalize_username,
    user_counters_ensure,
    user_tokens_delete,
    user_tokens_forget,
    user_tokens_mark_revoked,
)
from accounts.services.graph import follow_requests_approve_all_later, switch_to_private_lock
from accounts.services.profile import user_cards_forget
from instagram.admin import RefusedWhileUnavailable, ShardedModelAdmin, refused_while_unavailable
from instagram.api import client_ip
from instagram.dispatch import after_commit
from instagram.errors import ApiError
from instagram.ids import parse_id_text
from instagram.ratelimit import rate_limit_release


def _password_save_signing_out(save, commit: bool):
    """A new password set in the admin also signs its user out everywhere: their tokens are
    deleted and marked revoked, as a password change through the API does."""
    with transaction.atomic(using="default"):
        user = save(commit=commit)
        user_tokens_delete(user_ids=[user.pk])
    return user


class PasswordSetForm(AdminPasswordChangeForm):
    """An admin's new password for a user (the user's "Change password" form)."""

    def save(self, commit: bool = True):
        return _password_save_signing_out(super().save, commit)


class OwnPasswordChangeForm(admin_forms.AdminPasswordChangeForm):
    """A staff user's own new password (the admin site's "Change password" page). A wrong
    current password counts against the account's login budget, as through the API."""

    def clean_old_password(self):
        try:
            attempt = current_password_check_reserve(username=self.user.username)
        except ApiError as error:
            raise ValidationError(str(error.detail), code="rate_limited") from None
        old_password = super().clean_old_password()  # a wrong one stays counted
        rate_limit_release(attempt)
        return old_password

    def save(self, commit: bool = True):
        return _password_save_signing_out(super().save, commit)


def admin_password_change(request):
    """The admin site's own "Change password" page: AdminSite.password_change with the form
    above (Django takes no other form there, so instagram/urls.py routes the page here), and a
    revocation Redis cannot record said on the page, as on the user pages."""
    request.current_app = admin.site.name
    view = PasswordChangeView.as_view(
        form_class=OwnPasswordChangeForm,
        success_url=reverse("admin:password_change_done", current_app=admin.site.name),
        extra_context=admin.site.each_context(request),
    )
    return refused_while_unavailable(request, view)


class AdminLoginForm(admin_forms.AdminAuthenticationForm):
    """The admin's login under the API's login limits, on the same budgets (the keys of
    `user_login`): every attempt counts against its address, a wrong password against its
    account, and past either limit the password is not checked at all."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        name = normalize_username(username)[:150]
        try:
            attempt = login_limits_enforce(name=name, client_ip=client_ip(self.request))
        except ApiError as error:
            raise ValidationError(str(error.detail), code="rate_limited") from None
        self.user_cache = authenticate(self.request, username=name, password=password)
        if self.user_cache is None:  # the attempt stays counted: a failure
            raise self.get_invalid_login_error()
        rate_limit_release(attempt)
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


admin.site.login_form = AdminLoginForm


def _username_not_reserved(form) -> str:
    """A new or changed username may not be one the API refuses (`me`, `admin`, `ann.`...): a
    name kept as it is stays (the demo's `admin` was made before the rule)."""
    name = form.cleaned_data["username"]
    unchanged = form.instance.pk is not None and name == form.instance.username
    if unchanged:
        return name
    if name in RESERVED_USERNAMES:
        raise ValidationError("That username is reserved.", code="reserved")
    if USERNAME_DOTS_RE.search(name):
        raise ValidationError(USERNAME_DOTS_MESSAGE, code="dots")
    return name


class UserAddForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("username",)
        field_classes = {"username": UsernameField}

    def clean_username(self):
        super().clean_username()
        return _username_not_reserved(self)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {"username": UsernameField}

    def clean_username(self):
        return _username_not_reserved(self)


@admin.register(User)
class UserAdmin(RefusedWhileUnavailable, DjangoUserAdmin):
    """Accounts are deactivated, never deleted here: a deleted row would leave its edges,
    counts and posts on every shard (there is no account deletion flow)."""

    change_password_form = PasswordSetForm
    add_form = UserAddForm
    form = UserEditForm
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

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A change saved here may make the account private: it commits under the lock that
        approvals of pending requests take (`switch_to_private_lock`)."""
        user_id = parse_id_text(object_id) if request.method == "POST" and object_id else None
        if user_id is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with switch_to_private_lock(user_id):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def user_change_password(self, request, *args, **kwargs):
        return self.refused_while_unavailable(
            request, super().user_change_password, *args, **kwargs
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:  # on the user's shard, as sign-up makes it
            after_commit(lambda: user_counters_ensure(user_id=obj.pk), using="default")
        user_cards_forget(user_ids=[obj.pk])
        if obj.is_active:
            user_tokens_forget(user_ids=[obj.pk])
        else:
            user_tokens_mark_revoked(user_ids=[obj.pk])
        if change and not obj.is_private:
            # Going public approves every pending request, as profile_update does: on the
            # shards (a net now, in case the process dies once the row commits, and at once
            # after it), and on any save of a public account, so saving it again finishes
            # what an earlier save left.
            follow_requests_approve_all_later(target_id=obj.pk, net=True)
            after_commit(
                lambda: follow_requests_approve_all_later(target_id=obj.pk), using="default"
            )

    def has_delete_permission(self, request, obj=None):
        return False

    def _update(self, queryset, **fields) -> None:
        user_ids = list(queryset.values_list("pk", flat=True))
        queryset.update(**fields)
        user_cards_forget(user_ids=user_ids)

    @admin.action(description="Mark as verified", permissions=["change"])
    def verify(self, request, queryset):
        self._update(queryset, is_verified=True)

    @admin.action(description="Remove verification", permissions=["change"])
    def unverify(self, request, queryset):
        self._update(queryset, is_verified=False)

    @admin.action(description="Deactivate (and revoke their tokens)", permissions=["change"])
    def deactivate(self, request, queryset):
        # The rows first, in one transaction with the tokens' deletion: a login racing it
        # either waits for the commit and is refused, or commits first and its token goes too.
        user_ids = list(queryset.values_list("pk", flat=True))
        with transaction.atomic(using="default"):
            User.objects.filter(pk__in=user_ids).update(is_active=False)
            user_tokens_delete(user_ids=user_ids)
        user_cards_forget(user_ids=user_ids)

    @admin.action(description="Reactivate", permissions=["change"])
    def reactivate(self, request, queryset):
        # Read first: on a list filtered to inactive accounts, the queryset is empty after.
        user_ids = list(queryset.values_list("pk", flat=True))
        self._update(queryset, is_active=True)
        user_tokens_forget(user_ids=user_ids)


class GraphRowAdmin(ShardedModelAdmin):
    """Graph rows are for looking at: a row edited here would skip the services that keep both
    copies, the counts, fan-out and blocks in step, so graph changes go through the API or the
    services (no sharded admin adds or deletes rows either)."""

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Following)
class FollowingAdmin(GraphRowAdmin):
    list_display = ("id", "follower_id", "followee_id", "created_at")
    search_fields = ("=follower_id", "=followee_id")


@admin.register(Follower)
class FollowerAdmin(GraphRowAdmin):
    list_display = ("id", "followee_id", "follower_id", "created_at")
    search_fields = ("=followee_id", "=follower_id")


@admin.register(FollowRequest)
class FollowRequestAdmin(GraphRowAdmin):
    list_display = ("id", "target_id", "requester_id", "created_at")
    search_fields = ("=target_id", "=requester_id")


@admin.register(Block)
class BlockAdmin(GraphRowAdmin):
    list_display = ("id", "blocker_id", "blocked_id", "created_at")
    search_fields = ("=blocker_id", "=blocked_id")


@admin.register(CloseFriend)
class CloseFriendAdmin(GraphRowAdmin):
    list_display = ("id", "owner_id", "friend_id", "created_at")
