from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import pre_delete, pre_save


class InstagramConfig(AppConfig):
    name = "instagram"
    verbose_name = "Platform"

    def ready(self) -> None:
        from instagram import sharding

        if settings.SHARD_GUARD:
            pre_save.connect(sharding.check_row_alias, dispatch_uid="shard-guard-save")
            pre_delete.connect(sharding.check_row_alias, dispatch_uid="shard-guard-delete")
            connection_created.connect(
                sharding.install_statement_guard, dispatch_uid="shard-guard-sql"
            )
