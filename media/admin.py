"""Read-only admin views of uploads and near-duplicate pairs (sharded: one shard at a time)."""

from django.contrib import admin

from instagram.sharding import alias_for_id, shard_aliases
from media.models import Media, MediaNearDuplicate
from media.selectors import parse_media_id


class _ShardAdmin(admin.ModelAdmin):
    """The list shows one shard (`?shard=shard_1`, default the first); a row opens on its own."""

    def changelist_view(self, request, extra_context=None):
        request.GET = request.GET.copy()
        alias = request.GET.pop("shard", [""])[0]
        request.media_shard = alias if alias in shard_aliases() else shard_aliases()[0]
        extra_context = {
            **(extra_context or {}),
            "title": f"{self.opts.verbose_name_plural} on {request.media_shard}",
        }
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        alias = getattr(request, "media_shard", None) or shard_aliases()[0]
        return super().get_queryset(request).using(alias)

    def get_object(self, request, object_id, from_field=None):
        parsed = parse_media_id(object_id)
        if parsed is None:
            return None
        return self.model.objects.using(alias_for_id(parsed)).filter(pk=parsed).first()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Media)
class MediaAdmin(_ShardAdmin):
    list_display = ["id", "uploader_id", "kind", "status", "filter_id", "tier", "created_at"]
    list_filter = ["status", "kind", "tier"]
    search_fields = ["=uploader_id", "=sha256"]


@admin.register(MediaNearDuplicate)
class MediaNearDuplicateAdmin(_ShardAdmin):
    list_display = ["media_id", "uploader_id", "other_media_id", "other_uploader_id", "distance"]
    search_fields = ["=media_id", "=other_media_id", "=uploader_id"]
