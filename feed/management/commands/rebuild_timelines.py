from django.core.management.base import BaseCommand

from accounts.models import User
from feed.services import celebrities_rebuild, timeline_rebuild


class Command(BaseCommand):
    help = "Rebuild home timelines from PostgreSQL (all active users, or the ones named)."

    def add_arguments(self, parser):
        parser.add_argument("user_ids", nargs="*", type=int, help="users to rebuild (default all)")

    def handle(self, *args, user_ids: list[int], **options):
        celebrities = celebrities_rebuild()
        users = User.objects.filter(is_active=True)
        if user_ids:
            users = users.filter(pk__in=user_ids)
        count = 0
        for user_id in users.values_list("id", flat=True).iterator():
            timeline_rebuild(user_id=user_id)
            count += 1
        self.stdout.write(f"rebuilt {count} timelines and {celebrities} celebrity lists")
