from celery import shared_task

from feed import services


@shared_task(
    ignore_result=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5
)
def fanout_post_task(post_id: int) -> int:
    return services.post_fanout(post_id=post_id)


@shared_task(ignore_result=True)
def follow_merge_task(follower_id: int, followee_id: int) -> int:
    return services.timeline_follow_merge(follower_id=follower_id, followee_id=followee_id)


@shared_task(ignore_result=True)
def follow_remove_task(follower_id: int, followee_id: int) -> int:
    return services.timeline_follow_remove(follower_id=follower_id, followee_id=followee_id)


@shared_task(ignore_result=True)
def timeline_rebuild_task(user_id: int) -> None:
    services.timeline_rebuild(user_id=user_id)
