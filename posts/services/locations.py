"""The global directory of locations."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.utils import timezone

from instagram.dispatch import after_commit
from instagram.locks import advisory_xact_lock
from instagram.sharding import GLOBAL_ALIAS, shard_aliases
from posts.models import Location, Post

SAME_PLACE_METRES = 100


def normalize_place(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())[:100]


def distance_metres(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class LocationResult:
    location: Location
    created: bool


def location_create(*, name: str, lat: float, lng: float) -> LocationResult:
    """A new location, or the existing one with the same name within 100 m."""
    normalized = normalize_place(name)
    with transaction.atomic(using=GLOBAL_ALIAS):
        # Creators of one name take turns, so the second finds the first's row: a row lock
        # cannot do this, as there is no row to lock until one of them has inserted it.
        advisory_xact_lock(GLOBAL_ALIAS, f"location:{normalized}")
        # ~0.01 degree of latitude is 1.1 km: a cheap box before the exact distance.
        nearby = Location.objects.using(GLOBAL_ALIAS).filter(
            name_normalized=normalized, lat__range=(lat - 0.01, lat + 0.01)
        )
        for place in nearby:
            if distance_metres(lat, lng, place.lat, place.lng) <= SAME_PLACE_METRES:
                return LocationResult(location=place, created=False)
        place = Location.objects.using(GLOBAL_ALIAS).create(
            name=name.strip(), name_normalized=normalized, lat=lat, lng=lng
        )
    return LocationResult(location=place, created=True)


def location_posts_touch(*, location_id: int) -> None:
    """After a location was edited or deleted: once that commits, give every post there a new
    version, so no cached body shows the old place (an admin action; rare)."""
    after_commit(partial(_location_posts_touch, location_id), using="default")


def _location_posts_touch(location_id: int) -> None:
    now = timezone.now()
    for alias in shard_aliases():
        Post.objects.using(alias).filter(location_id=location_id).update(updated_at=now)
