"""Shared pieces of the operators' commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError
from django.db import OperationalError


@contextmanager
def stopped_cleanly_if_a_database_is_down() -> Iterator[None]:
    """A database that cannot be reached ends the command with a message and exit 1, not a
    traceback. (The commands that use it may be run again: what they did before it stopped
    stays right.)"""
    try:
        yield
    except OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise CommandError(
            f"stopped: a database is unavailable ({first_line}); run it again once it is back"
        ) from None
