from django.contrib import admin
from django.utils import timezone

from instagram.admin import ShardedModelAdmin
from posts.models import Comment, Hashtag, Location, Post
from posts.services.locations import location_posts_touch
from posts.services.posts import post_restore


@admin.register(Post)
class PostAdmin(ShardedModelAdmin):
    list_display = ("id", "author_id", "short_caption", "like_count", "comment_count",
                    "published_at", "deleted_at")  # fmt: skip
    search_fields = ("=id", "=author_id", "caption")
    readonly_fields = ("id", "author_id", "hashtags", "mentions", "like_count", "comment_count",
                       "created_at", "published_at", "deleted_at", "media_items")  # fmt: skip
    fields = ("caption", "location_id", *readonly_fields)
    actions = ["soft_delete", "restore"]

    def save_model(self, request, obj, form, change):
        obj.updated_at = timezone.now()  # a new version: cached bodies of the old one are stale
        super().save_model(request, obj, form, change)

    @admin.display(description="caption")
    def short_caption(self, obj):
        return obj.caption[:60]

    @admin.display(description="media")
    def media_items(self, obj):
        from posts.models import PostMedia

        rows = PostMedia.objects.using(obj._state.db).filter(post_id=obj.id).order_by("position")
        return ", ".join(str(row.media_id) for row in rows)

    @admin.action(description="Soft-delete (hide everywhere)")
    def soft_delete(self, request, queryset):
        from accounts.models import User
        from posts.services.posts import post_delete

        for post in queryset.filter(deleted_at__isnull=True):
            post_delete(author=User(id=post.author_id), post_id=post.id)
        self.message_user(request, "Deleted.")

    @admin.action(description="Restore deleted posts")
    def restore(self, request, queryset):
        restored = sum(post_restore(post_id=post.id) for post in queryset)
        self.message_user(request, f"Restored {restored} posts at {timezone.now():%H:%M}.")


@admin.register(Comment)
class CommentAdmin(ShardedModelAdmin):
    list_display = ("id", "post_id", "author_id", "text", "like_count", "deleted_at")
    search_fields = ("=post_id", "=author_id", "text")


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
