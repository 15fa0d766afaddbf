from django.db import models

from instagram.ids import ShardedIDField
from instagram.sharding import ShardedModel


class Note(ShardedModel):
    partition_key = "owner_id"

    id = ShardedIDField()
    owner_id = models.BigIntegerField()
    text = models.CharField(max_length=200)


class NoteCopy(ShardedModel):
    """The other side of a shared note, on the reader's shard."""

    partition_key = "reader_id"

    id = ShardedIDField()
    reader_id = models.BigIntegerField()
    note_id = models.BigIntegerField()
    text = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reader_id", "note_id"], name="notecopy_once"),
        ]


class HandlerSwitch(models.Model):
    """Global flag the test handler reads to fail on demand (a dependency that is down)."""

    name = models.CharField(max_length=50, unique=True)
    failures_left = models.IntegerField(default=0)
