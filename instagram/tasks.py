from celery import shared_task

from instagram.outbox import outbox_event_process, outbox_purge, outbox_sweep


@shared_task(ignore_result=True)
def outbox_relay_task(using: str, event_id: int) -> None:
    outbox_event_process(using=using, event_id=event_id)


@shared_task(ignore_result=True)
def outbox_sweep_task() -> int:
    return outbox_sweep()


@shared_task(ignore_result=True)
def outbox_purge_task() -> int:
    return outbox_purge()
