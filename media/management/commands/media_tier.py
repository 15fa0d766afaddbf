"""`manage.py media_tier`: move media between hot, warm and cold storage now."""

from django.core.management.base import BaseCommand

from instagram.commands import stopped_cleanly_if_a_database_is_down
from media.services import media_tier_apply


class Command(BaseCommand):
    help = "Apply MEDIA_TIER_POLICY: fold access counts, move uploads between hot/warm/cold."

    def handle(self, *args, **options):
        with stopped_cleanly_if_a_database_is_down():
            moved = media_tier_apply()
        self.stdout.write(" ".join(f"{tier}={count}" for tier, count in moved.items()) + "\n")
