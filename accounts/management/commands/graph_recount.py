from django.core.management.base import BaseCommand

from accounts.services.graph import counters_recount


class Command(BaseCommand):
    help = "Recompute every user's follower and following counts from the graph rows."

    def handle(self, *args, **options):
        self.stdout.write(f"recounted {counters_recount()} users")
