"""What other apps' events mean for timelines: each schedules a Celery task (after commit)."""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def _send(task, *args) -> None:
    try:
        task.apply_async(args=args)
    except OperationalError:
        # The broker is down: timelines catch up on read (rebuild) and readers filter anyway.
        logger.warning("feed task not sent", extra={"task": task.name})


def on_post_published(*, post_id: int) -> None:
    from feed.tasks import fanout_post_task

    _send(fanout_post_task, post_id)


def on_follow_started(*, follower_id: int, followee_id: int) -> None:
    from feed.tasks import follow_merge_task

    _send(follow_merge_task, follower_id, followee_id)


def on_follow_ended(*, follower_id: int, followee_id: int) -> None:
    from feed.tasks import follow_remove_task

    _send(follow_remove_task, follower_id, followee_id)
