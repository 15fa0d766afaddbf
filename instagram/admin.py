"""Django admin for sharded models: one shard at a time, chosen with a filter."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect

from instagram.errors import ApiError
from instagram.models import OutboxEvent, OutboxStatus
from instagram.sharding import alias_for_id, shard_aliases

UNAVAILABLE_MESSAGE = (
    "Sign-outs cannot be recorded while Redis is unreachable, so nothing was changed. "
    "Try again shortly."
)


def refused_while_unavailable(request, view, *args, **kwargs):
    """For admin views whose changes revoke tokens: a revocation that cannot be recorded in
    Redis refuses the change whole (503 in the API), and their transaction rolls back. Here the
    admin says so and sends the operator back to the page, instead of a server error."""
    try:
        return view(request, *args, **kwargs)
    except ApiError as error:
        if error.status_code != 503:
            raise
        messages.error(request, UNAVAILABLE_MESSAGE)
        return HttpResponseRedirect(request.path)


class RefusedWhileUnavailable(admin.ModelAdmin):
    """A model admin whose change, list and delete views are `refused_while_unavailable`."""

    def refused_while_unavailable(self, request, view, *args, **kwargs):
        return refused_while_unavailable(request, view, *args, **kwargs)

    def changeform_view(self, request, *args, **kwargs):
        view = super().changeform_view
        return self.refused_while_unavailable(request, view, *args, **kwargs)

    def changelist_view(self, request, *args, **kwargs):
        view = super().changelist_view
        return self.refused_while_unavailable(request, view, *args, **kwargs)

    def delete_view(self, request, *args, **kwargs):
        view = super().delete_view
        return self.refused_while_unavailable(request, view, *args, **kwargs)


class ShardFilter(admin.SimpleListFilter):
    title = "shard"
    parameter_name = "shard"

    def lookups(self, request, model_admin):
        return [(alias, alias) for alias in shard_aliases()]

    def value(self):
        return super().value() or shard_aliases()[0]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        return queryset  # the alias is applied in ShardedModelAdmin.get_queryset


class ShardedModelAdmin(admin.ModelAdmin):
    """Lists one shard (the `shard` filter); objects open, and are saved in a transaction, on
    the shard their ID names. Rows are made and hard-deleted only by the services (which keep
    counts, copies and caches in step), so this admin neither adds nor deletes."""

    list_filter = (ShardFilter,)
    shard_from_pk = True

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @staticmethod
    def _shard_of(object_id) -> str | None:
        try:
            return alias_for_id(int(object_id))
        except (TypeError, ValueError):  # not an ID
            return None

    # Django opens these views' transaction on the model's database, which a sharded model
    # does not have (the router refuses), before it checks permissions: open it on the object's
    # shard instead (the delete view then answers 403, as no sharded admin deletes).
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with transaction.atomic(using=self._shard_of(object_id) or shard_aliases()[0]):
            return self._changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with transaction.atomic(using=self._shard_of(object_id) or shard_aliases()[0]):
            return self._delete_view(request, object_id, extra_context)

    def get_queryset(self, request):
        alias = request.GET.get("shard")
        if alias not in shard_aliases():
            alias = shard_aliases()[0]
        return super().get_queryset(request).using(alias)

    def get_object(self, request, object_id, from_field=None):
        alias = self._shard_of(object_id)
        if alias is None:
            return None
        return self.model._default_manager.using(alias).filter(pk=object_id).first()

    def save_model(self, request, obj, form, change):
        # Only the fields the form changed: the rest of `obj` was read when the form was and
        # may be stale by now (a like, a reply or a delete committed meanwhile).
        if form.changed_data:
            obj.save(using=obj.shard_alias(), update_fields=form.changed_data)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ShardedModelAdmin):
    list_display = ("id", "kind", "status", "attempts", "available_at", "last_error")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    actions = ["requeue"]

    @admin.action(description="Re-queue the selected events", permissions=["change"])
    def requeue(self, request, queryset):
        from django.utils import timezone

        count = queryset.exclude(status=OutboxStatus.DONE).update(
            status=OutboxStatus.PENDING, attempts=0, available_at=timezone.now()
        )
        self.message_user(request, f"Re-queued {count} events.")
