import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from instagram.models import ShardMapRecord
from instagram.sharding import (
    GLOBAL_ALIAS,
    ShardMapChanged,
    configured_shard_map,
    shard_map_misplaced,
    shard_map_recorded,
    shard_map_verify,
)


def ensure_database(alias: str) -> bool:
    """Create the database of `alias` on its server if it is missing; True if created."""
    params = connections[alias].get_connection_params()
    name = params.pop("dbname")
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


class Command(BaseCommand):
    help = "Create any missing database, then migrate the global database and every shard."

    def add_arguments(self, parser):
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args, interactive: bool = True, **options):
        for alias in settings.DATABASES:
            if ensure_database(alias):
                self.stdout.write(f"Created database for {alias}")
            self.stdout.write(f"Migrating {alias}")
            call_command(
                "migrate",
                database=alias,
                interactive=interactive,
                verbosity=max(options["verbosity"] - 1, 0),
            )
        self._shard_map_pin()  # once every database exists and has its tables
        self.stdout.write(self.style.SUCCESS(f"Migrated {len(settings.DATABASES)} databases"))

    def _shard_map_pin(self) -> None:
        """Record the shard map on the first run; refuse any later run under another one."""
        current = configured_shard_map()
        if shard_map_recorded() is None:
            misplaced = shard_map_misplaced(current)
            if misplaced:  # an upgrade whose shard configuration changed first
                found = ", ".join(f"{alias}: {count}" for alias, count in misplaced.items())
                raise CommandError(
                    f"The shard databases hold rows that the configured shard map "
                    f"{current.spec()!r} routes elsewhere ({found}, at least). Configure the "
                    "map they were placed by (SHARD_MAP, or the shard URLs and SHARD_COUNT they "
                    "had), run migrate_all again, and move ranges after that."
                )
            ShardMapRecord.objects.using(GLOBAL_ALIAS).create(spec=current.spec())
            self.stdout.write(f"Recorded the shard map {current.spec()}")
            return
        try:
            shard_map_verify(current)
        except ShardMapChanged as changed:
            raise CommandError(str(changed)) from None
