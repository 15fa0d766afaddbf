"""What other apps' events mean for timelines: each schedules a Celery task (a change of
followings also marks the follower's followee hint changed, at once).

Hooks run after commit through the outbox: one that fails (the broker is down) is run again by
the outbox sweep, so a live timeline is never left without a post or a follow's merge. Reads
filter against the graph anyway, so a late removal never shows what it removes.
"""

from __future__ import annotations


def on_post_published(*, post_id: int) -> None:
    from feed.tasks import fanout_post_task

    fanout_post_task.apply_async(args=(post_id,))


def on_post_deleted(*, post_id: int, author_id: int) -> None:
    """Out of its author's celebrity list at once (a timeline drops it at its owner's next
    read): a list is read by every follower, and one full of deleted posts would leave their
    pages empty."""
    import logging

    from redis.exceptions import RedisError

    from feed.timelines import celebrity_remove

    try:
        celebrity_remove(author_id, [post_id])
    except RedisError:  # reads filter it anyway, and remove it from the list they read
        logging.getLogger(__name__).warning("celebrity list kept a deleted post", exc_info=True)


def on_follow_started(*, follower_id: int, followee_id: int) -> None:
    from feed.tasks import follow_merge_task
    from feed.timelines import follows_hint_forget

    follows_hint_forget(follower_id)
    follow_merge_task.apply_async(args=(follower_id, followee_id))


def on_follow_ended(*, follower_id: int, followee_id: int) -> None:
    from feed.tasks import follow_remove_task
    from feed.timelines import follows_hint_forget

    follows_hint_forget(follower_id)
    follow_remove_task.apply_async(args=(follower_id, followee_id))
