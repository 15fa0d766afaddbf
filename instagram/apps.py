from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.signals import connection_created
from django.db.models.signals import pre_delete, pre_save


class InstagramConfig(AppConfig):
    name = "instagram"
    verbose_name = "Platform"

    def ready(self) -> None:
        from instagram import sharding

        try:  # a SHARD_MAP that cannot be read stops every process at start, not each request
            sharding.configured_shard_map()
        except ValueError as error:
            raise ImproperlyConfigured(f"SHARD_MAP: {error}") from None

        if settings.SHARD_GUARD:
            pre_save.connect(sharding.check_row_alias, dispatch_uid="shard-guard-save")
            pre_delete.connect(sharding.check_row_alias, dispatch_uid="shard-guard-delete")
            connection_created.connect(
                sharding.install_statement_guard, dispatch_uid="shard-guard-sql"
            )
