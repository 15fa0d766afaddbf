from django.core.management.base import BaseCommand

from accounts.services.graph import counters_recount


class Command(BaseCommand):
    help = (
        "Recompute every user's follower and following counts from the graph rows (a batch of "
        "users at a time; safe on a live system)."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"corrected the counts of {counters_recount()} users")
