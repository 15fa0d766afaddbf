"""Transactional outbox: the second half of a cross-shard write, applied exactly once in effect.

A service writes its primary row and an outbox event in one transaction on one shard
(`outbox_enqueue`). After commit a Celery relay applies the event through the handler
registered for its kind; a periodic sweep applies anything the relay missed (process died,
broker down) and retries failures with exponential backoff. Handlers must be idempotent:
an event may be applied more than once, and the second time must change nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from instagram.dispatch import after_commit
from instagram.models import OutboxEvent, OutboxStatus
from instagram.sharding import alias_for_id, shard_aliases

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]
_handlers: dict[str, Handler] = {}

# The relay normally applies an event within milliseconds; the sweep leaves it this long first.
RELAY_GRACE = dt.timedelta(seconds=10)
# A net (an event without a relay, written before a change on another database commits) is
# applied no sooner than this: by then that change has committed, or never will.
NET_GRACE = dt.timedelta(minutes=5)


class OutboxError(RuntimeError):
    pass


def outbox_handler(kind: StrEnum) -> Callable[[Handler], Handler]:
    """Register the idempotent handler that applies events of `kind`."""

    def register(func: Handler) -> Handler:
        existing = _handlers.get(str(kind))
        if existing is not None and existing is not func:
            raise OutboxError(f"outbox kind {kind} already has a handler")
        _handlers[str(kind)] = func
        return func

    return register


def outbox_enqueue(
    *,
    partition_id: int,
    kind: StrEnum,
    payload: dict,
    apply_here: bool = False,
    relay: bool = True,
) -> OutboxEvent:
    """Write an event in the caller's open transaction on the shard of `partition_id`.

    After commit the Celery relay applies it; with `apply_here`, this process applies it itself
    at once (no hop through the broker: for a handler that only hands work on, such as sending a
    task). Either way the sweep applies it if that never happens (the process died, the broker
    was down, the handler failed). Without `relay`, only the sweep applies it, once NET_GRACE
    has passed: a safety net written before a change on another database commits, whose
    handler then finds that change made (or not, and does nothing)."""
    using = alias_for_id(partition_id)
    if not _in_transaction(using):
        raise OutboxError("outbox_enqueue must run inside transaction.atomic(using=<shard>)")
    if str(kind) not in _handlers:
        raise OutboxError(f"no outbox handler registered for {kind}")
    event = OutboxEvent.objects.using(using).create(
        partition_id=partition_id,
        kind=str(kind),
        payload=payload,
        available_at=timezone.now() + (RELAY_GRACE if relay or apply_here else NET_GRACE),
    )
    from instagram.tasks import outbox_relay_task

    event_id = event.id
    if apply_here:
        after_commit(lambda: outbox_event_process(using=using, event_id=event_id), using=using)
    elif relay:
        after_commit(lambda: outbox_relay_task.apply_async(args=(using, event_id)), using=using)
    return event


def _in_transaction(using: str) -> bool:
    # Atomic blocks opened by a test case only stand in for autocommit: they do not count.
    return any(
        not getattr(block, "_from_testcase", False) for block in connections[using].atomic_blocks
    )


def backoff_delay(attempts: int) -> dt.timedelta:
    seconds = settings.OUTBOX_BACKOFF_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=min(seconds, settings.OUTBOX_BACKOFF_MAX_SECONDS))


def outbox_event_process(*, using: str, event_id: int) -> bool:
    """Apply one pending event; True if this call applied it.

    The row lock (`FOR UPDATE SKIP LOCKED`) keeps two relays from applying it at once; the
    status check makes a late duplicate relay a no-op.
    """
    with transaction.atomic(using=using):
        event = (
            OutboxEvent.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(id=event_id, status=OutboxStatus.PENDING)
            .first()
        )
        if event is None:
            return False
        now = timezone.now()
        event.attempts += 1
        try:
            handler = _handlers.get(event.kind)
            if handler is None:
                raise OutboxError(f"no outbox handler registered for {event.kind}")
            with transaction.atomic(using=using):
                handler(event.payload)
        except Exception as exc:  # a failing handler is retried later, never lost
            event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if event.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                event.status = OutboxStatus.DEAD
                logger.error("outbox event dead", extra={"event_id": event.id, "kind": event.kind})
            else:
                event.available_at = now + backoff_delay(event.attempts)
                logger.warning(
                    "outbox event failed",
                    extra={"event_id": event.id, "kind": event.kind, "error": event.last_error},
                )
            event.save(update_fields=["attempts", "last_error", "status", "available_at"])
            return False
        event.status = OutboxStatus.DONE
        event.processed_at = now
        event.save(update_fields=["attempts", "status", "processed_at"])
        return True


class ShardsUnavailable(DatabaseError):
    """Some shards could not be swept (each other shard was)."""

    def __init__(self, errors: dict[str, Exception]):
        self.errors = errors
        super().__init__(
            "; ".join(f"{alias}: {type(exc).__name__}: {exc}" for alias, exc in errors.items())
        )


def outbox_sweep(*, now: dt.datetime | None = None, limit: int | None = None) -> int:
    """Apply every due pending event on every shard; returns how many were applied. A shard
    that is down does not hold up the others: it is reported (ShardsUnavailable) once every
    other shard has been swept."""
    now = now or timezone.now()
    limit = limit or settings.OUTBOX_SWEEP_BATCH
    applied = 0
    errors: dict[str, Exception] = {}
    for using in shard_aliases():
        try:
            with transaction.atomic(using=using):
                due = list(
                    OutboxEvent.objects.using(using)
                    .select_for_update(skip_locked=True)
                    .filter(status=OutboxStatus.PENDING, available_at__lte=now)
                    .order_by("available_at")
                    .values_list("id", flat=True)[:limit]
                )
            for event_id in due:
                applied += outbox_event_process(using=using, event_id=event_id)
        except DatabaseError as exc:
            logger.error("outbox sweep: shard %s unavailable", using, exc_info=True)
            errors[using] = exc
    if errors:
        raise ShardsUnavailable(errors)
    return applied


def outbox_purge(*, older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Delete applied events past the retention window (dead ones stay for operators)."""
    cutoff = timezone.now() - older_than
    deleted = 0
    for using in shard_aliases():
        count, _ = (
            OutboxEvent.objects.using(using)
            .filter(status=OutboxStatus.DONE, processed_at__lt=cutoff)
            .delete()
        )
        deleted += count
    return deleted
