from django.db import models
from django.utils import timezone

from instagram.ids import ShardedIDField
from instagram.sharding import ShardedModel


class OutboxStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


class OutboxEvent(ShardedModel):
    """The other half of a cross-shard write, committed with the primary row on its shard."""

    partition_key = "partition_id"

    id = ShardedIDField()
    # The partition key of the primary write; the event lives on (and takes its ID from) its shard.
    partition_id = models.BigIntegerField()
    kind = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=2000, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"],
                name="outbox_pending_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["processed_at"],
                name="outbox_done_at",
                condition=models.Q(status="done"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.id} ({self.status})"


class ShardMapRecord(models.Model):
    """The shard map the shards' rows were placed by (on `default`; the latest row counts). A
    configuration that maps any logical shard elsewhere is refused, by `migrate_all` and by
    every process at its first routing, until the rows are moved and the new map is recorded
    (`manage.py shard_map --record`)."""

    spec = models.TextField()
    recorded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.spec
