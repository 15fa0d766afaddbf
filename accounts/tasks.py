from celery import shared_task
from django.db import OperationalError

from accounts.models import User
from accounts.services.graph import follow_requests_approve_all


@shared_task(
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=40,
)
def follow_requests_approve_all_task(target_id: int) -> int:
    """Approve every request still pending to the target, if it is public now, in batches that
    each commit (safe to run again: it approves only what is still pending)."""
    target = User.objects.filter(pk=target_id, is_private=False).first()
    return follow_requests_approve_all(target=target) if target is not None else 0
