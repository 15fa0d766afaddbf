from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError
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
        unavailable = []
        for alias in shard_aliases():  # a shard that is down is reported, the others done
            try:
                self.stdout.write(f"{alias}: {self._on_shard(action, alias)}")
            except OperationalError as exc:
                unavailable.append(alias)
                self.stdout.write(f"{alias}: unavailable ({str(exc).strip()[:200]})")
        if unavailable:
            raise CommandError(f"unavailable: {', '.join(unavailable)}")

    @staticmethod
    def _on_shard(action: str, alias: str) -> str:
        events = OutboxEvent.objects.using(alias)
        if action == "retry-dead":
            count = events.filter(status=OutboxStatus.DEAD).update(
                status=OutboxStatus.PENDING, attempts=0, available_at=timezone.now()
            )
            return f"re-queued {count} dead events"
        counts = dict(
            events.values_list("status").annotate(n=Count("id")).values_list("status", "n")
        )
        return " ".join(f"{status}={counts.get(status, 0)}" for status in OutboxStatus)
