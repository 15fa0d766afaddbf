from django.core.management.base import BaseCommand

from accounts.services.graph import counters_recount
from instagram.commands import stopped_cleanly_if_a_database_is_down


class Command(BaseCommand):
    help = (
        "Recompute every user's follower and following counts from the graph rows (a batch of "
        "users at a time; safe on a live system)."
    )

    def handle(self, *args, **options):
        with stopped_cleanly_if_a_database_is_down():
            corrected = counters_recount()
        self.stdout.write(f"corrected the counts of {corrected} users")
