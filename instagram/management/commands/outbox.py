from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils import timezone

from instagram.models import OutboxEvent, OutboxStatus
from instagram.outbox import ShardsUnavailable, outbox_sweep
from instagram.sharding import shard_aliases


class Command(BaseCommand):
    help = (
        "Outbox operations: `stats` per shard, `sweep` now, `retry-dead` to re-queue dead events."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["stats", "sweep", "retry-dead"])

    def handle(self, *args, action: str, **options):
        if action == "sweep":
            try:
                self.stdout.write(f"applied {outbox_sweep()} events")
            except ShardsUnavailable as exc:
                raise CommandError(f"every other shard was swept; unavailable: {exc}")
            return
        for alias in shard_aliases():
            events = OutboxEvent.objects.using(alias)
            if action == "retry-dead":
                count = events.filter(status=OutboxStatus.DEAD).update(
                    status=OutboxStatus.PENDING, attempts=0, available_at=timezone.now()
                )
                self.stdout.write(f"{alias}: re-queued {count} dead events")
            else:
                counts = dict(
                    events.values_list("status").annotate(n=Count("id")).values_list("status", "n")
                )
                line = " ".join(f"{status}={counts.get(status, 0)}" for status in OutboxStatus)
                self.stdout.write(f"{alias}: {line}")
