"""Helpers of the tests that interleave transactions deterministically through row locks."""

from collections.abc import Callable

from django.db import connections


def own_connections(call: Callable) -> Callable:
    """`call` for another thread: the connections it opens there are closed when it ends."""

    def run():
        try:
            return call()
        finally:
            connections.close_all()

    return run


def lock_waiters(alias: str) -> int:
    """How many sessions of this database wait for a lock now."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
