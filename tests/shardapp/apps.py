from django.apps import AppConfig


class ShardAppConfig(AppConfig):
    """A sharded fixture app: proves routing, IDs and the outbox without a product model."""

    name = "tests.shardapp"
    label = "shardapp"

    def ready(self) -> None:
        from tests.shardapp import handlers  # noqa: F401  (registers outbox handlers)
