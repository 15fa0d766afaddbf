from celery import shared_task
from django.db import OperationalError
from redis.exceptions import RedisError

from feed import services

# Redis or a database unreachable: every feed task is idempotent, so it runs again with backoff
# (doubling up to 10 minutes, jittered) for hours, rather than leaving live timelines without
# its change for good after a short outage (nothing else would bring a live timeline up to date).
_RETRY = {
    "ignore_result": True,
    "autoretry_for": (RedisError, OperationalError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 40,
}


@shared_task(**_RETRY)
def fanout_post_task(post_id: int) -> int:
    return services.post_fanout(post_id=post_id)


@shared_task(**_RETRY)
def follow_merge_task(follower_id: int, followee_id: int) -> int:
    return services.timeline_follow_merge(follower_id=follower_id, followee_id=followee_id)


@shared_task(**_RETRY)
def follow_remove_task(follower_id: int, followee_id: int) -> int:
    return services.timeline_follow_remove(follower_id=follower_id, followee_id=followee_id)


@shared_task(**_RETRY)
def timeline_rebuild_task(user_id: int) -> None:
    services.timeline_rebuild(user_id=user_id)
