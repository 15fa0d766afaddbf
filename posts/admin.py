from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from accounts.models import User
from instagram.admin import ShardedModelAdmin
from instagram.errors import ApiError
from posts.models import Comment, Hashtag, Location, Post
from posts.services.comments import comment_remove
from posts.services.locations import location_posts_touch
from posts.services.posts import caption_parse, post_location_set, post_restore, post_update


class PostAdminForm(forms.ModelForm):
    """A caption and a location checked as the API checks them."""

    class Meta:
        model = Post
        fields = ("caption", "location_id")

    def clean(self):
        cleaned = super().clean()
        if self.instance.deleted_at is not None:
            raise forms.ValidationError("Restore the post before editing it.")
        return cleaned

    def clean_caption(self):
        caption = self.cleaned_data["caption"] or ""
        if "caption" in self.changed_data:
            try:
                caption_parse(author=User(id=self.instance.author_id), caption=caption)
            except ApiError as error:
                raise forms.ValidationError(str(error.detail)) from error
        return caption

    def clean_location_id(self):
        location_id = self.cleaned_data["location_id"]
        if location_id is not None and not Location.objects.filter(pk=location_id).exists():
            raise forms.ValidationError("Unknown location.")
        return location_id


@admin.register(Post)
class PostAdmin(ShardedModelAdmin):
    form = PostAdminForm
    list_display = ("id", "author_id", "short_caption", "like_count", "comment_count",
                    "published_at", "deleted_at")  # fmt: skip
    search_fields = ("=id", "=author_id", "caption")
    readonly_fields = ("id", "author_id", "hashtags", "mentions", "like_count", "comment_count",
                       "created_at", "published_at", "deleted_at", "media_items")  # fmt: skip
    fields = ("caption", "location_id", *readonly_fields)
    actions = ["soft_delete", "restore"]

    def save_model(self, request, obj, form, change):
        """Through the services, which lock the row, re-index hashtags and mentions, make a new
        version and never revive a post deleted meanwhile; never a save of the whole row (its
        counts were read with the form)."""
        caption_saved = False
        try:
            if "caption" in form.changed_data:
                post_update(author=User(id=obj.author_id), post_id=obj.id, caption=obj.caption)
                caption_saved = True
            if "location_id" in form.changed_data and not post_location_set(
                post_id=obj.id, location_id=obj.location_id
            ):
                raise ApiError(404, "not_found", "Post not found.")
        except ApiError as error:  # deleted meanwhile, or a mention that became impossible
            request.post_not_saved = True  # no "changed successfully"
            if caption_saved:  # committed: the history says so, and only that
                form.changed_data.remove("location_id")
                request.post_caption_saved = True
                message = f"The caption was saved, the location was not: {error.detail}"
            else:
                message = f"Not saved: {error.detail}"
            self.message_user(request, message, messages.ERROR)

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if level == messages.SUCCESS and getattr(request, "post_not_saved", False):
            return  # not "changed successfully" after "Not saved"
        super().message_user(request, message, level, *args, **kwargs)

    def log_change(self, request, obj, message):
        if getattr(request, "post_not_saved", False) and not getattr(
            request, "post_caption_saved", False
        ):
            return None  # nothing changed: no entry in the history saying it did
        return super().log_change(request, obj, message)

    @admin.display(description="caption")
    def short_caption(self, obj):
        return obj.caption[:60]

    @admin.display(description="media")
    def media_items(self, obj):
        from posts.models import PostMedia

        rows = PostMedia.objects.using(obj._state.db).filter(post_id=obj.id).order_by("position")
        return ", ".join(str(row.media_id) for row in rows)

    @admin.action(description="Soft-delete (hide everywhere)", permissions=["change"])
    def soft_delete(self, request, queryset):
        from accounts.models import User
        from posts.services.posts import post_delete

        for post in queryset.filter(deleted_at__isnull=True):
            post_delete(author=User(id=post.author_id), post_id=post.id)
        self.message_user(request, "Deleted.")

    @admin.action(description="Restore deleted posts", permissions=["change"])
    def restore(self, request, queryset):
        restored = sum(post_restore(post_id=post.id) for post in queryset)
        self.message_user(request, f"Restored {restored} posts at {timezone.now():%H:%M}.")


@admin.register(Comment)
class CommentAdmin(ShardedModelAdmin):
    """Comments are looked at and soft-deleted here, never edited: a row saved from a form
    would overwrite the counts and the deletion committed since the form was read."""

    list_display = ("id", "post_id", "author_id", "text", "like_count", "deleted_at")
    search_fields = ("=post_id", "=author_id", "text")
    actions = ["soft_delete"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_moderate_permission(self, request):
        return request.user.has_perm("posts.change_comment")

    @admin.action(description="Soft-delete (with their replies)", permissions=["moderate"])
    def soft_delete(self, request, queryset):
        deleted = sum(comment_remove(comment_id=comment.id) for comment in queryset)
        self.message_user(request, f"Deleted {deleted} comments.")


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("name", "lat", "lng")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            location_posts_touch(location_id=obj.pk)

    def delete_model(self, request, obj):
        location_id = obj.pk
        super().delete_model(request, obj)
        location_posts_touch(location_id=location_id)

    def delete_queryset(self, request, queryset):
        location_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        for location_id in location_ids:
            location_posts_touch(location_id=location_id)


@admin.register(Hashtag)
class HashtagAdmin(admin.ModelAdmin):
    search_fields = ("name",)
