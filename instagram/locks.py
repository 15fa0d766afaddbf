"""Transaction-scoped PostgreSQL advisory locks: writers of one thing that has no row to lock yet
(a first like, a new place) take turns on its name."""

from __future__ import annotations

from django.db import connections


def advisory_xact_lock(using: str, name: str) -> None:
    """Wait for, then hold until the open transaction on `using` ends, the lock named `name`."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])
