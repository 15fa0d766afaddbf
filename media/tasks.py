"""Celery tasks of the media app (routed to the `media` queue): thin, idempotent, by id."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from media import services

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 10
MAX_RETRIES = 3


# A render stuck where the soft limit cannot reach it (inside a codec's native code) is ended
# by the hard limit: the worker process is replaced, the task redelivered, and the upload fails
# once it has used MEDIA_PROCESS_MAX_ATTEMPTS.
@shared_task(
    bind=True, ignore_result=True, max_retries=MAX_RETRIES, soft_time_limit=120, time_limit=180
)
def media_process_task(self, media_id: int) -> None:
    """Render an upload. Bad images end `failed` at once; infrastructure errors (storage, a
    database restart) retry with backoff, then fail: never a crash loop, never forever."""
    try:
        services.media_process(media_id=media_id)
    except SoftTimeLimitExceeded:
        services.media_fail(media_id=media_id, reason="Processing took too long.")
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            logger.exception("media %s: giving up after %s retries", media_id, MAX_RETRIES)
            services.media_fail(media_id=media_id, reason="The image could not be processed.")
            return
        raise self.retry(exc=exc, countdown=RETRY_BASE_SECONDS * 2**self.request.retries)


@shared_task(ignore_result=True)
def media_expire_task() -> int:
    return services.media_expire()


@shared_task(ignore_result=True)
def media_tier_task() -> dict[str, int]:
    return services.media_tier_apply()
