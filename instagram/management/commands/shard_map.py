from django.core.management.base import BaseCommand, CommandError

from instagram.models import ShardMapRecord
from instagram.sharding import (
    GLOBAL_ALIAS,
    ShardMap,
    configured_shard_map,
    shard_map_recorded,
)


class Command(BaseCommand):
    help = (
        "Show the shard map the rows were placed by (recorded at the first migrate_all) and the "
        "one this configuration describes; with --record, record the configured one, once the "
        "rows of every range that moved are on their new database (and gone from the old)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--record", action="store_true", help="record the configured map as the current one"
        )

    def handle(self, *args, record: bool = False, **options):
        recorded, configured = shard_map_recorded(), configured_shard_map().spec()
        self.stdout.write(f"recorded:   {recorded or '(none yet: migrate_all records it)'}")
        self.stdout.write(f"configured: {configured}")
        if recorded is not None:
            recorded = ShardMap.parse(recorded).spec()  # as the configured one is written
        if not record:
            if recorded is not None and recorded != configured:
                raise CommandError("The configured shard map differs from the recorded one.")
            return
        if recorded is None:
            raise CommandError("Nothing is recorded yet: run migrate_all first.")
        if recorded == configured:
            self.stdout.write("Already recorded.")
            return
        ShardMapRecord.objects.using(GLOBAL_ALIAS).create(spec=configured)
        self.stdout.write(self.style.SUCCESS(f"Recorded the shard map {configured}"))
