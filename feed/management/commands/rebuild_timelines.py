"""Rebuild home timelines and the celebrity lists from PostgreSQL.

A timeline exists exactly while its owner is active (read the feed in the last FEED_ACTIVE_DAYS:
each read renews its life), and fan-out writes only the timelines that exist. So without users
named, only the timelines that exist are rebuilt, each keeping when it expires: the command
never makes an idle user active. A missing timeline (an idle user's, or every one after Redis
lost its data) is rebuilt by its owner's next feed read, as always.
"""

import argparse
from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from feed import timelines
from feed.services import celebrities_rebuild, timeline_rebuild
from instagram.commands import stopped_cleanly_if_a_database_is_down
from instagram.ids import parse_id_text
from instagram.redis import get_redis

BATCH = 1000


class Command(BaseCommand):
    help = (
        "Rebuild the celebrity lists and the home timelines from PostgreSQL: every timeline "
        "that exists (its owner read the feed in the last FEED_ACTIVE_DAYS), or the named "
        "users'. A rebuilt timeline keeps its expiry; a missing one is left to its owner's "
        "next feed read, unless its owner is named."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "user_ids",
            nargs="*",
            type=_user_id,
            help="users to rebuild, whether their timeline exists or not "
            "(default: every user whose timeline exists)",
        )

    def handle(self, *args, user_ids: list[int], **options):
        with stopped_cleanly_if_a_database_is_down():
            self._rebuild(user_ids)

    def _rebuild(self, user_ids: list[int]) -> None:
        users = User.objects.filter(is_active=True)
        if user_ids:
            users = users.filter(pk__in=user_ids)
            unknown = sorted(set(user_ids) - set(users.values_list("id", flat=True)))
            if unknown:
                raise CommandError(
                    f"No active user with ID {', '.join(map(str, unknown[:10]))}; nothing rebuilt."
                )
        celebrities = celebrities_rebuild()
        count = 0
        for batch in _batches(users.values_list("id", flat=True).iterator(chunk_size=BATCH)):
            expiries = _expiries(batch)
            for user_id in batch:
                expiry = expiries.get(user_id)
                if expiry is None and not user_ids:
                    continue  # idle: its owner's next read rebuilds it
                timeline_rebuild(user_id=user_id)
                if expiry is not None and expiry > 0:
                    # A rebuild gives a whole FEED_ACTIVE_DAYS of life, as a read does; the
                    # owner did not read, so the timeline keeps the expiry it had. (A read
                    # meanwhile is cut back too: the timeline then ends early and is rebuilt
                    # by a later read, which loses nothing.)
                    get_redis().pexpireat(timelines.timeline_key(user_id), expiry)
                count += 1
        self.stdout.write(f"rebuilt {count} timelines and {celebrities} celebrity lists")


def _user_id(text: str) -> int:
    user_id = parse_id_text(text)
    if user_id is None:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a user ID")
    return user_id


def _batches(user_ids: Iterator[int]) -> Iterator[list[int]]:
    batch: list[int] = []
    for user_id in user_ids:
        batch.append(user_id)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _expiries(user_ids: list[int]) -> dict[int, int]:
    """When each existing timeline of these users expires (Unix ms; -1: never), in one round
    trip; a missing one is left out."""
    pipe = get_redis().pipeline(transaction=False)
    for user_id in user_ids:
        pipe.pexpiretime(timelines.timeline_key(user_id))
    found = zip(user_ids, pipe.execute(), strict=True)
    return {user_id: expiry for user_id, expiry in found if expiry != -2}
