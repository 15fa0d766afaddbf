"""Demo data for `make run`: people, a follow graph, a private account and a celebrity."""

import random

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services.auth import user_counters_ensure
from accounts.services.graph import graph_bulk_import
from instagram.devstack import DEMO_ADMIN

DEMO_PASSWORD = "instagram-demo"  # noqa: S105  (documented demo credentials)
FIRST = ["alex", "sam", "maria", "li", "noor", "kofi", "yuki", "ines", "omar", "zoe", "ravi",
         "lena", "tom", "ana", "jon", "mia", "eli", "sara", "ben", "ava", "leo", "isla", "kai",
         "nina", "dev"]  # fmt: skip
LAST = ["rivera", "chen", "okafor", "novak", "silva", "haddad", "kim", "berg", "santos", "moreau"]
FANS = 2000


class Command(BaseCommand):
    help = "Create the demo data once; running it again changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("--fans", type=int, default=FANS, help="followers of the celebrity")

    def handle(self, *args, fans: int = FANS, **options):
        if User.objects.filter(username="celebrity").exists():
            self.stdout.write("Demo data already present")
            return
        rng = random.Random(20260101)  # noqa: S311  (repeatable demo data, not secrets)
        admin_name, admin_password = DEMO_ADMIN
        if not User.objects.filter(username=admin_name).exists():
            User.objects.create_superuser(admin_name, "admin@example.com", admin_password)

        people = []
        for first, last in rng.sample([(f, s) for f in FIRST for s in LAST], 50):
            user = User.objects.create_user(
                username=f"{first}.{last}",
                password=DEMO_PASSWORD,
                full_name=f"{first.title()} {last.title()}",
                bio=rng.choice(["Coffee and cameras.", "Trail runner.", "Home cook.", "", ""]),
            )
            user_counters_ensure(user_id=user.id)
            people.append(user)
        private = people[0]
        User.objects.filter(pk=private.pk).update(is_private=True, bio="Friends only.")
        with transaction.atomic():
            celebrity = User.objects.create_user(
                username="celebrity",
                password=DEMO_PASSWORD,
                full_name="Famous Person",
                is_verified=True,
                bio="Official account.",
            )
            user_counters_ensure(user_id=celebrity.id)
        no_login = make_password(None)
        fan_users = User.objects.bulk_create(
            User(username=f"fan{n:05d}", full_name=f"Fan {n}", password=no_login)
            for n in range(fans)
        )

        edges = set()
        for user in people:
            for other in rng.sample(people, rng.randint(8, 20)):
                if other.pk != user.pk:
                    edges.add((user.pk, other.pk))
            edges.add((user.pk, celebrity.pk))
        edges.update((fan.pk, celebrity.pk) for fan in fan_users)
        edges.update((celebrity.pk, other.pk) for other in people[1:6])
        graph_bulk_import(edges=sorted(edges))
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {len(people)} people, {fans} fans of 'celebrity', "
                f"private account '{private.username}', {len(edges)} follows; "
                f"every demo password is {DEMO_PASSWORD!r}"
            )
        )
