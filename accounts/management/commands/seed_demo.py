"""Demo data for `make run`: people with avatars, a follow graph, a private account, a celebrity
with thousands of fans, and posts of generated photos with likes and comments.

Every write goes through the real services (the media pipeline renders every variant, posts
are rate limited and published, likes and comments check visibility), so the demo shows what
the product does. One `random.Random` draws everything: the same seed gives the same data.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.commands._demo_images import avatar_png, photo_jpeg
from accounts.models import User
from accounts.services.auth import user_counters_ensure
from accounts.services.graph import graph_bulk_import
from accounts.services.profile import profile_picture_set
from instagram.devstack import DEMO_ADMIN
from instagram.models import OutboxEvent, OutboxStatus
from instagram.outbox import outbox_sweep
from instagram.sharding import shard_aliases
from media.filters import FILTERS
from media.models import MediaKind, MediaStatus
from media.services.processing import media_process
from media.services.upload import media_create_from_upload
from posts.services.comments import comment_create
from posts.services.likes import post_like
from posts.services.locations import location_create
from posts.services.posts import post_create

DEMO_PASSWORD = "instagram-demo"  # noqa: S105  (documented demo credentials)
FIRST = ["alex", "sam", "maria", "li", "noor", "kofi", "yuki", "ines", "omar", "zoe", "ravi",
         "lena", "tom", "ana", "jon", "mia", "eli", "sara", "ben", "ava", "leo", "isla", "kai",
         "nina", "dev"]  # fmt: skip
LAST = ["rivera", "chen", "okafor", "novak", "silva", "haddad", "kim", "berg", "santos", "moreau"]
FANS = 2000
PEOPLE = 50
POSTERS = 30  # people (of the 50) who post; the private account is always one of them
CELEBRITY_POSTS = 5
FILTER_IDS = sorted(FILTERS)
SHAPES = ["landscape"] * 9 + ["square"] * 6 + ["portrait"] * 5


@dataclass(frozen=True)
class Theme:
    scene: str  # a scene of `_demo_images.SCENES`
    captions: tuple[str, ...]
    hashtags: tuple[str, ...]
    alt_text: tuple[str, ...]
    places: tuple[tuple[str, float, float], ...]


THEMES = [
    Theme(
        "sunset",
        ("Golden hour never gets old", "Chasing the last light", "Evenings like this",
         "The sky put on a show tonight", "Worth the hike up for this view"),
        ("sunset", "goldenhour", "travel", "skylovers", "nofilter", "evening"),
        ("Orange sun setting behind layered purple hills.",
         "Sun low over dark hills under a pink and violet sky."),
        (("Santorini, Greece", 36.4618, 25.3753), ("Big Sur, California", 36.2704, -121.8081),
         ("Lisbon, Portugal", 38.7223, -9.1393)),
    ),
    Theme(
        "mountains",
        ("Up where the air is thin", "Snow on the peaks already", "Trail day",
         "Mountains are calling", "Weekend reset in the hills"),
        ("mountains", "hiking", "travel", "outdoors", "wanderlust", "nature"),
        ("Snow-capped peaks above a green meadow under a blue sky.",
         "Grey mountains with white summits behind rolling grass."),
        (("Banff National Park", 51.4968, -115.9281), ("Reykjavik, Iceland", 64.1466, -21.9426),
         ("Table Mountain, Cape Town", -33.9628, 18.4098)),
    ),
    Theme(
        "beach",
        ("Salt in the air, sand everywhere", "Ocean therapy", "Found our spot for the day",
         "Sea you soon", "Low tide, high spirits"),
        ("beach", "ocean", "summer", "travel", "vacation", "seaside"),
        ("A sandy beach with a parasol and a turquoise sea.",
         "Calm turquoise water meeting a pale sandy shore."),
        (("Bondi Beach, Sydney", -33.8915, 151.2767),
         ("Praia da Marinha, Algarve", 37.0902, -8.4125),
         ("Santorini, Greece", 36.4618, 25.3753)),
    ),
    Theme(
        "food",
        ("Sunday brunch done right", "Made this from scratch", "Best meal of the trip",
         "Coffee first, then everything else", "Cooked for friends tonight"),
        ("food", "foodie", "brunch", "homecooking", "yum", "coffee"),
        ("A white plate of colourful food on a wooden table.",
         "Top-down view of a plated meal and a cup of coffee on wood."),
        (("Cafe Central, Vienna", 48.2104, 16.3655),
         ("Jemaa el-Fnaa, Marrakesh", 31.6258, -7.9891),
         ("Nishiki Market, Kyoto", 35.0050, 135.7649)),
    ),
    Theme(
        "city",
        ("City lights", "This skyline at night", "Lost in the city again",
         "Rooftop views", "Night walk through downtown"),
        ("city", "citylights", "nightphotography", "urban", "travel", "architecture"),
        ("Tall buildings with lit windows under a purple night sky and the moon.",
         "A night skyline of dark towers dotted with warm windows."),
        (("Brooklyn Bridge, New York", 40.7061, -73.9969), ("Tokyo Tower", 35.6586, 139.7454),
         ("Lisbon, Portugal", 38.7223, -9.1393)),
    ),
]  # fmt: skip
COMMENTS = ["Stunning!", "Wow, the colours", "Where is this?", "Need to go here", "Love this",
            "Take me with you next time", "This is unreal", "So good", "Frame this one",
            "Goals", "Jealous!", "Beautiful shot", "Okay this is my new wallpaper",
            "Miss this place", "How do you always find these spots?"]  # fmt: skip
REPLIES = ["thank you!", "you have to come next time", "it was even better in person",
           "haha right?", "I'll send you the details", "thanks, it was a good day"]  # fmt: skip
FAN_COMMENTS = ["Love you!!", "Queen", "Legend", "Best account here", "Hi from Brazil!",
                "Notice me please", "Iconic"]  # fmt: skip


@dataclass
class Totals:
    posts: int = 0
    photos: int = 0
    carousels: int = 0
    likes: int = 0
    comments: int = 0


class Command(BaseCommand):
    help = "Create the demo data once; running it again changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("--fans", type=int, default=FANS, help="followers of the celebrity")
        parser.add_argument(
            "--posters", type=int, default=POSTERS, help="people (of the 50) who post"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="seed even with DEBUG off (the demo accounts, a superuser included, share one "
            "published password)",
        )

    def handle(
        self, *args, fans: int = FANS, posters: int = POSTERS, force: bool = False, **options
    ):
        if not (settings.DEBUG or force):
            raise CommandError(
                "DEBUG is off: the demo data includes a superuser with a published password. "
                "Seed a production database only on purpose, with --force."
            )
        if fans < 0 or not 0 <= posters <= PEOPLE:
            raise CommandError(f"--fans is 0 or more; --posters is 0 to {PEOPLE}.")
        admin_name, admin_password = DEMO_ADMIN
        rng = random.Random(20260101)  # noqa: S311  (repeatable demo data, not secrets)
        names = [f"{first}.{last}" for first, last in _people_names(rng)]
        if User.objects.filter(username="celebrity").exists():
            # The admin is made last: without it, an earlier seed stopped part-way (a Ctrl-C
            # during the first `make run`), and seeding again would meet its rows.
            if User.objects.filter(username=admin_name).exists():
                self.stdout.write("Demo data already present")
                return
            raise CommandError(INCOMPLETE)
        if User.objects.filter(username__in=names).exists():
            raise CommandError(INCOMPLETE)
        rng = random.Random(20260101)  # noqa: S311  (the same draws again, from the start)

        # One hash for the one documented password: Argon2 costs ~0.2 s a call, and 51 calls
        # were a third of the seed.
        demo_hash = make_password(DEMO_PASSWORD)
        people = []
        for first, last in _people_names(rng):
            user = User.objects.create(
                username=f"{first}.{last}",
                password=demo_hash,
                full_name=f"{first.title()} {last.title()}",
                bio=rng.choice(["Coffee and cameras.", "Trail runner.", "Home cook.", "", ""]),
            )
            user_counters_ensure(user_id=user.id)
            people.append(user)
        private = people[0]
        User.objects.filter(pk=private.pk).update(is_private=True, bio="Friends only.")
        private.is_private = True
        with transaction.atomic():
            celebrity = User.objects.create(
                username="celebrity",
                password=demo_hash,
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

        community = [*people, celebrity]
        for user in community:
            initials = "".join(part[0] for part in user.full_name.split()[:2]).upper()
            upload = SimpleUploadedFile(
                "avatar.png", avatar_png(rng, initials), content_type="image/png"
            )
            profile_picture_set(user=user, file=upload)

        totals = Totals()
        seeder = _Seeder(
            rng=rng, community=community, celebrity=celebrity, fans=fan_users, follows=edges
        )
        authors = [private, *rng.sample(people[1:], max(0, min(posters, len(people)) - 1))]
        plan = [(a, rng.randint(2, 4)) for a in authors] + [(celebrity, CELEBRITY_POSTS)]
        # Every post is made now: stay under the daily limit of each author.
        plan = [(author, min(count, settings.POSTS_PER_DAY - 1)) for author, count in plan]
        queue = [author for author, count in plan for _ in range(count)]
        rng.shuffle(queue)  # interleaved authors, as a real home feed
        posts = [(author, seeder.post(author, totals)) for author in queue]
        for author, post_id in posts:
            seeder.engage(author, post_id, totals)

        # Likes relay their cross-shard half after commit (Celery); apply it here so the demo
        # is consistent even before a worker starts. Later relays of the same events are no-ops.
        while outbox_sweep(now=timezone.now() + timedelta(hours=1)):
            pass
        unapplied = sum(
            OutboxEvent.objects.using(alias).exclude(status=OutboxStatus.DONE).count()
            for alias in shard_aliases()
        )
        if unapplied:
            self.stderr.write(f"{unapplied} outbox events not applied: see `outbox stats`")
        if not User.objects.filter(username=admin_name).exists():  # last: the seed is complete
            User.objects.create_superuser(admin_name, "admin@example.com", admin_password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {len(people)} people, {fans} fans of 'celebrity', "
                f"private account '{private.username}', {len(edges)} follows, "
                f"{totals.posts} posts ({totals.photos} photos, {totals.carousels} carousels), "
                f"{totals.likes} likes, {totals.comments} comments; "
                f"every demo password is {DEMO_PASSWORD!r}"
            )
        )


INCOMPLETE = (
    "The demo data is incomplete: an earlier seed stopped part-way. With the embedded services "
    "(no DATABASE_URL), `make clean-var` and then `make run` start afresh; otherwise reset the "
    "databases, or go on without the demo data."
)


def _people_names(rng: random.Random) -> list[tuple[str, str]]:
    """The 50 demo people's first and last names: the seed's first draws."""
    return rng.sample([(f, s) for f in FIRST for s in LAST], PEOPLE)


class _Seeder:
    """Posts and engagement through the services, by people allowed to see each post."""

    def __init__(
        self,
        *,
        rng: random.Random,
        community: list[User],
        celebrity: User,
        fans: list[User],
        follows: set[tuple[int, int]],
    ):
        self.rng = rng
        self.community = community
        self.celebrity = celebrity
        self.fans = fans
        self.fan_ids = {fan.pk for fan in fans}
        self.follows = follows
        self.places: dict[str, int] = {}

    def _place_id(self, name: str, lat: float, lng: float) -> int:
        if name not in self.places:
            self.places[name] = location_create(name=name, lat=lat, lng=lng).location.id
        return self.places[name]

    def _upload(self, author: User, scene: str, shape: str) -> int:
        upload = SimpleUploadedFile(
            "photo.jpg", photo_jpeg(self.rng, scene, shape), content_type="image/jpeg"
        )
        media = media_create_from_upload(
            uploader_id=author.id,
            file=upload,
            kind=MediaKind.POST,
            filter_id=self.rng.choice(FILTER_IDS),
        )
        # Rendered here rather than by a worker; the task queued after commit then finds it
        # ready and does nothing.
        media = media_process(media_id=media.id) or media
        if media.status != MediaStatus.READY:
            raise CommandError(f"demo photo {media.id} was not rendered: {media.failure_reason}")
        return media.id

    def post(self, author: User, totals: Totals) -> int:
        rng = self.rng
        theme = rng.choice(THEMES)
        count = rng.randint(2, 4) if rng.random() < 0.3 else 1
        shape = rng.choice(SHAPES)
        media_ids = [self._upload(author, theme.scene, shape) for _ in range(count)]
        caption, tagged = rng.choice(theme.captions), []
        if rng.random() < 0.45:
            friend = rng.choice([u for u in self.community if u.pk != author.pk])
            caption += f" with @{friend.username}"
            if rng.random() < 0.5:
                tagged = [friend.id]
        tags = rng.sample(theme.hashtags, rng.randint(2, 4))
        caption += " " + " ".join(f"#{tag}" for tag in tags)
        location_id = None
        if rng.random() < 0.5:
            location_id = self._place_id(*rng.choice(theme.places))
        post = post_create(
            author=author,
            media_ids=media_ids,
            caption=caption,
            alt_text=[rng.choice(theme.alt_text) for _ in media_ids],
            tagged_user_ids=tagged,
            location_id=location_id,
        )
        totals.posts += 1
        totals.photos += count
        totals.carousels += count > 1
        return post.id

    def _audience(self, author: User) -> list[User]:
        """Demo people who may see the author's posts: followers only for a private account."""
        others = [u for u in self.community if u.pk != author.pk]
        if author.is_private:
            return [u for u in others if (u.pk, author.pk) in self.follows]
        return others

    def engage(self, author: User, post_id: int, totals: Totals) -> None:
        rng = self.rng
        audience = self._audience(author)
        likers = rng.sample(audience, min(len(audience), rng.randint(3, 16)))
        commenters = [rng.choice(audience) for _ in range(rng.randint(0, 4))] if audience else []
        if author.pk == self.celebrity.pk:
            fans = rng.sample(self.fans, min(len(self.fans), rng.randint(40, 80)))
            likers += fans
            commenters += [rng.choice(fans) for _ in range(rng.randint(2, 5)) if fans]
        for user in likers:
            post_like(user=user, post_id=post_id)
            totals.likes += 1
        for user in commenters:
            text = rng.choice(FAN_COMMENTS if user.pk in self.fan_ids else COMMENTS)
            comment = comment_create(author=user, post_id=post_id, text=text)
            totals.comments += 1
            if rng.random() < 0.35:
                friends = [u for u in audience if u.pk != user.pk]
                replier = author if rng.random() < 0.7 or not friends else rng.choice(friends)
                reply = f"@{user.username} {rng.choice(REPLIES)}"
                comment_create(author=replier, post_id=post_id, text=reply, parent_id=comment.id)
                totals.comments += 1
