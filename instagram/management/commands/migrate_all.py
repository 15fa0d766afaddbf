import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


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
        self.stdout.write(self.style.SUCCESS(f"Migrated {len(settings.DATABASES)} databases"))
