from django.core.management.base import BaseCommand

from accounts.models import User
from instagram.devstack import DEMO_ADMIN


class Command(BaseCommand):
    help = "Create the demo data once (an admin account); running it again changes nothing."

    def handle(self, *args, **options):
        username, password = DEMO_ADMIN
        if User.objects.filter(username=username).exists():
            self.stdout.write("Demo data already present")
            return
        User.objects.create_superuser(
            username=username, email="admin@example.com", password=password
        )
        self.stdout.write(self.style.SUCCESS(f"Created demo admin {username!r}"))
